"""A Hugging Face ``Trainer`` run made durable by ``trainmq.training.hf`` (the kill test runs
it as a process, and in-process).  A tiny GPT-2 built from a config (nothing downloaded),
with dropout, trained on random tokens made here, shuffled by the Trainer: only a resume
that restores the weights, the optimizer, the scheduler, every RNG state and the data
position ends bit-identical to an uninterrupted run.

usage: hf_loop.py STORE_ROOT RUN STEPS WEIGHTS_OUT [HANG_AT_STEP]
(with HANG_AT_STEP the run writes STORE_ROOT/hanging at that step and waits to be killed)
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from trainmq.store import open_store
from trainmq.training import DatasetRef, OptimizerConfig, TrainRequest
from trainmq.training.hf import train
from trainmq.training.locations import uri_of

SEED = 3
CHECKPOINT_EVERY = 5


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """48 random sequences of 16 token ids (a fixed generator: the same in every process)."""

    def __init__(self) -> None:
        self.ids = torch.randint(0, 64, (48, 16), generator=torch.Generator().manual_seed(11))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


class HangAt(TrainerCallback):
    """At step ``step``: say so in a file, then wait to be SIGKILLed."""

    def __init__(self, step: int, flag: Path) -> None:
        self.step, self.flag = step, flag

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            self.flag.write_text(str(self.step))
            threading.Event().wait()


def request_for(store_root: str, run: str, steps: int) -> TrainRequest:
    store = open_store(store_root)
    return TrainRequest(
        run_id=run,
        idempotency_key=f"hf/{run}",
        # The Trainer's dataset is made here; the dataset field is only carried along.
        dataset=DatasetRef(
            manifest_uri=uri_of(store, "datasets/none/manifest.json"), manifest_sha256="0" * 64
        ),
        optimizer=OptimizerConfig(steps=steps, seed=SEED),
        checkpoint_uri=uri_of(store, f"hf-runs/{run}/checkpoints"),
        output_uri=uri_of(store, f"hf-runs/{run}/output"),
        keep_last=2,
    )


def trainer_for(steps: int, output_dir: str) -> Trainer:
    set_seed(SEED)
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=8,  # 6 steps an epoch: the run crosses epochs
        learning_rate=1e-2,
        warmup_steps=3,
        weight_decay=0.01,
        save_strategy="steps",
        save_steps=CHECKPOINT_EVERY,
        logging_steps=2,
        seed=SEED,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    return Trainer(model=GPT2LMHeadModel(config), args=args, train_dataset=Tokens())


def main(
    store_root: str,
    run: str,
    steps: int,
    out: str,
    hang_at: int | None = None,
    stop_at: int | None = None,
) -> dict[str, Any] | None:
    """Train (or resume) the run; ``stop_at``: the worker's time is nearly up from that step."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = trainer_for(steps, output_dir)
        if hang_at is not None:
            trainer.add_callback(HangAt(hang_at, Path(store_root) / "hanging"))
        remaining: Callable[[], float] | None = None
        if stop_at is not None:
            remaining = lambda: 1000.0 if trainer.state.global_step < stop_at else 5.0  # noqa: E731
        request = request_for(store_root, run, steps)
        result = train(trainer, request, store=open_store(store_root), remaining=remaining)
        if trainer.state.global_step == steps:  # trained here (a duplicate trains nothing)
            torch.save(trainer.model.state_dict(), out)
        return result


if __name__ == "__main__":
    arguments = sys.argv[1:]
    hang = int(arguments[4]) if arguments[4:] else None
    print(main(arguments[0], arguments[1], int(arguments[2]), arguments[3], hang), flush=True)
