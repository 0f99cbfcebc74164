"""The ``QueueBackend`` contract: SQS's operations on validated plain data.

Backends receive only values the service has validated, with defaults applied,
and identify queues by name.  Per-entry failures of batch operations come back
as ``BatchFailure`` (or ``SQSError``) items in the result list, in entry order.
Every backend passes the one contract suite in ``tests/contract/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..errors import SQSError
from .model import (
    MoveTask,
    NewMessage,
    PeekedMessage,
    QueueRecord,
    ReceivedMessage,
    ReceiveRequest,
    SelectedMove,
    SendResult,
)

__all__ = ["MessageBrowser", "QueueBackend", "RedriveDestinations"]


class QueueBackend(Protocol):
    """What every queue store implements (embedded SQLite, remote SQS endpoints)."""

    @property
    def region(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    # -- queues ---------------------------------------------------------------------------
    def create_queue(
        self, name: str, attributes: dict[str, str], tags: dict[str, str]
    ) -> QueueRecord:
        """Create a queue, or return the existing one whose attributes match."""
        ...

    def delete_queue(self, name: str) -> None: ...

    def list_queues(self, prefix: str | None) -> list[str]:
        """Queue names in name order."""
        ...

    def get_queue(self, name: str) -> QueueRecord:
        """The queue's record; raises QueueDoesNotExist."""
        ...

    def queue_counts(self, name: str) -> dict[str, int]:
        """ApproximateNumberOfMessages, ...Delayed and ...NotVisible."""
        ...

    def set_queue_attributes(self, name: str, attributes: dict[str, str]) -> None: ...

    def purge_queue(self, name: str) -> None: ...

    def tag_queue(self, name: str, tags: dict[str, str]) -> None: ...

    def untag_queue(self, name: str, keys: Sequence[str]) -> None: ...

    def add_permission(
        self, name: str, label: str, accounts: Sequence[str], actions: Sequence[str]
    ) -> None: ...

    def remove_permission(self, name: str, label: str) -> None: ...

    def list_dead_letter_source_queues(self, name: str) -> list[str]: ...

    # -- messages -------------------------------------------------------------------------
    def send_messages(
        self, name: str, messages: Sequence[NewMessage]
    ) -> list[SendResult | SQSError]: ...

    def receive_messages(self, name: str, request: ReceiveRequest) -> list[ReceivedMessage]:
        """Claim up to ``max_messages``, long polling up to ``wait_seconds``."""
        ...

    def delete_messages(
        self, name: str, receipt_handles: Sequence[str]
    ) -> list[SQSError | None]: ...

    def change_visibility(
        self, name: str, changes: Sequence[tuple[str, int]]
    ) -> list[SQSError | None]: ...

    # -- message-move tasks ---------------------------------------------------------------
    def start_move_task(
        self, source: str, destination: str | None, max_per_second: int | None
    ) -> str: ...

    def cancel_move_task(self, task_handle: str) -> int: ...

    def list_move_tasks(self, source: str, max_results: int) -> list[MoveTask]: ...

    def close(self) -> None: ...


@runtime_checkable
class MessageBrowser(Protocol):
    """What a backend that can show its stored messages adds (the embedded engine does;
    SQS cannot: every read there is a receive)."""

    def peek_messages(
        self,
        name: str,
        *,
        limit: int = 50,
        after: int = 0,
        message_ids: Sequence[str] | None = None,
    ) -> list[PeekedMessage]:
        """Messages in send order without receiving them: visibility and receive counts
        stay as they are."""
        ...

    def move_messages(
        self, source: str, message_ids: Sequence[str], destination: str | None = None
    ) -> list[SelectedMove]:
        """Move the named messages to ``destination`` (None: the queue each was
        dead-lettered from); each leaves ``source`` and arrives in one transaction."""
        ...


@runtime_checkable
class RedriveDestinations(Protocol):
    """What a backend that knows where a redrive goes adds (the embedded engine does).

    A move task without a destination sends each message back to its origin, so
    authorizing one means knowing every origin first; a backend without this
    method is asked for its dead-letter source queues instead.
    """

    def redrive_destinations(self, source: str) -> list[str]:
        """Every queue a move task from ``source`` without a destination may write into."""
        ...
