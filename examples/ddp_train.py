"""Multi-process training (DistributedDataParallel) that resumes exactly, under trainmq.

Run by the launcher as an entrypoint (``examples/entrypoints.toml``, ``ddp-tiny``)::

    python -m torch.distributed.run --standalone --nproc_per_node 2 examples/ddp_train.py \\
        --steps 40 --checkpoint-every 5

A team's own model and data, made durable by ``trainmq.training.ddp``: every rank adopts
the launcher's attempt (``Run.launched()``) and restores the newest checkpoint; rank 0
alone writes checkpoints, between barriers, and reports.  The data of a step is drawn by a
generator seeded with (seed, step, rank), so the batches of a resumed run are the ones it
would have drawn; the model has no dropout, so nothing depends on a rank's global RNG.
The ranks agree on stopping.  gloo on CPU, NCCL on GPU.  (``trainmq demo --ddp`` runs
the built-in model the same way: ``trainmq.training.ddp_gpt``.)
"""

from __future__ import annotations

import argparse
import io
import time

import torch
from torch.nn.parallel import DistributedDataParallel

from trainmq.training import Run, ddp
from trainmq.training.locations import key_of


def batch(seed: int, step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """This rank's batch of ``step``: a pure function of (seed, step, rank)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + rank)
    inputs = torch.randn(16, 8, generator=generator)
    targets = inputs.sum(1, keepdim=True) + 0.1 * torch.randn(16, 1, generator=generator)
    return inputs.to(device), targets.to(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to idle per step")
    args = parser.parse_args()
    group = ddp.start()
    torch.set_num_threads(1)
    with Run.launched() as run:
        seed = run.request.optimizer.seed
        torch.manual_seed(seed)  # the same initial weights on every rank
        net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
        model = DistributedDataParallel(net.to(group.device))
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        parts = {"model": model.module, "optimizer": optimizer}
        state = ddp.restore(run, group, **parts)  # the same one on every rank
        step = int(state["step"]) if state else 0
        started = time.perf_counter()
        while step < args.steps:
            inputs, targets = batch(seed, step, group.rank, group.device)
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            mean, (stop,) = ddp.agree(group, loss.item(), run.should_stop)
            if group.leader:
                run.report(step, loss=mean)
            if stop and step < args.steps:
                ddp.stop(run, group, step, **parts)  # exits 75: continued later
            if step % args.checkpoint_every == 0 and step < args.steps:
                ddp.checkpoint(run, group, step, **parts)
            time.sleep(args.pause)
        if group.leader:
            buffer = io.BytesIO()
            torch.save(model.module.state_dict(), buffer)
            output = key_of(run.store, run.request.output_uri, "output").rstrip("/")
            run.store.put(f"{output}/model.pt", buffer.getvalue())
            run.complete(
                steps=step,
                loss=mean,
                world_size=group.world_size,
                # what this attempt's loop took, and how long checkpoints held it up
                loop_seconds=time.perf_counter() - started,
                checkpoint_blocked_seconds=group.blocked_seconds,
            )
    ddp.finish()


if __name__ == "__main__":
    main()
