"""What checkpointing costs the training loop, at three model sizes (for ``pipeline.py``).

For each size the default optimizer (AdamW) trains a few steps of the default
batch on CPU (the median step time is the yardstick), then one checkpoint of
the full state (weights, optimizer moments, step) is saved the way the trainer
saves it: ``AsyncCheckpointer.submit`` copies the state to host memory and
returns (the *blocked* time: all the training loop waits for), and the write —
``torch.save`` to a temporary file, streamed to the store while hashed, the
marker last — runs on a background thread (*write* time).  The next step runs
while that write goes on; its time is reported too (on few shared cores the
write competes with it).  For comparison, the synchronous save the trainer
used before (the whole file built in memory, then put and hashed) is timed on
the same state.  The overhead is the blocked time over the steps of one
checkpoint interval (the default, 50 steps).
"""

from __future__ import annotations

import hashlib
import io
import statistics
import time
from typing import Any

import torch

from trainmq.store import BlobStore
from trainmq.training.checkpoints import AsyncCheckpointer, CheckpointStore
from trainmq.training.messages import ModelConfig
from trainmq.training.model import GPT

__all__ = ["QUICK_SIZES", "SIZES", "measure_checkpoints"]

#: About 5M, 40M and 110M parameters with a 2048-token vocabulary.
SIZES: dict[str, ModelConfig] = {
    "5M": ModelConfig(layers=4, width=320, heads=5, context=128),
    "40M": ModelConfig(layers=8, width=640, heads=10, context=128),
    "110M": ModelConfig(layers=12, width=864, heads=12, context=128),
}
QUICK_SIZES: dict[str, ModelConfig] = {"tiny": ModelConfig(layers=2, width=64, heads=2, context=64)}


def _step(model: GPT, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> float:
    started = time.perf_counter()
    loss = model.loss(batch[:, :-1], batch[:, 1:])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return time.perf_counter() - started


def _sync_save(store: BlobStore, key: str, state: dict[str, Any]) -> float:
    """The synchronous save the trainer replaced: the whole file in memory, then put."""
    started = time.perf_counter()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    store.put(key, data)
    hashlib.sha256(data).hexdigest()
    return time.perf_counter() - started


def measure_size(
    store: BlobStore,
    name: str,
    config: ModelConfig,
    *,
    batch_size: int,
    steps: int,
    interval: int,
    vocab_size: int,
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = GPT(config, vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, vocab_size, (batch_size, config.context + 1))
    _step(model, optimizer, batch)  # warm-up: allocations, optimizer state
    step_s = statistics.median(_step(model, optimizer, batch) for _ in range(steps))
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": steps}
    writer = AsyncCheckpointer(CheckpointStore(store, f"bench-checkpoints/{name}", attempt=1))
    blocked_s = writer.submit(steps, state)
    overlapped_step_s = _step(model, optimizer, batch)  # runs while the write goes on
    writer.wait()
    write_s = writer.last_write_seconds
    checkpoint_bytes = sum(
        store.head(k).size for k in store.list_keys(f"bench-checkpoints/{name}/") if "/state" in k
    )
    sync_s = _sync_save(store, f"bench-checkpoints/{name}-sync.pt", state)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "model": config.model_dump(),
        "batch_size": batch_size,
        "step_s": step_s,
        "blocked_s": blocked_s,
        "write_s": write_s,
        "overlapped_step_s": overlapped_step_s,
        "sync_save_s": sync_s,
        "checkpoint_bytes": checkpoint_bytes,
        "interval_steps": interval,
        "overhead_percent": 100 * blocked_s / (interval * step_s),
        "sync_overhead_percent": 100 * sync_s / (interval * step_s),
    }


def measure_checkpoints(
    store: BlobStore,
    sizes: dict[str, ModelConfig],
    *,
    batch_size: int,
    steps: int,
    interval: int,
    vocab_size: int,
    progress: Any = print,
) -> dict[str, Any]:
    """Per size: step time, blocked and background write time per checkpoint, overhead."""
    figures = {}
    for name, config in sizes.items():
        progress(f"checkpoints: {name} model, {steps} steps and one save")
        figures[name] = measure_size(
            store,
            name,
            config,
            batch_size=batch_size,
            steps=steps,
            interval=interval,
            vocab_size=vocab_size,
        )
    return figures


def report_lines(figures: dict[str, Any]) -> list[str]:
    first = next(iter(figures.values()))
    lines = [
        f"checkpoints: the full state (weights + AdamW moments), batch {first['batch_size']}, "
        f"one save per size; overhead = blocked time / {first['interval_steps']} steps",
        f"{'model':<8} {'params':>8} {'MB':>7} {'step s':>7} {'blocked s':>9} {'write s':>8} "
        f"{'overhead':>8} {'sync save s':>11} {'sync overhead':>13}",
    ]
    for name, f in figures.items():
        lines.append(
            f"{name:<8} {f['parameters'] / 1e6:>7.1f}M {f['checkpoint_bytes'] / 1e6:>7.0f} "
            f"{f['step_s']:>7.2f} {f['blocked_s']:>9.3f} {f['write_s']:>8.2f} "
            f"{f['overhead_percent']:>7.2f}% {f['sync_save_s']:>11.2f} "
            f"{f['sync_overhead_percent']:>12.2f}%"
        )
    lines.append(
        "  (the step that overlaps the background write took "
        + ", ".join(f"{n} {f['overlapped_step_s']:.2f} s" for n, f in figures.items())
        + ")"
    )
    return lines
