"""The pipeline's stages as Lambda handlers, for ``trainmq worker`` (and Lambda's runtime).

``trainmq.training.handlers:prepare``, ``:train`` and ``:evaluate`` each take
an SQS event.  They are configured by the environment, which the worker's
handler processes inherit:

``TRAINMQ_STORE``
    the store every URI in the messages must point into (default ``./.trainmq/store``);
``TRAINMQ_BACKEND`` / ``TRAINMQ_DB``
    the queues (as for the CLI), used to publish events and the next stage's requests
    (a worker sets ``TRAINMQ_BACKEND`` and ``TRAINMQ_STORE`` to its own for its handlers);
``TRAINMQ_EVENTS_QUEUE``
    where ``TrainingEvent``s are sent (optional; they are kept in the run registry anyway);
``TRAINMQ_EVALUATE_QUEUE``
    where a finished run sends its ``EvaluateRequest`` (optional);
``TRAINMQ_STALE_AFTER`` / ``TRAINMQ_BEAT_EVERY``
    seconds after which a run's silent attempt is taken over (default 60; timed by
    the watcher's own clock), and how often a training attempt stamps itself alive
    from its liveness thread (default 5);
``TRAINMQ_CACHE``
    where a training host keeps its verified copies of shards (default: a temp folder).

A training invocation that runs out of time (or is preempted by SIGTERM)
checkpoints, releases its attempt and sends a continuation of its request to
its own queue, and is acknowledged: planned stops never count as failures.

A message that can never succeed (invalid, corrupt data) raises or reports a
``PermanentFailure`` and goes to the dead-letter queue with its reason.  Any
other failure fails the batch, which is retried; every stage is idempotent.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import PermanentFailure
from ..store import BlobStore
from ..worker.progress import Preemption, ProgressReporter
from .attempts import Acquired, Finished, StillTraining, acquire
from .fencing import Fence, Liveness, Superseded
from .limits import TrainingLimits
from .locations import open_pipeline_store
from .messages import EvaluateRequest, PrepareRequest, TrainingEvent, TrainRequest, parse_message
from .outcomes import RetryLater
from .runs import RunRegistry

__all__ = ["RetryLater", "evaluate", "prepare", "train"]

log = logging.getLogger("trainmq.training")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class _Queues:
    """Sends to the pipeline's queues, by name or URL, on the configured backend."""

    def __init__(self) -> None:
        self._client: Any = None
        self._urls: dict[str, str] = {}

    def send(self, queue: str | None, body: str, **extra: str) -> None:
        if not queue:
            return
        if self._client is None:
            from ..queue import LocalClient, open_service

            address = os.environ.get("TRAINMQ_BACKEND") or os.environ.get("TRAINMQ_DB") or None
            self._client = LocalClient(open_service(address))
        url = self._urls.get(queue)
        if url is None:
            url = (
                queue if "://" in queue else self._client.get_queue_url(QueueName=queue)["QueueUrl"]
            )
            self._urls[queue] = url
        self._client.send_message(QueueUrl=url, MessageBody=body, **extra)


_queues = _Queues()


class Publisher:
    """Publishes an attempt's ``TrainingEvent``s: to the run registry and the events queue."""

    def __init__(
        self,
        registry: RunRegistry,
        key: str,
        run_id: str,
        attempt: int,
        writer: str = "",
        *,
        fence: Fence | None = None,
    ) -> None:
        self.registry, self.key, self.run_id, self.attempt = registry, key, run_id, attempt
        self.writer = writer
        self.fence = fence
        self.seq = 0
        self._lock = threading.Lock()  # checkpoint events come from the writer thread

    def __call__(self, event: str, **fields: Any) -> None:
        if self.fence is not None:
            self.fence.check()  # an event is a write: a superseded attempt makes none
        with self._lock:
            self.seq += 1
            seq = self.seq
        message = TrainingEvent(
            run_id=self.run_id,
            event=event,
            attempt=self.attempt,
            at=time.time(),
            **fields,
        )
        self.registry.record_event(self.key, seq, message, self.writer)
        try:
            _queues.send(os.environ.get("TRAINMQ_EVENTS_QUEUE"), message.to_json())
        except Exception as exc:  # events are advisory: never fail training for one
            log.warning("could not publish a training event: %s", exc)


