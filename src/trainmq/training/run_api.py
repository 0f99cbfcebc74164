"""Durable runs for training code a team already has: ``Run`` around any PyTorch loop.

The built-in trainer's durability — one run per idempotency key, fenced
attempts stamped alive, checkpoints written state first and marker last,
exact resume, events, the invocation's deadline and SIGTERM — is offered to a
loop the user writes::

    with Run(request, store=store) as run:
        state = run.restore(model=model, optimizer=optimizer)
        step = state["step"] if state else 0
        while step < total and not run.should_stop:
            ...one optimizer step...
            step += 1
            run.report(step, loss=loss)
            if step % 50 == 0:
                run.checkpoint(step, model=model, optimizer=optimizer)
        if run.should_stop:
            run.stop(step, model=model, optimizer=optimizer)  # checkpoint, continue later
        run.complete(steps=step)

Nothing here duplicates the registry: the attempt is decided by
``training.attempts.acquire``, written under ``training.fencing``'s token, and
its checkpoints go through ``training.checkpoints.CheckpointStore``.  A
planned stop (deadline, SIGTERM) releases the attempt and sends a continuation
of the request to its queue, or, without a queue, raises ``RetryLater`` so the
message is delivered again: exactly as the built-in trainer does.

Exactness: a checkpoint holds the RNG states of Python, NumPy, torch and
CUDA beside the user's state, and ``restore`` puts them back, so a loop whose
randomness comes from those generators (dropout, shuffles, noise) resumes to
bit-identical weights on the same device and thread count.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np
import torch

from ..errors import PermanentFailure
from ..store import BlobStore
from ..worker.progress import Preemption, ProgressReporter
from .attempts import Acquired, Attached, Finished, StillTraining, acquire
from .checkpoints import AsyncCheckpointer, CheckpointStore
from .fencing import Fence, Liveness, Superseded
from .handlers import (
    Publisher,
    _continue,
    _env_float,
    _queue_of,
    _remaining,
    _worker_name,
    check_same_request,
)
from .locations import key_of, open_pipeline_store, uri_of
from .messages import TrainRequest
from .outcomes import RetryLater
from .runs import RunRegistry
from .sampler import TokenSampler

__all__ = [
    "ATTEMPT_ENV",
    "DEADLINE_ENV",
    "EXIT_PERMANENT",
    "EXIT_STOPPED",
    "REQUEST_ENV",
    "Run",
    "RunStopped",
    "capture_rng",
    "restore_rng",
]

#: Exit codes of a launched job: it checkpointed and stopped to resume later (EX_TEMPFAIL) /
#: it can never succeed (EX_DATAERR).  0 is done; any other code is retried.
EXIT_STOPPED = 75
EXIT_PERMANENT = 65
#: The environment a launcher gives its job (see ``training.launcher``).
REQUEST_ENV = "TRAINMQ_REQUEST"
ATTEMPT_ENV = "TRAINMQ_ATTEMPT"
DEADLINE_ENV = "TRAINMQ_DEADLINE"

log = logging.getLogger("trainmq.training")

#: Fields of ``report`` that map onto a ``TrainingEvent``'s own fields.
_EVENT_FIELDS = {
    "loss": "train_loss",
    "train_loss": "train_loss",
    "val_loss": "val_loss",
    "tokens": "tokens",
    "total_steps": "total_steps",
}


class RunStopped(Exception):
    """Raised by ``Run.stop``: the loop checkpointed and stops; ``Run`` continues it later."""

    def __init__(self, step: int, why: str) -> None:
        super().__init__(f"stopped at step {step} to resume later: {why} (checkpoint written)")
        self.step = step
        self.why = why


def capture_rng() -> dict[str, Any]:
    """The global generators' states of Python, NumPy, torch (and CUDA), as tensors and
    plain values, so a checkpoint loads with ``weights_only`` (no pickle)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what ``capture_rng`` took."""
    python = state["python"]
    random.setstate((int(python["version"]), tuple(python["state"]), python["gauss"]))
    numpy = state["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (numpy["kind"], keys, int(numpy["pos"]), int(numpy["has_gauss"]), float(numpy["cached"]))
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Run:
    """One delivery's part in a run, for a loop the user writes (see the module docstring).

    ``request`` names the run (its idempotency key), its checkpoints
    (``checkpoint_uri``, ``keep_last``/``keep_every``) and its length
    (``optimizer.steps``); its model and dataset fields are the user's to read.
    ``context`` is the worker's Lambda-style context (its deadline), ``record``
    the SQS record being handled (its message id and queue: where a continuation
    goes).  ``remaining`` overrides the deadline (seconds left, for tests).
    """

    def __init__(
        self,
        request: TrainRequest,
        *,
        store: BlobStore | None = None,
        context: Any = None,
        record: dict[str, Any] | None = None,
        remaining: Callable[[], float] | None = None,
        stop_margin: float = 10.0,
        adopt_attempt: int | None = None,
    ) -> None:
        self.request = request
        self.store = store or open_pipeline_store()
        self.registry = RunRegistry(self.store)
        self.key = request.idempotency_key
        self.message_id = str(record["messageId"]) if record and "messageId" in record else None
        self.queue = _queue_of(record) if record else None
        self.remaining = remaining or _remaining(context)
        self.stop_margin = stop_margin
        #: ``None`` while this delivery trains; the run's result (or what this duplicate
        #: did) once there is nothing for it to train.
        self.result: dict[str, Any] | None = None
        self.attempt = 0
        self.resumed_from: int | None = None
        self._fence: Fence | None = None
        self._liveness: Liveness | None = None
        self._publish: Publisher | None = None
        self._preemption = Preemption()
        self._progress = ProgressReporter()
        self._checkpoints: CheckpointStore | None = None
        self._writer: AsyncCheckpointer | None = None
        self._last_report: float | None = None
        self._last_step = 0
        self._step_seconds = 0.0
        self._write_seconds = 0.0
        self._completed = False
        #: Set when a launcher (``training.launcher``) holds the attempt and runs this loop.
        self.adopted = adopt_attempt

    # -- entering and leaving ---------------------------------------------------------------
    @classmethod
    def launched(cls) -> Run:
        """The run a launcher started this process for (``training.launcher``): the attempt
        it holds, its request, store and deadline, from the environment."""
        request = TrainRequest.model_validate_json(os.environ[REQUEST_ENV])
        deadline = os.environ.get(DEADLINE_ENV)
        remaining = (lambda: float(deadline) - time.time()) if deadline else None
        return cls(request, remaining=remaining, adopt_attempt=int(os.environ[ATTEMPT_ENV]))

    def __enter__(self) -> Run:
        request = self.request
        if self.adopted is not None:
            self._start(Acquired(self.adopted))
            return self
        registration = self.registry.register(
            request.run_id, self.key, request.to_json(), time.time()
        )
        if registration.outcome == "attached":
            check_same_request(registration.run.request, request)
        try:
            outcome = acquire(
                self.registry,
                self.key,
                worker=_worker_name(),
                message_id=self.message_id,
                stale_after=_env_float("TRAINMQ_STALE_AFTER", 60.0),
                remaining=self.remaining,
            )
        except StillTraining as exc:
            raise RetryLater(f"run {request.run_id}: {exc}") from None
        if isinstance(outcome, Finished):
            self.result = outcome.result
        elif isinstance(outcome, Attached):
            self.result = {"run_id": request.run_id, "attached_to_attempt": outcome.attempt}
        else:
            self._start(outcome)
        return self

    def _start(self, outcome: Acquired) -> None:
        self.attempt = outcome.attempt
        fence = self._fence = Fence(self.registry, self.key, self.attempt)
        # The ranks of a launched multi-process job share the attempt: each but rank 0
        # names itself, so their events' numbers never collide.
        rank = os.environ.get("RANK", "0") if self.adopted is not None else "0"
        writer = "" if rank == "0" else f"rank{rank}"
        self._publish = Publisher(
            self.registry, self.key, self.request.run_id, self.attempt, writer, fence=fence
        )
        self._checkpoints = CheckpointStore(
            self.store,
            key_of(self.store, self.request.checkpoint_uri, "checkpoint"),
            attempt=self.attempt,
            fence=fence.check,
            keep_last=self.request.keep_last,
            keep_every=self.request.keep_every,
        )
        self._liveness = Liveness(fence, _env_float("TRAINMQ_BEAT_EVERY", 5.0)).start()
        self._preemption.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._fence is None:
            return False  # a duplicate or a finished run: nothing was trained here
        self._preemption.__exit__(exc_type, exc, tb)
        try:
            if self._writer is not None:
                self._writer.wait_quietly()  # a checkpoint being written is finished first
            return self._settle(exc)
        finally:
            if self._liveness is not None:
                self._liveness.stop()

    def _settle(self, exc: BaseException | None) -> bool:
        """What the loop's way out means for the run; whether to swallow ``exc``."""
        assert self._fence is not None and self._publish is not None
        if self.adopted is not None:
            return self._settle_launched(exc)
        if isinstance(exc, RunStopped):
            # _continue raises RetryLater without a queue: the message is delivered again.
            try:
                self.result = _continue(
                    self.registry,
                    self.request,
                    self._fence,
                    self._publish,
                    exc.step,
                    exc.why,
                    self.queue,
                )
            except Superseded:  # taken over meanwhile: the run is someone else's to continue
                self.result = {"run_id": self.request.run_id, "superseded_attempt": self.attempt}
            return True
        if isinstance(exc, Superseded):
            log.warning("run %s: %s", self.request.run_id, exc)
            self.result = {"run_id": self.request.run_id, "superseded_attempt": self.attempt}
            return True
        if isinstance(exc, PermanentFailure):
            self._publish("failed", message=exc.reason)
        return False

    def _settle_launched(self, exc: BaseException | None) -> bool:
        """Under a launcher, the way out is an exit code: the launcher owns the message."""
        assert self._publish is not None
        if isinstance(exc, RunStopped):
            raise SystemExit(EXIT_STOPPED)
        if isinstance(exc, Superseded):
            log.warning("run %s: %s", self.request.run_id, exc)
            raise SystemExit(EXIT_STOPPED)
        if isinstance(exc, PermanentFailure):
            self._publish("failed", message=exc.reason)
            log.error("permanent failure: %s", exc.reason)  # the job's log, kept by the launcher
            raise SystemExit(EXIT_PERMANENT)
        return False

    # -- what the loop calls ----------------------------------------------------------------
    @property
    def training(self) -> bool:
        """Whether this delivery holds the run (else ``result`` says what happened)."""
        return self._fence is not None and not self._completed

    def _require(self) -> tuple[Fence, Publisher, CheckpointStore]:
        if self._fence is None or self._publish is None or self._checkpoints is None:
            raise RuntimeError("this delivery does not hold the run: see Run.result")
        return self._fence, self._publish, self._checkpoints

    def restore(
        self,
        *,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        map_location: str | torch.device = "cpu",
    ) -> dict[str, Any] | None:
        """The newest complete checkpoint's state (loaded into ``model``, ``optimizer`` and
        ``scheduler`` when given, RNG states put back), or ``None`` on a fresh run."""
        fence, publish, checkpoints = self._require()
        loaded = checkpoints.newest(map_location=map_location)
        fence.check()
        checkpoints.remove_unmarked()  # the current attempt: what killed writes left is junk
        if loaded is None:
            publish("started", step=0, total_steps=self.request.optimizer.steps)
            return None
        state = loaded.state
        for target, name in ((model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler")):
            if target is not None and name in state:
                target.load_state_dict(state[name])
        if "rng" in state:
            restore_rng(state["rng"])
        self.resumed_from = int(state.get("step", loaded.step))
        publish(
            "resumed",
            step=self.resumed_from,
            message=f"resumed from the checkpoint of step {self.resumed_from}",
        )
        return state

    def state(
        self,
        step: int,
        *,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        data_position: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """What ``checkpoint`` saves: the given objects' state dicts, the RNG states, the step
        and the data position (tensors and plain values only: no pickle)."""
        state: dict[str, Any] = {"step": step, "rng": capture_rng(), **extra}
        for target, name in ((model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler")):
            if target is not None:
                state[name] = target.state_dict()
        if data_position is not None:
            state["data_position"] = data_position
        return state

    def checkpoint(
        self, step: int, state: dict[str, Any] | None = None, *, wait: bool = False, **parts: Any
    ) -> str:
        """Save the checkpoint of ``step``: ``state`` as given, or built by ``state(step,
        **parts)``; state first, marker last, keep-last-N applied; returns its URI.

        The state is copied to host memory at once and written by a background thread
        (the loop goes on meanwhile; the ``checkpoint`` event follows the marker); ``wait``
        waits for the write.  A failed background write is raised by the next call."""
        _, _, checkpoints = self._require()
        writer = self._writer_for(checkpoints)
        if state is None:
            state = self.state(step, **parts)
        writer.submit(step, state)
        if wait:
            writer.wait(self._progress)
        self._progress()
        return uri_of(self.store, checkpoints.directory(step))

    def _writer_for(self, checkpoints: CheckpointStore) -> AsyncCheckpointer:
        if self._writer is None:
            self._writer = AsyncCheckpointer(checkpoints, self._saved)
        return self._writer

    def _saved(self, step: int, directory: str) -> None:
        """A background write finished (its marker is written): publish it."""
        assert self._publish is not None and self._writer is not None
        self._write_seconds = self._writer.last_write_seconds
        self._publish("checkpoint", step=step, checkpoint_uri=uri_of(self.store, directory))

    def wait(self) -> None:
        """Wait for the checkpoint being written, if any (raise its error, if it failed)."""
        if self._writer is not None:
            self._writer.wait(self._progress)

    def report(self, step: int, **metrics: Any) -> None:
        """Record a ``progress`` event (``loss``/``train_loss``, ``val_loss``, ``tokens`` and
        ``total_steps`` in its fields, other metrics in its message) and show progress."""
        fence, publish, _ = self._require()
        fence.raise_if_lost()
        self.tick(step)
        fields = {_EVENT_FIELDS[k]: v for k, v in metrics.items() if k in _EVENT_FIELDS}
        fields.setdefault("total_steps", self.request.optimizer.steps)
        others = {k: v for k, v in metrics.items() if k not in _EVENT_FIELDS}
        message = json.dumps(others, sort_keys=True, default=str) if others else None
        publish("progress", step=step, message=message, **fields)

    def tick(self, step: int) -> None:
        """Step ``step`` is done, without an event: times the steps (for ``should_stop``)
        and tells the worker the handler is making progress.  ``report`` does this too; a
        loop that reports every few steps calls ``tick`` at the others."""
        now = time.perf_counter()
        if self._last_report is None or step < self._last_step:
            self._last_report, self._last_step = now, step  # the first step timed, or a rewind
        elif step > self._last_step:
            self._step_seconds = (now - self._last_report) / (step - self._last_step)
            self._last_report, self._last_step = now, step
        self._progress()

    def sampler(self, *, rank: int = 0, world_size: int = 1, split: str = "train") -> TokenSampler:
        """The built-in trainer's deterministic sampler over the request's dataset (its
        ``model.context``, ``optimizer.batch_size`` and ``optimizer.seed``), for ``rank`` of
        ``world_size``: ``sampler.batch(step)`` needs no state beyond the step."""
        request = self.request
        return TokenSampler.open(
            self.store,
            request.dataset,
            context=request.model.context,
            batch_size=request.optimizer.batch_size,
            seed=request.optimizer.seed,
            rank=rank,
            world_size=world_size,
            split=split,
        )

    @property
    def should_stop(self) -> bool:
        """Whether the loop should checkpoint and stop now: SIGTERM arrived, or the
        invocation's time is nearly up (a margin of a few steps, the last checkpoint's
        write time twice and ``stop_margin`` seconds)."""
        if self._preemption():
            return True
        if self.remaining is None:
            return False
        margin = 3 * self._step_seconds + 2 * self._write_seconds + self.stop_margin
        return self.remaining() < margin

    def stop(self, step: int, state: dict[str, Any] | None = None, **parts: Any) -> None:
        """Checkpoint ``step`` and stop; leaving the ``with`` block then releases the attempt
        and continues the run in a later delivery.  Always raises ``RunStopped``."""
        self.checkpoint(step, state, wait=True, **parts)
        why = (
            "the worker is shutting down (preemption)"
            if self._preemption()
            else "the invocation's time is nearly up"
        )
        raise RunStopped(step, why)

    def complete(self, **result: Any) -> dict[str, Any]:
        """Record the run's result (create-only: the first wins) and a ``completed`` event,
        once the checkpoint being written (if any) is complete."""
        fence, publish, _ = self._require()
        self.wait()
        fence.check()
        outcome = self.registry.complete(
            self.key, {"run_id": self.request.run_id, **result, "attempt": self.attempt}
        )
        steps = int(result.get("steps", 0))
        publish(
            "completed",
            step=steps,
            total_steps=steps,
            message=json.dumps(result, sort_keys=True, default=str)[:4096],
        )
        self.result = outcome
        self._completed = True
        return outcome
