"""The intake stage, the part of the pipeline that runs in AWS Lambda.

Lambda's SQS event-source mapping hands :func:`handler` batches from the intake
queue.  For each record it

* parses the body (``PrepareRequest``, ``TrainRequest`` or ``EvaluateRequest``);
* for a ``TrainRequest``, registers the run in the run registry (a create-only
  put in the store, so it holds across every concurrent Lambda instance): the
  first delivery of an idempotency key *starts* the run and is forwarded to the
  train queue; a duplicate *attaches* to that run and is not forwarded;
* forwards prepare and evaluate requests to their queues;
* sends a body that can never be valid (``PermanentFailure``) to the
  dead-letter queue at once, with the reason in the ``trainmq.DeadLetterReason``
  attribute, and counts it as handled.  Lambda has no permanent-failure route of
  its own (a failed record is only retried until ``maxReceiveCount`` moves it,
  reasonless, to the DLQ), so the handler does it; without a dead-letter queue
  configured the record is reported as failed and takes that slow road.

Any other error reports just that record in ``batchItemFailures`` (the mapping
runs with ``ReportBatchItemFailures``), so one bad record never redelivers the
batch.  The heavy stages (tokenizing, training, evaluating) do not run here:
``trainmq worker`` hosts consume the queues this stage routes to.

Forwarding is at-least-once and never lost: a ``TrainRequest`` whose run was
registered but whose forwarding did not finish (the instance died in between)
is forwarded by its redelivery, recognised by the missing forwarded marker
``intake/forwarded/<key hash>.json``.  Two deliveries racing through that
window may both forward; the train workers' own claims on the run registry
absorb that.

Configuration comes from the environment (set by the Pulumi stack):

=================================  ==============================================
``TRAINMQ_STORE``                  the store holding the run registry (``s3://bucket/prefix``)
``TRAINMQ_PREPARE_QUEUE_URL``      where prepare requests go
``TRAINMQ_TRAIN_QUEUE_URL``        where started training runs go
``TRAINMQ_EVALUATE_QUEUE_URL``     where evaluate requests go
``TRAINMQ_DEAD_LETTER_QUEUE_URL``  where invalid messages go (optional)
=================================  ==============================================

Only the core package and boto3 are imported here: the Lambda deployment zip
(``trainmq package lambda``) carries no training extras.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigurationError, PermanentFailure, TrainmqError
from ..queue.model import DEAD_LETTER_REASON, SOURCE_QUEUE
from ..store import BlobExists, BlobStore, open_store
from .messages import EvaluateRequest, PrepareRequest, TrainRequest, parse_message
from .runs import RunRegistry, key_hash

__all__ = [
    "ENVIRONMENT",
    "IDEMPOTENCY_KEY",
    "Intake",
    "Outcome",
    "Routes",
    "handler",
]

log = logging.getLogger("trainmq.intake")

#: The message attribute that carries a forwarded request's idempotency key.
IDEMPOTENCY_KEY = "trainmq.IdempotencyKey"

#: Environment variables read by :meth:`Routes.from_environment`, with their meaning.
ENVIRONMENT = {
    "TRAINMQ_STORE": "the store holding the run registry",
    "TRAINMQ_PREPARE_QUEUE_URL": "the prepare queue's URL",
    "TRAINMQ_TRAIN_QUEUE_URL": "the train queue's URL",
    "TRAINMQ_EVALUATE_QUEUE_URL": "the evaluate queue's URL",
    "TRAINMQ_DEAD_LETTER_QUEUE_URL": "the dead-letter queue's URL (optional)",
}

Outcome = Literal["forwarded", "duplicate", "dead-lettered"]

_MAX_REASON = 1024  # characters of a dead-letter reason kept in the attribute
#: What SQS takes as a MessageGroupId or MessageDeduplicationId.
_FIFO_ID = re.compile(r"[!-~]{1,128}")


class NotDeadLettered(TrainmqError):
    """A permanent failure with nowhere to go: the record is reported as failed."""


@dataclass(frozen=True)
class Routes:
    """Where each kind of message goes, and where the store is."""

    store: str
    prepare: str
    train: str
    evaluate: str
    dead_letter: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Routes:
        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"{name} is not set ({ENVIRONMENT[name]})")
            return value

        return cls(
            store=required("TRAINMQ_STORE"),
            prepare=required("TRAINMQ_PREPARE_QUEUE_URL"),
            train=required("TRAINMQ_TRAIN_QUEUE_URL"),
            evaluate=required("TRAINMQ_EVALUATE_QUEUE_URL"),
            dead_letter=environ.get("TRAINMQ_DEAD_LETTER_QUEUE_URL", "").strip() or None,
        )


def forwarded_marker(idempotency_key: str) -> str:
    """The store key recording that a run's ``TrainRequest`` reached the train queue."""
    return f"intake/forwarded/{key_hash(idempotency_key)}.json"