def _each(event: dict[str, Any], one: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Run ``one`` on every record; permanent failures are reported per item."""
    permanent: list[dict[str, str]] = []
    retry: list[str] = []
    for record in event.get("Records", []):
        try:
            one(record)
        except PermanentFailure as exc:
            log.warning("message %s can never succeed: %s", record.get("messageId"), exc.reason)
            permanent.append({"itemIdentifier": record["messageId"], "reason": exc.reason})
        except RetryLater as exc:
            log.info("message %s: %s", record.get("messageId"), exc)
            retry.append(record["messageId"])
    if retry:
        # Raising fails the batch whatever the mapping's settings; every stage is idempotent,
        # so the records that did succeed are harmlessly redone.
        raise RetryLater(f"{len(retry)} message(s) to retry: {', '.join(retry)}")
    return {"batchItemFailures": [], "permanentFailures": permanent}


def _remaining(context: Any) -> Callable[[], float] | None:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return None
    return lambda: float(getter()) / 1000.0


# -- prepare -------------------------------------------------------------------------------------
def prepare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Tokenize each record's input file into shards; the last part writes the manifest."""
    from .prepare import prepare as prepare_input

    store = open_pipeline_store()

    def one(record: dict[str, Any]) -> None:
        request = parse_message(record["body"], PrepareRequest)
        assert isinstance(request, PrepareRequest)
        result = prepare_input(store, request)
        log.info(
            "prepared %s: %d tokens in %d shards%s",
            request.input_uri,
            result.tokens,
            result.shards,
            f"; manifest {result.manifest_uri} sha256 {result.manifest_sha256}"
            if result.manifest_uri
            else "",
        )

    return _each(event, one)


# -- train ---------------------------------------------------------------------------------------
def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted names of the fields where two requests differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for name in sorted(set(old) | set(new)):
            found += _differences(old.get(name), new.get(name), f"{path}{name}.")
        return found
    return [] if old == new else [path.rstrip(".")]


def check_same_request(registered: str, request: TrainRequest) -> None:
    """A key names one request: the same key with other settings is refused, naming them."""
    try:  # normalized: a registered body may leave defaults out (the intake keeps it raw)
        before = json.loads(TrainRequest.model_validate_json(registered).to_json())
    except ValueError:
        return
    now = json.loads(request.to_json())
    changed = [d for d in _differences(before, now) if d not in _IGNORED_FIELDS]
    if changed:
        raise PermanentFailure(
            f"idempotency key {request.idempotency_key!r} already names a run with other "
            f"settings: {', '.join(changed)} differ; send a new key for a new run"
        )


#: Fields that do not change what a run computes (a re-send may carry another trace).
_IGNORED_FIELDS = {"trace_id"}


def train_request(
    store: BlobStore,
    request: TrainRequest,
    context: Any = None,
    *,
    message_id: str | None = None,
    queue: str | None = None,
) -> dict[str, Any]:
    """Train (or resume, or attach to) the run of ``request``; returns the run's result.

    ``message_id`` is the delivery's SQS message id (it tells a redelivery from a
    duplicate); ``queue`` is where a continuation goes when the invocation's time runs
    out or the worker is preempted (without one, the message is retried instead).
    """
    registry = RunRegistry(store)
    key = request.idempotency_key
    registration = registry.register(request.run_id, key, request.to_json(), time.time())
    if registration.outcome == "attached":
        check_same_request(registration.run.request, request)
    remaining = _remaining(context)
    try:
        outcome = acquire(
            registry,
            key,
            worker=_worker_name(),
            message_id=message_id,
            stale_after=_env_float("TRAINMQ_STALE_AFTER", 60.0),
            remaining=remaining,
        )
    except StillTraining as exc:
        raise RetryLater(f"run {request.run_id}: {exc}") from None
    if isinstance(outcome, Acquired):
        return _train_attempt(store, registry, request, outcome.attempt, remaining, queue)
    attached = Publisher(
        registry, key, request.run_id, outcome_attempt(registry, key), uuid.uuid4().hex[:8]
    )
    if isinstance(outcome, Finished):
        attached(
            "attached",
            step=int(outcome.result.get("steps", 0)),
            message="a duplicate delivery found the run complete",
        )
        return outcome.result
    attached(
        "attached",
        message="a duplicate delivery attached to the running attempt; "
        "it is acknowledged, the run's events report the outcome",
    )
    return {"run_id": request.run_id, "attached_to_attempt": outcome.attempt}


def outcome_attempt(registry: RunRegistry, key: str) -> int:
    attempts = registry.attempts(key)
    return int(attempts[-1]["attempt"]) if attempts else 1


def _train_attempt(
    store: BlobStore,
    registry: RunRegistry,
    request: TrainRequest,
    attempt: int,
    remaining: Callable[[], float] | None,
    queue: str | None,
) -> dict[str, Any]:
    """Train as ``attempt``: fenced, stamped alive from a thread, preemptible."""
    from .trainer import OutOfTime, Trainer

    key = request.idempotency_key
    fence = Fence(registry, key, attempt)
    publish = Publisher(registry, key, request.run_id, attempt, fence=fence)
    liveness = Liveness(fence, _env_float("TRAINMQ_BEAT_EVERY", 5.0)).start()
    try:
        with Preemption() as preempted:
            trainer = Trainer(
                store,
                request,
                emit=publish,
                beat=ProgressReporter(),
                remaining=remaining,
                fence=fence,
                preempted=preempted,
            )
            result = trainer.run()
        fence.check()
        outcome = registry.complete(key, {**result.as_dict(), "attempt": attempt})
    except PermanentFailure as exc:
        publish("failed", message=exc.reason)
        raise
    except Superseded as exc:
        log.warning("run %s: %s", request.run_id, exc)
        return {"run_id": request.run_id, "superseded_attempt": attempt}
    except OutOfTime as exc:
        return _continue(registry, request, fence, publish, exc.step, str(exc), queue)
    finally:
        liveness.stop()
    _completed(request, result, publish)
    return outcome


def _continue(
    registry: RunRegistry,
    request: TrainRequest,
    fence: Fence,
    publish: Publisher,
    step: int,
    why: str,
    queue: str | None,
) -> dict[str, Any]:
    """A planned stop is no failure: release the attempt and send a fresh continuation.

    The original message is then acknowledged, so a run that needs many invocations
    never reaches ``maxReceiveCount``.  A crash between the send and the
    acknowledgement leaves a duplicate, which attaches (the registry decides).
    """
    fence.check()
    registry.release(request.idempotency_key, fence.attempt, why)
    publish("released", step=step, message=why)
    if not queue:
        raise RetryLater(why)
    extra: dict[str, str] = {}
    if queue.endswith(".fifo"):
        extra = {
            "MessageGroupId": request.run_id,
            "MessageDeduplicationId": f"{request.run_id}/{step}"[:128],
        }
    _queues.send(queue, request.to_json(), **extra)
    return {"run_id": request.run_id, "continued_from_step": step}


def _completed(request: TrainRequest, result: Any, publish: Publisher) -> None:
    """Publish the completion; send the evaluation of the final checkpoint, if configured."""
    publish(
        "completed",
        step=result.steps,
        total_steps=result.steps,
        tokens=result.tokens,
        train_loss=result.train_loss,
        val_loss=result.val_loss_estimate,
        checkpoint_uri=result.checkpoints[-1],
        message=f"weights sha256 {result.weights_sha256}",
    )
    evaluate_queue = os.environ.get("TRAINMQ_EVALUATE_QUEUE")
    if evaluate_queue:
        follow_up = EvaluateRequest(
            run_id=request.run_id,
            idempotency_key=f"{request.idempotency_key}/evaluate",
            dataset=request.dataset,
            checkpoint_uri=result.checkpoints[-1],
            report_uri=f"{result.output_uri}/evaluation.json",
            trace_id=request.trace_id,
        )
        _queues.send(evaluate_queue, follow_up.to_json())


def _queue_of(record: dict[str, Any]) -> str | None:
    arn = record.get("eventSourceARN")
    return str(arn).rsplit(":", 1)[-1] if arn else None


def train(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Train each record's run; a duplicate attaches, a redelivery resumes."""
    store = open_pipeline_store()
    limits = TrainingLimits.from_env()  # this worker's bounds (see training.limits)

    def one(record: dict[str, Any]) -> None:
        request = parse_message(record["body"], TrainRequest)
        assert isinstance(request, TrainRequest)
        limits.check(request)
        train_request(
            store, request, context, message_id=record.get("messageId"), queue=_queue_of(record)
        )

    return _each(event, one)


# -- evaluate ------------------------------------------------------------------------------------
def evaluate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Evaluate each record's checkpoint into its report."""
    from .evaluate import evaluate as evaluate_checkpoint

    store = open_pipeline_store()
    registry = RunRegistry(store)

    def one(record: dict[str, Any]) -> None:
        request = parse_message(record["body"], EvaluateRequest)
        assert isinstance(request, EvaluateRequest)
        report = evaluate_checkpoint(store, request)
        run = registry.find(request.run_id)
        if run is not None:
            attempts = registry.attempts(run.idempotency_key)
            Publisher(
                registry,
                run.idempotency_key,
                request.run_id,
                int(attempts[-1]["attempt"]) if attempts else 1,
                "evaluate",
            )(
                "evaluated",
                step=int(report["step"]),
                val_loss=float(report["val_loss"]),
                checkpoint_uri=request.checkpoint_uri,
                message=f"perplexity {report['perplexity']:.2f}; report {request.report_uri}",
            )

    return _each(event, one)
