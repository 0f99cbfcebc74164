"""Acknowledging a batch: delete what succeeded, dead-letter what never can, back off the rest.

Every call here is a batch call (10 entries per request, SQS's limit).  A
message is deleted only after its fate is recorded elsewhere: a dead-lettered
copy is sent to the DLQ before the original is deleted, so a crash in between
leaves a duplicate, never a loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..queue.model import DEAD_LETTER_REASON, SOURCE_MESSAGE_ID, SOURCE_QUEUE

__all__ = ["DEAD_LETTER_REASON", "SOURCE_QUEUE", "Settler"]

log = logging.getLogger("trainmq.worker")



def _chunks(items: Sequence[Any], size: int = 10) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Settler:
    """The queue calls that end (or postpone) a batch's messages."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        queue_arn: str,
        dlq_url: str | None,
        *,
        fifo: bool,
        backoff: float | None,
        backoff_max: float,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.dlq_url = dlq_url
        self.fifo = fifo
        self.backoff = backoff
        self.backoff_max = backoff_max

    def delete(self, handles: Sequence[str]) -> int:
        """DeleteMessageBatch in chunks of 10; returns how many were deleted."""
        deleted = 0
        for chunk in _chunks(handles):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
            result = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            deleted += len(result.get("Successful", []))
            for failure in result.get("Failed", []):
                log.warning("delete failed: %s", failure.get("Message"))
        return deleted

    def set_visibility(self, changes: Iterable[tuple[str, int]]) -> None:
        items = list(changes)
        for chunk in _chunks(items):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": t}
                for i, (h, t) in enumerate(chunk)
            ]
            result = self.client.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=entries
            )
            for failure in result.get("Failed", []):
                log.warning("visibility change failed: %s", failure.get("Message"))

    def release(self, handles: Sequence[str]) -> None:
        """Make received-but-unstarted messages visible again at once (graceful shutdown)."""
        self.set_visibility((h, 0) for h in handles)

    def back_off(self, messages: Sequence[dict[str, Any]]) -> None:
        """After a failure: visibility = min(base * 2**(receive_count - 1), max)."""
        if self.backoff is None or not messages:
            return
        changes = []
        for message in messages:
            count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            delay = min(self.backoff * 2 ** max(0, count - 1), self.backoff_max)
            changes.append((message["ReceiptHandle"], int(delay)))
        self.set_visibility(changes)

    def dead_letter(self, messages: Sequence[dict[str, Any]], reasons: dict[str, str]) -> list[str]:
        """Copy each message to the DLQ with its reason, then delete it.

        Returns the ids that could not be dead-lettered (no DLQ, or the DLQ refused
        the copy); those stay in the queue and are retried like any failure.
        """
        if not messages:
            return []
        if self.dlq_url is None:
            log.error("permanent failure but the queue has no dead-letter queue; will retry")
            return [m["MessageId"] for m in messages]
        refused: list[str] = []
        for chunk in _chunks(messages):
            entries = [self._copy(str(i), m, reasons[m["MessageId"]]) for i, m in enumerate(chunk)]
            result = self.client.send_message_batch(QueueUrl=self.dlq_url, Entries=entries)
            sent = {int(e["Id"]) for e in result.get("Successful", [])}
            for failure in result.get("Failed", []):
                log.error("dead-letter copy refused: %s", failure.get("Message"))
            refused += [m["MessageId"] for i, m in enumerate(chunk) if i not in sent]
            self.delete([m["ReceiptHandle"] for i, m in enumerate(chunk) if i in sent])
        return refused

    def _copy(self, entry_id: str, message: dict[str, Any], reason: str) -> dict[str, Any]:
        attributes = dict(message.get("MessageAttributes", {}))
        attributes[DEAD_LETTER_REASON] = {"DataType": "String", "StringValue": reason or "-"}
        attributes[SOURCE_QUEUE] = {"DataType": "String", "StringValue": self.queue_arn}
        attributes[SOURCE_MESSAGE_ID] = {"DataType": "String", "StringValue": message["MessageId"]}
        entry: dict[str, Any] = {
            "Id": entry_id,
            "MessageBody": message["Body"],
            "MessageAttributes": attributes,
        }
        if self.fifo:
            system = message.get("Attributes", {})
            entry["MessageGroupId"] = system.get("MessageGroupId", "dead-letter")
            entry["MessageDeduplicationId"] = message["MessageId"]
        return entry
