"""What the console shows about queues, read through the service and the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import QueueDoesNotExist
from ..queue.attributes import parse_redrive_policy
from ..queue.backend import MessageBrowser
from ..queue.model import QueueRecord
from ..queue.service import SQSService
from .security import Viewer

__all__ = ["QueueInfo", "browser", "dead_letter_target", "queue_infos"]


@dataclass
class QueueInfo:
    name: str
    fifo: bool
    #: ApproximateNumberOf... counts; None when the viewer may not read attributes.
    counts: dict[str, int] | None
    oldest_age: float | None
    dead_letter_queue: str | None
    dead_letter_depth: int | None
    sources: list[str] = field(default_factory=list)

    @property
    def is_dead_letter_queue(self) -> bool:
        return bool(self.sources)

    def count(self, name: str) -> int | None:
        return None if self.counts is None else self.counts.get(name)


def dead_letter_target(record: QueueRecord) -> tuple[str, int] | None:
    """The queue's dead-letter queue and maxReceiveCount, if it has a redrive policy."""
    text = record.attributes.get("RedrivePolicy")
    if not text:
        return None
    policy = parse_redrive_policy(text)
    return policy.dead_letter_target_arn.rsplit(":", 1)[-1], policy.max_receive_count


def browser(service: SQSService) -> MessageBrowser | None:
    """The backend as a message browser, when it can be one (the embedded engine)."""
    backend: Any = service.backend
    return backend if isinstance(backend, MessageBrowser) else None


def queue_infos(service: SQSService, viewer: Viewer) -> list[QueueInfo]:
    """Every queue the viewer may list, with counts where it may read attributes."""
    backend = service.backend
    every = backend.list_queues(None)
    records = {}
    for name in every:
        try:
            records[name] = backend.get_queue(name)
        except QueueDoesNotExist:  # deleted between listing and reading
            continue
    targets = {name: dead_letter_target(record) for name, record in records.items()}
    sources: dict[str, list[str]] = {}
    for name, target in targets.items():
        if target is not None:
            sources.setdefault(target[0], []).append(name)
    oldest = getattr(backend, "oldest_message_age", None)
    counts: dict[str, dict[str, int] | None] = {}
    infos = []
    for name in viewer.visible(list(records)):
        readable = viewer.can("GetQueueAttributes", name)
        counts[name] = backend.queue_counts(name) if readable else None
        target = targets[name]
        infos.append(
            QueueInfo(
                name=name,
                fifo=records[name].attributes.get("FifoQueue") == "true",
                counts=counts[name],
                oldest_age=oldest(name) if readable and oldest is not None else None,
                dead_letter_queue=target[0] if target else None,
                dead_letter_depth=None,
                sources=sorted(sources.get(name, [])),
            )
        )
    for info in infos:
        dlq = info.dead_letter_queue
        if dlq is not None and dlq in records and viewer.can("GetQueueAttributes", dlq):
            known = counts.get(dlq)
            info.dead_letter_depth = (known or backend.queue_counts(dlq))[
                "ApproximateNumberOfMessages"
            ]
    return infos