class Intake:
    """Validates, deduplicates and routes one SQS event's records.

    ``sqs`` is a boto3-shaped SQS client (boto3's, or ``trainmq.client()``),
    ``store`` the blob store of the run registry, ``now`` the clock.
    """

    def __init__(
        self,
        sqs: Any,
        store: BlobStore,
        routes: Routes,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.sqs = sqs
        self.store = store
        self.routes = routes
        self.registry = RunRegistry(store)
        self.now = now

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Intake:
        """The intake Lambda's configuration: boto3 clients from the usual AWS environment."""
        import boto3

        routes = Routes.from_environment(environ)
        return cls(boto3.client("sqs"), open_store(routes.store), routes)

    # -- a batch -------------------------------------------------------------------------
    def handle_batch(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """Handle every record; the failed ones come back for Lambda to redeliver."""
        failures = []
        for record in event.get("Records", []):
            message_id = str(record.get("messageId", ""))
            try:
                outcome = self.handle_record(record)
            except Exception:
                log.exception("record %s failed; it will be redelivered", message_id)
                failures.append({"itemIdentifier": message_id})
            else:
                log.info("record %s: %s", message_id, outcome)
        return {"batchItemFailures": failures}

    def handle_record(self, record: Mapping[str, Any]) -> Outcome:
        try:
            message = parse_message(record["body"])
        except PermanentFailure as exc:
            return self._dead_letter(record, exc.reason)
        if isinstance(message, TrainRequest):
            return self._train(message, record["body"])
        if isinstance(message, PrepareRequest):
            self._send(
                self.routes.prepare, record["body"], message.idempotency_key, message.dataset_id
            )
            return "forwarded"
        if isinstance(message, EvaluateRequest):
            self._send(
                self.routes.evaluate, record["body"], message.idempotency_key, message.run_id
            )
            return "forwarded"
        kind = getattr(message, "kind", None)
        return self._dead_letter(
            record, f"intake accepts prepare, train and evaluate requests, not {kind!r}"
        )

    # -- the stages ----------------------------------------------------------------------
    def _train(self, request: TrainRequest, body: str) -> Outcome:
        key = request.idempotency_key
        registration = self.registry.register(request.run_id, key, body, self.now())
        marker = forwarded_marker(key)
        if registration.outcome == "attached":
            if self.store.exists(marker):
                log.info(
                    "duplicate TrainRequest for run %s (key %r): attached, not forwarded",
                    registration.run.run_id,
                    key,
                )
                return "duplicate"
            # Registered by a delivery that never finished forwarding: forward the run's
            # own request (this body may differ if a producer reused the key).
            body = registration.run.request or body
        response = self._send(self.routes.train, body, key, registration.run.run_id)
        record = {"message_id": response.get("MessageId"), "at": self.now()}
        # BlobExists: a racing delivery forwarded too; the train workers' registry absorbs it.
        with contextlib.suppress(BlobExists):
            self.store.create(marker, json.dumps(record).encode())
        return "forwarded"

    def _send(self, url: str, body: str, idempotency_key: str, group: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "QueueUrl": url,
            "MessageBody": body,
            "MessageAttributes": {
                IDEMPOTENCY_KEY: {"DataType": "String", "StringValue": idempotency_key}
            },
        }
        if url.endswith(".fifo"):
            params["MessageGroupId"] = _fifo_id(group)
            params["MessageDeduplicationId"] = key_hash(idempotency_key)
        response: dict[str, Any] = self.sqs.send_message(**params)
        return response

    def _dead_letter(self, record: Mapping[str, Any], reason: str) -> Outcome:
        message_id = str(record.get("messageId", ""))
        if self.routes.dead_letter is None:
            raise NotDeadLettered(
                f"record {message_id} is invalid ({reason}) and no dead-letter queue is set "
                "(TRAINMQ_DEAD_LETTER_QUEUE_URL)"
            )
        attributes = {
            DEAD_LETTER_REASON: {"DataType": "String", "StringValue": reason[:_MAX_REASON] or "-"}
        }
        source = record.get("eventSourceARN")
        if source:
            attributes[SOURCE_QUEUE] = {"DataType": "String", "StringValue": str(source)}
        params: dict[str, Any] = {
            "QueueUrl": self.routes.dead_letter,
            "MessageBody": record["body"],
            "MessageAttributes": attributes,
        }
        if self.routes.dead_letter.endswith(".fifo"):
            group = record.get("attributes", {}).get("MessageGroupId", "dead-letter")
            params["MessageGroupId"] = _fifo_id(str(group))
            params["MessageDeduplicationId"] = _fifo_id(message_id)
        self.sqs.send_message(**params)
        log.warning("record %s dead-lettered: %s", message_id, reason)
        return "dead-lettered"


def _fifo_id(value: str) -> str:
    """``value`` if SQS takes it as a group or deduplication id, else its sha256."""
    if _FIFO_ID.fullmatch(value):
        return value
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@functools.cache
def _intake() -> Intake:
    # One per Lambda execution environment: clients are reused across invocations.
    return Intake.from_environment(os.environ)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point (``trainmq.training.intake.handler``)."""
    return _intake().handle_batch(event)
