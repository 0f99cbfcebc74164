"""A Hugging Face ``Trainer`` made durable by ``Run``: ``TrainmqCallback`` and ``train``.

::

    from trainmq.training.hf import train

    trainer = Trainer(model=model, args=args, train_dataset=data)
    result = train(trainer, request, store=store)  # or, inside a worker: context=, record=

``train`` opens the run (a duplicate delivery trains nothing), restores the
newest complete checkpoint, runs ``trainer.train()`` with the callback, and
records the result.  The callback

* reports every ``on_log`` as a ``progress`` event (and every step as progress
  to the worker, and as timing for the deadline);
* copies each checkpoint the Trainer saves (weights, optimizer, scheduler,
  gradient scaler, the RNG states of Python, NumPy, torch and the device, and
  ``trainer_state.json``: the global step, the epoch and the callbacks' state)
  into one trainmq checkpoint, written state first and marker last;
* when ``run.should_stop`` (the deadline is near, or SIGTERM), has the Trainer
  save at once, then stops through ``run.stop``: the message is retried or
  continued, and resumes.

Resume materializes the newest checkpoint as a Trainer checkpoint folder and
calls ``trainer.train(resume_from_checkpoint=folder)``.  That is the Trainer's
own resume: it loads the optimizer and scheduler it creates inside ``train``,
skips the batches already trained in the epoch (its samplers are seeded by
seed and epoch), and puts the RNG states back *after* that skipping, right
before the first new step.  Loading state dicts from outside ``train`` could
not reproduce that order, so the weights would drift; this way they are
bit-identical to an uninterrupted run's (same device and thread count).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

try:
    import transformers
    from transformers import (
        Trainer,
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
except ModuleNotFoundError as exc:  # one line naming the extra, not a traceback into transformers
    raise ModuleNotFoundError(
        f"trainmq.training.hf needs the hf extra ({exc.name} is not installed): "
        "pip install 'trainmq[hf]'",
        name=exc.name,
    ) from None
import torch

from ..errors import PermanentFailure
from ..store import BlobStore
from .messages import TrainRequest
from .run_api import Run

__all__ = ["FORMAT", "TrainmqCallback", "materialize", "train", "train_in"]

log = logging.getLogger("trainmq.training")

#: Names what a checkpoint of this callback holds; ``train_in`` refuses any other.
FORMAT = "hf-trainer/1"
#: A pickle of ``TrainingArguments``: the Trainer's resume never reads it, so it is not kept.
_SKIPPED = {"training_args.bin"}


class TrainmqCallback(TrainerCallback):
    """Reports to ``run``, checkpoints through it, and stops the Trainer when it should.

    ``keep_local``: keep the Trainer's own checkpoint folders in ``output_dir`` once
    copied to the run's store (they are kept anyway with ``load_best_model_at_end``).
    """

    def __init__(self, run: Run, *, keep_local: bool = False) -> None:
        self.run = run
        self.keep_local = keep_local
        self.stopping = False
        #: The last ``loss`` the Trainer logged (its mean over the last logging window).
        self.loss: float | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if args.world_size > 1 or args.deepspeed or args.fsdp:
            raise PermanentFailure(
                "the trainmq Trainer callback covers one process without DeepSpeed or FSDP; "
                "launch multi-process jobs as an entrypoint (training.launcher)"
            )
        if args.save_strategy == "no":
            log.warning(
                "save_strategy is 'no': the run checkpoints only when it stops, and a killed "
                "delivery starts over"
            )

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.run.tick(state.global_step)
        if state.global_step < state.max_steps and self.run.should_stop:
            self.stopping = True
            control.should_save = True  # the Trainer saves this step, then on_save stops
            control.should_training_stop = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        metrics = {k: v for k, v in (logs or {}).items() if _finite(v)}
        if "train_runtime" in metrics and "train_loss" in metrics:
            # The closing summary: its mean covers this delivery's steps only, not the run's.
            metrics["delivery_mean_loss"] = metrics.pop("train_loss")
        if "loss" in metrics:
            self.loss = float(metrics["loss"])
        if "eval_loss" in metrics:
            metrics["val_loss"] = metrics.pop("eval_loss")
        if metrics:
            self.run.report(state.global_step, **metrics)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        step = state.global_step
        folder = _folder(args.output_dir or ".", step)
        snapshot = {
            "step": step,
            "format": FORMAT,
            "transformers": transformers.__version__,
            "files": _map_folder(folder),
            "data_position": {
                "global_step": step,
                "epoch": float(state.epoch or 0.0),
                "seed": args.data_seed if args.data_seed is not None else args.seed,
            },
        }
        try:
            if self.stopping:
                self.run.stop(step, snapshot)  # raises RunStopped: leaving Run continues later
            self.run.checkpoint(step, snapshot)  # copied to memory here, written meanwhile
        finally:
            if not self.keep_local and not args.load_best_model_at_end:
                shutil.rmtree(folder, ignore_errors=True)  # the run's store holds it


def _folder(directory: str | os.PathLike[str], step: int) -> Path:
    """The Trainer's checkpoint folder of ``step`` under ``directory``."""
    return Path(directory) / f"{PREFIX_CHECKPOINT_DIR}-{step}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _map_folder(folder: Path) -> dict[str, torch.Tensor]:
    """Every file of a Trainer checkpoint folder (relative path: its bytes, memory-mapped as
    a uint8 tensor, which ``Run.checkpoint`` copies once; the state stays loadable with
    ``weights_only``)."""
    files: dict[str, torch.Tensor] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in _SKIPPED:
            size = path.stat().st_size
            name = path.relative_to(folder).as_posix()
            files[name] = (
                torch.from_file(str(path), shared=False, size=size, dtype=torch.uint8)
                if size
                else torch.empty(0, dtype=torch.uint8)
            )
    if not files:
        raise RuntimeError(f"the Trainer saved nothing in {folder}")
    return files


