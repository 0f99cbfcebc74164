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
    seconds after which a run's silent attempt is taken over (default 60), and
    how often a training attempt stamps itself alive (default 5).

A message that can never succeed (invalid, corrupt data) raises or reports a
``PermanentFailure`` and goes to the dead-letter queue with its reason.  Any
other failure fails the batch, which is retried; every stage is idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import PermanentFailure
from ..store import BlobStore
from .limits import TrainingLimits
from .locations import open_pipeline_store
from .messages import EvaluateRequest, PrepareRequest, TrainingEvent, TrainRequest, parse_message
from .runs import RunRegistry

__all__ = ["RetryLater", "evaluate", "prepare", "train"]

log = logging.getLogger("trainmq.training")


class RetryLater(Exception):
    """The message cannot be finished now; the queue will deliver it again."""


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

    def send(self, queue: str | None, body: str) -> None:
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
        self._client.send_message(QueueUrl=url, MessageBody=body)


_queues = _Queues()


class Publisher:
    """Publishes an attempt's ``TrainingEvent``s: to the run registry and the events queue."""

    def __init__(
        self, registry: RunRegistry, key: str, run_id: str, attempt: int, writer: str = ""
    ) -> None:
        self.registry, self.key, self.run_id, self.attempt = registry, key, run_id, attempt
        self.writer = writer
        self.seq = 0

    def __call__(self, event: str, **fields: Any) -> None:
        self.seq += 1
        message = TrainingEvent(
            run_id=self.run_id,
            event=event,
            attempt=self.attempt,
            at=time.time(),
            **fields,
        )
        self.registry.record_event(self.key, self.seq, message, self.writer)
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


def _acquire(
    registry: RunRegistry, request: TrainRequest, remaining: Callable[[], float] | None
) -> int | None:
    """This delivery's attempt, or ``None`` if the run completed meanwhile (attached)."""
    key = request.idempotency_key
    stale_after = _env_float("TRAINMQ_STALE_AFTER", 60.0)
    announced = False
    while True:
        if registry.completion(key) is not None:
            return None
        attempt = registry.acquire(key, time.time(), _worker_name(), stale_after)
        if attempt is not None:
            return attempt
        if not announced:
            live = registry.attempts(key)
            Publisher(
                registry, key, request.run_id, int(live[-1]["attempt"]), uuid.uuid4().hex[:8]
            )("attached", message="a duplicate delivery attached to the running attempt")
            announced = True
        if remaining is not None and remaining() < 15:
            raise RetryLater(f"run {request.run_id} is still training elsewhere")
        time.sleep(1.0)


def train_request(store: BlobStore, request: TrainRequest, context: Any = None) -> dict[str, Any]:
    """Train (or resume, or attach to) the run of ``request``; returns the run's result."""
    from .trainer import OutOfTime, Trainer

    registry = RunRegistry(store)
    key = request.idempotency_key
    registry.register(request.run_id, key, request.to_json(), time.time())
    remaining = _remaining(context)
    attempt = _acquire(registry, request, remaining)
    if attempt is None:
        done = registry.completion(key)
        assert done is not None
        attempts = registry.attempts(key)
        Publisher(
            registry,
            key,
            request.run_id,
            int(attempts[-1]["attempt"]) if attempts else 1,
            uuid.uuid4().hex[:8],
        )(
            "attached",
            step=int(done.get("steps", 0)),
            message="a duplicate delivery found the run complete",
        )
        return done
    publish = Publisher(registry, key, request.run_id, attempt)
    beat_every = _env_float("TRAINMQ_BEAT_EVERY", 5.0)
    last_beat = [0.0]

    def beat() -> None:
        now = time.time()
        if now - last_beat[0] >= beat_every:
            registry.beat(key, attempt, now)
            last_beat[0] = now

    trainer = Trainer(store, request, emit=publish, beat=beat, remaining=remaining)
    try:
        result = trainer.run()
    except PermanentFailure as exc:
        publish("failed", message=exc.reason)
        raise
    except OutOfTime as exc:
        raise RetryLater(str(exc)) from None
    outcome = registry.complete(key, {**result.as_dict(), "attempt": attempt})
    publish(
        "completed",
        step=result.steps,
        total_steps=result.steps,
        tokens=result.tokens,
        train_loss=result.train_loss,
        val_loss=result.val_loss,
        checkpoint_uri=result.checkpoints[-1],
        message=f"weights sha256 {result.weights_sha256}",
    )
    evaluate_queue = os.environ.get("TRAINMQ_EVALUATE_QUEUE")
    if evaluate_queue:
        follow_up = EvaluateRequest(
            run_id=request.run_id,
            idempotency_key=f"{key}/evaluate",
            dataset=request.dataset,
            checkpoint_uri=result.checkpoints[-1],
            report_uri=f"{result.output_uri}/evaluation.json",
            trace_id=request.trace_id,
        )
        _queues.send(evaluate_queue, follow_up.to_json())
    return outcome


def train(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Train each record's run; a duplicate attaches, a redelivery resumes."""
    store = open_pipeline_store()
    limits = TrainingLimits.from_env()  # this worker's bounds (see training.limits)

    def one(record: dict[str, Any]) -> None:
        request = parse_message(record["body"], TrainRequest)
        assert isinstance(request, TrainRequest)
        limits.check(request)
        train_request(store, request, context)

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
