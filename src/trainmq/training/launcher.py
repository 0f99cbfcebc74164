"""The launch handler: runs a ``TrainRequest``'s allow-listed entrypoint as a supervised
process group, with the run's durability around it.

Worker handler ``trainmq.training.launcher:launch``.  For each record it checks
the request against the worker's entrypoints file (``$TRAINMQ_ENTRYPOINTS``,
``training.entrypoints``) — an unknown entrypoint or a parameter out of its
bounds is a permanent failure — then takes the run through ``Run`` (a
duplicate attaches, a finished run is acknowledged; both publish an ``attached``
event) and starts the command in
a process group of its own, with this environment:

``TRAINMQ_RUN_ID``, ``TRAINMQ_IDEMPOTENCY_KEY``, ``TRAINMQ_ATTEMPT``
    the run and the attempt this launcher holds (``Run.launched()`` adopts it);
``TRAINMQ_REQUEST``, ``TRAINMQ_PARAMS``
    the request and the checked parameters, as JSON;
``TRAINMQ_STORE``, ``TRAINMQ_CHECKPOINT_URI``, ``TRAINMQ_RESUME_STEP``
    the store, where checkpoints go, and the newest complete checkpoint's step
    (empty for a fresh run);
``TRAINMQ_DEADLINE``
    the Unix time by which the job must have stopped (absent without a deadline).

While the job lives, the handler is alive, so the worker keeps the message's
visibility extended and the attempt is stamped alive; the job's output goes to
this worker's log and to ``<output_uri>/logs/attempt-NNNNNN.log`` in the store.
When the deadline nears (less than the grace period and a margin left) or the
worker is preempted (SIGTERM), the group gets SIGTERM, ``grace_seconds`` to
checkpoint and exit, then SIGKILL.  Exit codes: 0 done; 75 stopped to resume
(the run continues in a later delivery); 65 permanent failure (dead-lettered);
anything else is retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import PermanentFailure
from ..store import BlobStore
from ..worker.progress import ProgressReporter
from .checkpoints import CheckpointStore
from .entrypoints import ENTRYPOINTS_ENV, Entrypoint, Entrypoints
from .handlers import Publisher, _each, outcome_attempt
from .locations import STORE_ENV, key_of, open_pipeline_store
from .messages import TrainRequest, parse_message
from .outcomes import RetryLater
from .run_api import (
    ATTEMPT_ENV,
    DEADLINE_ENV,
    EXIT_PERMANENT,
    EXIT_STOPPED,
    REQUEST_ENV,
    Run,
    RunStopped,
)

__all__ = ["launch", "launch_request"]

log = logging.getLogger("trainmq.training")
POLL_SECONDS = 0.2


class _Output:
    """The job's output: to the worker's log, kept whole for the store."""

    def __init__(self, stream: Any, label: str) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream, label), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any, label: str) -> None:
        for line in stream:
            self.lines.append(line)
            log.info("%s: %s", label, line.rstrip())

    def finish(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def _environment(
    run: Run, store: BlobStore, values: dict[str, Any], resume: int | None
) -> dict[str, str]:
    request = run.request
    env = dict(os.environ)
    env.update(
        {
            "TRAINMQ_RUN_ID": request.run_id,
            "TRAINMQ_IDEMPOTENCY_KEY": request.idempotency_key,
            ATTEMPT_ENV: str(run.attempt),
            REQUEST_ENV: request.to_json(),
            "TRAINMQ_PARAMS": json.dumps(values, sort_keys=True),
            STORE_ENV: store.address,
            "TRAINMQ_CHECKPOINT_URI": request.checkpoint_uri,
            "TRAINMQ_RESUME_STEP": "" if resume is None else str(resume),
        }
    )
    env.pop(DEADLINE_ENV, None)
    if run.remaining is not None:
        env[DEADLINE_ENV] = f"{time.time() + run.remaining():.3f}"
    return env


def _signal_group(process: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _supervise(
    process: subprocess.Popen[str], run: Run, grace: float, progress: Callable[[], None]
) -> tuple[int, bool]:
    """Wait for the job; stop its group at the deadline or on preemption.  Its exit code,
    and whether this launcher asked it to stop."""
    asked_at: float | None = None
    while True:
        try:
            return process.wait(timeout=POLL_SECONDS), asked_at is not None
        except subprocess.TimeoutExpired:
            pass
        progress()
        if asked_at is None and run.should_stop:
            _signal_group(process, signal.SIGTERM)
            asked_at = time.monotonic()
        elif asked_at is not None and time.monotonic() - asked_at > grace:
            _signal_group(process, signal.SIGKILL)


def launch_request(
    store: BlobStore,
    request: TrainRequest,
    entrypoints: Entrypoints,
    context: Any = None,
    record: dict[str, Any] | None = None,
    *,
    remaining: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Run ``request``'s entrypoint for its run; returns what happened (see the module)."""
    if not request.entrypoint:
        raise PermanentFailure("the request names no entrypoint (the launch handler needs one)")
    entry: Entrypoint = entrypoints.get(request.entrypoint)
    argv, values = entry.argv(dict(request.params or {}))
    with Run(
        request,
        store=store,
        context=context,
        record=record,
        remaining=remaining,
        stop_margin=entry.grace_seconds + 10,  # time for the job to checkpoint and exit
    ) as run:
        if not run.training:
            _attached(run)
            return run.result or {}
        checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri, "checkpoint"))
        steps = checkpoints.complete_steps()
        resume = steps[-1] if steps else None
        process = subprocess.Popen(
            argv,
            env=_environment(run, store, values, resume),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stopped whole
        )
        output = _Output(process.stdout, f"{request.run_id}[{run.attempt}]")
        try:
            code, asked = _supervise(process, run, entry.grace_seconds, ProgressReporter())
        finally:
            _signal_group(process, signal.SIGKILL)  # nothing of the job outlives its launch
            process.wait()
            text = output.finish()
            if process.stdout is not None:
                process.stdout.close()
            logs = key_of(store, request.output_uri, "output").rstrip("/")
            store.put(f"{logs}/logs/attempt-{run.attempt:06d}.log", text.encode())
        return _outcome(run, code, asked, checkpoints, text)
    return run.result or {}


