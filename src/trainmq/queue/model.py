"""The plain data that crosses the ``QueueBackend`` boundary.

Everything here is already validated: the service checks what callers send and
hands backends only well-formed values with defaults applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEAD_LETTER_REASON",
    "SOURCE_MESSAGE_ID",
    "SOURCE_QUEUE",
    "BatchFailure",
    "MessageAttributeValue",
    "MoveTask",
    "NewMessage",
    "PeekedMessage",
    "QueueRecord",
    "ReceiveRequest",
    "ReceivedMessage",
    "SelectedMove",
    "SendResult",
]


@dataclass(frozen=True, slots=True)
class MessageAttributeValue:
    """One message attribute: ``String``/``Number`` carry text, ``Binary`` carries bytes."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None

    @property
    def is_binary(self) -> bool:
        return self.data_type.split(".", 1)[0] == "Binary"


@dataclass(slots=True)
class NewMessage:
    """A message ready to be stored (validated, digests computed)."""

    body: str
    md5_of_body: str
    delay_seconds: int
    message_attributes: dict[str, MessageAttributeValue] = field(default_factory=dict)
    md5_of_message_attributes: str | None = None
    system_attributes: dict[str, MessageAttributeValue] = field(default_factory=dict)
    md5_of_system_attributes: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    md5_of_body: str
    md5_of_message_attributes: str | None = None
    md5_of_system_attributes: str | None = None
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """A failed batch entry, as SQS reports it in ``Failed``."""

    code: str
    message: str
    sender_fault: bool = True


@dataclass(frozen=True, slots=True)
class ReceiveRequest:
    max_messages: int
    wait_seconds: float
    visibility_timeout: int | None = None
    attempt_id: str | None = None


@dataclass(slots=True)
class ReceivedMessage:
    """A delivered message with every system attribute; the service filters what is asked."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: dict[str, str]
    message_attributes: dict[str, MessageAttributeValue]


@dataclass(slots=True)
class QueueRecord:
    """A queue's identity and its settable attributes (strings, as SQS spells them)."""

    name: str
    attributes: dict[str, str]
    tags: dict[str, str]
    created_at: int
    modified_at: int


#: Message attributes a worker sets on the copy it dead-letters itself (a permanent
#: failure): why, the ARN of the queue it came from, and the MessageId it had there (the
#: copy gets a new one, so logs and traces can be joined).  Redrives follow the queue.
DEAD_LETTER_REASON = "trainmq.DeadLetterReason"
SOURCE_QUEUE = "trainmq.SourceQueue"
SOURCE_MESSAGE_ID = "trainmq.SourceMessageId"

@dataclass(slots=True)
class MoveTask:
    """A message-move task; ``source`` and ``destination`` are queue names."""

    task_handle: str
    source: str
    destination: str | None
    max_per_second: int | None
    status: str
    moved: int
    to_move: int
    started_at: int
    failure_reason: str | None = None


@dataclass(slots=True)
class PeekedMessage:
    """A stored message as a browser sees it: read without claiming it.

    ``position`` orders messages in send order (and pages through them);
    ``state`` is ``"visible"``, ``"in flight"`` (received, not yet deleted) or
    ``"delayed"``.  Times are milliseconds since the epoch.
    """

    position: int
    message_id: str
    body: str
    message_attributes: dict[str, MessageAttributeValue]
    sent_at: int
    receive_count: int
    first_received_at: int | None
    visible_at: int
    state: str
    group_id: str | None = None
    dead_letter_source: str | None = None


@dataclass(frozen=True, slots=True)
class SelectedMove:
    """What moving one selected message did: ``moved`` to ``destination``, or why not."""

    message_id: str
    moved: bool
    destination: str | None = None
    reason: str | None = None
