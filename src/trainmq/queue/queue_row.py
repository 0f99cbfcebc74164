"""A queue's row and the checks on it that do not depend on the database.

Both engines store a queue as the same columns (``QUEUE_COLUMNS``) and apply
the same SQS rules when creating, re-creating, tagging and purging it; the
rules live here once, and each engine keeps only its SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import (
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueNameExists,
)
from . import limits
from .attributes import parse_redrive_policy
from .model import QueueRecord

__all__ = [
    "QUEUE_COLUMNS",
    "QueueRow",
    "check_purge",
    "check_recreate",
    "check_same_attributes",
    "check_tags",
    "dead_letter_sources",
]

QUEUE_COLUMNS = (
    "id, name, fifo, attributes, tags, created_at, modified_at, purged_at, next_sequence"
)


@dataclass(slots=True)
class QueueRow:
    id: int
    name: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]
    created_at: int
    modified_at: int
    purged_at: int | None
    next_sequence: int

    @property
    def visibility_ms(self) -> int:
        return int(self.attributes["VisibilityTimeout"]) * 1000

    @property
    def retention_ms(self) -> int:
        return int(self.attributes["MessageRetentionPeriod"]) * 1000

    @property
    def delay_seconds(self) -> int:
        return int(self.attributes["DelaySeconds"])

    @property
    def content_based_deduplication(self) -> bool:
        return self.attributes.get("ContentBasedDeduplication") == "true"

    @property
    def deduplicate_per_group(self) -> bool:
        return self.attributes.get("DeduplicationScope") == "messageGroup"

    def redrive(self) -> tuple[str, int] | None:
        """(dead-letter queue name, maxReceiveCount), or None."""
        text = self.attributes.get("RedrivePolicy")
        if not text:
            return None
        policy = parse_redrive_policy(text)
        return policy.dead_letter_target_arn.rsplit(":", 1)[1], policy.max_receive_count

    def record(self) -> QueueRecord:
        return QueueRecord(
            self.name, dict(self.attributes), dict(self.tags), self.created_at, self.modified_at
        )


def check_same_attributes(existing: QueueRow, attributes: dict[str, str]) -> None:
    """CreateQueue on an existing name succeeds only if no given attribute differs."""
    for key, value in attributes.items():
        if existing.attributes.get(key, "") != value:
            raise QueueNameExists(
                f"A queue already exists with the same name and a different value for "
                f"attribute {key}"
            )


def check_recreate(deleted_at: int | None, now_ms: int) -> None:
    """SQS refuses to create a name again within a minute of deleting it."""
    if deleted_at is not None and now_ms - deleted_at < limits.QUEUE_RECREATE_DELAY_SECONDS * 1000:
        raise QueueDeletedRecently()


def check_tags(name: str, tags: dict[str, str]) -> None:
    if len(tags) > limits.MAX_TAGS:
        raise InvalidParameterValue(f"Too many tags added for queue {name}.")


def check_purge(row: QueueRow, now_ms: int) -> None:
    """One PurgeQueue per queue every 60 seconds."""
    if row.purged_at is not None and now_ms - row.purged_at < limits.PURGE_INTERVAL_SECONDS * 1000:
        raise PurgeQueueInProgress(
            f"Only one PurgeQueue operation on {row.name} is allowed every 60 seconds."
        )


def dead_letter_sources(rows: Iterable[QueueRow], dead_letter_queue: str) -> list[str]:
    """The names of the queues whose RedrivePolicy targets ``dead_letter_queue``, in the
    order of ``rows``."""
    return [
        row.name
        for row in rows
        if (redrive := row.redrive()) is not None and redrive[0] == dead_letter_queue
    ]