def _attached(run: Run) -> None:
    """A duplicate delivery (or one of a finished run) says so in the run's events, as the
    built-in trainer's does."""
    result = run.result or {}
    done = "attached_to_attempt" not in result
    publish = Publisher(
        run.registry,
        run.key,
        run.request.run_id,
        outcome_attempt(run.registry, run.key),
        uuid.uuid4().hex[:8],
    )
    publish(
        "attached",
        step=int(result.get("steps", 0)) if done else 0,
        message="a duplicate delivery found the run complete"
        if done
        else "a duplicate delivery attached to the running attempt; it is acknowledged",
    )


def _outcome(
    run: Run, code: int, asked: bool, checkpoints: CheckpointStore, text: str
) -> dict[str, Any]:
    """Map the job's exit code onto the run and the message (see the module docstring)."""
    if code == 0:
        done = run.registry.completion(run.key)
        return done if done is not None else run.complete(exit_code=0)
    steps = checkpoints.complete_steps()
    if code == EXIT_STOPPED or asked:
        raise RunStopped(steps[-1] if steps else 0, f"the job stopped to resume (exit {code})")
    tail = text.strip().splitlines()[-3:]
    if code == EXIT_PERMANENT:
        raise PermanentFailure(f"the job failed permanently: {' | '.join(tail)}"[:1000])
    run.registry.release(run.key, run.attempt, f"the job exited with {code}")
    raise RetryLater(f"the job exited with {code}: {' | '.join(tail)}"[:1000])


def launch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Worker handler: launch each record's entrypoint (``$TRAINMQ_ENTRYPOINTS``)."""
    path = os.environ.get(ENTRYPOINTS_ENV)
    if not path:
        raise PermanentFailure(f"this worker has no entrypoints file (${ENTRYPOINTS_ENV})")
    entrypoints = Entrypoints.load(path)
    store = open_pipeline_store()

    def one(record: dict[str, Any]) -> None:
        request = parse_message(record["body"], TrainRequest)
        assert isinstance(request, TrainRequest)
        launch_request(store, request, entrypoints, context, record)

    return _each(event, one)
