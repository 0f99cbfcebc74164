"""Message rows to SQS shapes, the same for every engine.

Both engines store a message's attributes as the same JSON text and read a
delivered message back as the same columns (``MESSAGE_COLUMNS``), so turning
rows into SQS results is database-neutral and lives here once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from .model import (
    SOURCE_QUEUE,
    MessageAttributeValue,
    MoveTask,
    NewMessage,
    PeekedMessage,
    ReceivedMessage,
    SendResult,
)

__all__ = [
    "MESSAGE_COLUMNS",
    "PEEK_COLUMNS",
    "TASK_COLUMNS",
    "declared_source",
    "decode_attributes",
    "encode_attributes",
    "message_state",
    "move_task",
    "origin",
    "peeked_message",
    "received_message",
    "send_result",
]

MESSAGE_COLUMNS = (
    "message_id, body, md5_of_body, attributes, system_attributes, sent_at, receive_count, "
    "first_received_at, group_id, deduplication_id, sequence_number, dead_letter_source"
)

PEEK_COLUMNS = (
    "id, message_id, body, attributes, sent_at, receive_count, first_received_at, visible_at, "
    "received_at, group_id, dead_letter_source"
)

TASK_COLUMNS = (
    "task_handle, source_name, destination, max_per_second, status, moved, to_move, "
    "started_at, failure_reason"
)


def encode_attributes(attributes: dict[str, MessageAttributeValue]) -> str | None:
    if not attributes:
        return None
    return json.dumps(
        {
            name: [value.data_type, base64.b64encode(value.binary_value).decode("ascii"), True]
            if value.binary_value is not None
            else [value.data_type, value.string_value, False]
            for name, value in attributes.items()
        }
    )


def decode_attributes(text: str | None) -> dict[str, MessageAttributeValue]:
    if not text:
        return {}
    result = {}
    for name, (data_type, value, binary) in json.loads(text).items():
        if binary:
            result[name] = MessageAttributeValue(data_type, binary_value=base64.b64decode(value))
        else:
            result[name] = MessageAttributeValue(data_type, string_value=value)
    return result


def send_result(message: NewMessage, message_id: str, sequence_number: str | None) -> SendResult:
    return SendResult(
        message_id,
        message.md5_of_body,
        message.md5_of_message_attributes,
        message.md5_of_system_attributes,
        sequence_number,
    )


def received_message(values: tuple[Any, ...], handle: str) -> ReceivedMessage:
    """The delivered message of one row, ``values`` read as ``MESSAGE_COLUMNS``."""
    (
        message_id,
        body,
        md5,
        attributes,
        system,
        sent_at,
        receive_count,
        first_received,
        group_id,
        dedup_id,
        sequence_number,
        dead_letter_source,
    ) = values
    system_attributes = {
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "SentTimestamp": str(sent_at),
        "ApproximateReceiveCount": str(receive_count),
        "ApproximateFirstReceiveTimestamp": str(first_received),
        "SqsManagedSseEnabled": "true",
    }
    trace = decode_attributes(system).get("AWSTraceHeader")
    if trace is not None and trace.string_value:
        system_attributes["AWSTraceHeader"] = trace.string_value
    optional = {
        "MessageGroupId": group_id,
        "MessageDeduplicationId": dedup_id,
        "SequenceNumber": sequence_number,
        "DeadLetterQueueSourceArn": dead_letter_source,
    }
    system_attributes |= {key: value for key, value in optional.items() if value is not None}
    return ReceivedMessage(
        message_id, handle, body, md5, system_attributes, decode_attributes(attributes)
    )


def message_state(visible_at: int, received_at: int | None, now_ms: int) -> str:
    if visible_at <= now_ms:
        return "visible"
    return "delayed" if received_at is None else "in flight"


def peeked_message(row: Sequence[Any], now_ms: int) -> PeekedMessage:
    """The browsed message of one row, read as ``PEEK_COLUMNS``."""
    return PeekedMessage(
        position=int(row[0]),
        message_id=row[1],
        body=row[2],
        message_attributes=decode_attributes(row[3]),
        sent_at=int(row[4]),
        receive_count=int(row[5]),
        first_received_at=None if row[6] is None else int(row[6]),
        visible_at=int(row[7]),
        state=message_state(int(row[7]), row[8], now_ms),
        group_id=row[9],
        dead_letter_source=row[10],
    )


def move_task(row: Sequence[Any]) -> MoveTask:
    """The message-move task of one ``move_tasks`` row, read as ``TASK_COLUMNS``."""
    return MoveTask(
        task_handle=row[0],
        source=row[1],
        destination=row[2],
        max_per_second=row[3],
        status=row[4],
        moved=int(row[5]),
        to_move=int(row[6]),
        started_at=int(row[7]),
        failure_reason=row[8],
    )


def declared_source(attributes: str | None) -> str | None:
    """The source queue ARN a dead-lettered copy declares in its ``trainmq.SourceQueue``.

    SQS records the source of what its redrive policy moved; a copy that a worker
    sent to the DLQ itself (a ``PermanentFailure``) names its source in this
    attribute instead, so a move task without a destination can send it back too.
    """
    if not attributes:
        return None
    try:
        value = json.loads(attributes).get(SOURCE_QUEUE)
    except (ValueError, AttributeError):
        return None
    if not isinstance(value, list) or len(value) != 3 or value[2] or not isinstance(value[1], str):
        return None
    return value[1] if value[1].startswith("arn:") else None


def origin(recorded_arn: str | None, attributes: str | None, sources: set[str]) -> str | None:
    """The queue a redrive without a destination sends this message back to, or None.

    The source the engine recorded when it dead-lettered the message is where it
    came from.  A ``trainmq.SourceQueue`` attribute is only a claim: any client
    that may send to the dead-letter queue can set it, so it is honoured only when
    the queue it names really is a dead-letter source of this queue (its
    RedrivePolicy targets it); otherwise a planted message could make an operator's
    redrive write into any queue.
    """
    if recorded_arn:
        return recorded_arn.rsplit(":", 1)[1]
    declared = declared_source(attributes)
    name = declared.rsplit(":", 1)[1] if declared else None
    return name if name in sources else None