def materialize(state: dict[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Write a checkpoint of this callback back as the Trainer's checkpoint folder under
    ``directory``; returns the folder (for ``resume_from_checkpoint``)."""
    if state.get("format") != FORMAT:
        raise PermanentFailure(
            f"the checkpoint of step {state.get('step')} was not written by the trainmq "
            f"Trainer callback ({FORMAT}): it cannot resume a Trainer"
        )
    step = int(state["step"])
    folder = _folder(directory, step)
    for name, data in state["files"].items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise PermanentFailure(f"the checkpoint of step {step} names a file outside it: {name}")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.numpy().tobytes())
    return folder


def train_in(run: Run, trainer: Trainer, *, keep_local: bool = False) -> dict[str, Any] | None:
    """Train ``trainer`` in an entered ``run``: restore, train with ``TrainmqCallback``,
    complete.  Returns ``run.result`` (what happened, for a delivery that does not train)."""
    if not run.training:
        return run.result
    callback = TrainmqCallback(run, keep_local=keep_local)
    trainer.add_callback(callback)
    scratch = tempfile.mkdtemp(prefix="trainmq-hf-resume-")
    try:
        state = run.restore()
        resume = str(materialize(state, scratch)) if state is not None else None
        output = trainer.train(resume_from_checkpoint=resume)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        trainer.remove_callback(callback)
    # ``training_loss`` averages only this delivery's steps; the last logged loss is the run's.
    loss = callback.loss if callback.loss is not None else float(output.training_loss)
    return run.complete(steps=int(output.global_step), loss=loss)


def train(
    trainer: Trainer,
    request: TrainRequest,
    *,
    store: BlobStore | None = None,
    context: Any = None,
    record: dict[str, Any] | None = None,
    keep_local: bool = False,
    **run_options: Any,
) -> dict[str, Any] | None:
    """Open the run of ``request`` and train ``trainer`` in it (see ``train_in``).

    A duplicate delivery, or one of a finished run, trains nothing and returns what
    happened; a stop (deadline, SIGTERM) continues the run later as ``Run`` does."""
    with Run(request, store=store, context=context, record=record, **run_options) as run:
        train_in(run, trainer, keep_local=keep_local)
    return run.result
