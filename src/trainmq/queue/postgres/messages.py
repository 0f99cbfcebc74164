"""Message rows on PostgreSQL: send, delete, change visibility, housekeeping.

Every function runs inside the group committer's transaction.  Standard sends
only read their queue's row, so senders on many hosts never wait for each
other; FIFO sends lock it, which orders a queue's sequence numbers and message
ids the way its messages were accepted.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from ...errors import (
    InvalidParameterValue,
    MessageNotInflight,
    QueueDoesNotExist,
    ReceiptHandleIsInvalid,
    SQSError,
)
from .. import limits
from ..model import NewMessage, SendResult
from ..rows import encode_attributes, send_result
from . import queues
from .commit import Connection
from .handles import parse_handle
from .queues import QueueRow

__all__ = [
    "SEQUENCE_BASE",
    "change_visibility",
    "delete",
    "next_visible_at",
    "one_statement",
    "send",
    "sweep",
]

SEQUENCE_BASE = 10**19
SWEEP_BATCH = 1000


# -- send -----------------------------------------------------------------------------------
_INSERT = (
    "INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, "
    "system_attributes, sent_at, visible_at, group_id, deduplication_id, sequence_number) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _dedup_key(queue: QueueRow, message: NewMessage) -> tuple[str, str]:
    """(the key deduplication compares, the MessageDeduplicationId to report)."""
    dedup_id = message.deduplication_id
    if dedup_id is None:
        dedup_id = hashlib.sha256(message.body.encode("utf-8")).hexdigest()
    if queue.deduplicate_per_group:
        return f"{message.group_id}\n{dedup_id}", dedup_id  # group ids are printable
    return dedup_id, dedup_id


_SEND_STANDARD = (
    "WITH q AS (SELECT id FROM queues WHERE name = %(name)s), "
    "inserted AS (INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, "
    " system_attributes, sent_at, visible_at) "
    " SELECT q.id, m.message_id, m.body, m.md5, m.attributes, m.system_attributes, %(now)s, "
    "  m.visible_at FROM q, unnest(%(ids)s::text[], %(bodies)s::text[], %(md5s)s::text[], "
    "  %(attributes)s::text[], %(system)s::text[], %(visible)s::bigint[]) "
    "  AS m (message_id, body, md5, attributes, system_attributes, visible_at) "
    " RETURNING 1) "
    "SELECT (SELECT id FROM q), (SELECT count(*) FROM inserted), pg_notify(%(channel)s, %(name)s)"
)


def send(
    conn: Connection, name: str, batch: Sequence[NewMessage], now_ms: int, channel: str
) -> list[SendResult | SQSError]:
    """Insert the messages and notify long polls (delivered when the transaction commits).

    A standard queue's send is one statement (find the queue, insert, notify):
    one round trip besides ``BEGIN`` and ``COMMIT``.
    """
    if one_statement(name):
        return _send_standard(conn, name, batch, now_ms, channel)
    queue = queues.load(conn, name, lock=True)
    results: list[SendResult | SQSError] = []
    rows: list[tuple[object, ...]] = []
    sequence = queue.next_sequence
    for message in batch:
        message_id = str(uuid.uuid4())
        sequence_number: str | None = None
        dedup_id = message.deduplication_id
        if queue.fifo:
            key, dedup_id = _dedup_key(queue, message)
            seen = conn.execute(
                "SELECT message_id, sequence_number FROM deduplication "
                "WHERE queue_id = %s AND dedup_key = %s AND expires_at > %s",
                (queue.id, key, now_ms),
            ).fetchone()
            if seen is not None:
                results.append(send_result(message, seen[0], seen[1]))
                continue
            sequence += 1
            sequence_number = str(SEQUENCE_BASE + sequence)
            conn.execute(
                "INSERT INTO deduplication "
                "(queue_id, dedup_key, message_id, sequence_number, expires_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (queue_id, dedup_key) DO UPDATE SET "
                "message_id = excluded.message_id, sequence_number = excluded.sequence_number, "
                "expires_at = excluded.expires_at",
                (
                    queue.id,
                    key,
                    message_id,
                    sequence_number,
                    now_ms + limits.DEDUPLICATION_WINDOW_SECONDS * 1000,
                ),
            )
        rows.append(
            (
                queue.id,
                message_id,
                message.body,
                message.md5_of_body,
                encode_attributes(message.message_attributes),
                encode_attributes(message.system_attributes),
                now_ms,
                now_ms + message.delay_seconds * 1000,
                message.group_id,
                dedup_id,
                sequence_number,
            )
        )
        results.append(send_result(message, message_id, sequence_number))
    if len(rows) == 1:
        conn.execute(_INSERT, rows[0])
    elif rows:
        with conn.cursor() as cursor:
            cursor.executemany(_INSERT, rows)
    if sequence != queue.next_sequence:
        conn.execute("UPDATE queues SET next_sequence = %s WHERE id = %s", (sequence, queue.id))
    if rows:
        notify(conn, channel, name)
    return results


def one_statement(name: str) -> bool:
    """Whether a send or delete on ``name`` is one statement: on standard queues (FIFO
    queues, whose names end in ``.fifo``, also lock the queue and check deduplication
    or handle expiry)."""
    return not name.endswith(".fifo")


def _send_standard(
    conn: Connection, name: str, batch: Sequence[NewMessage], now_ms: int, channel: str
) -> list[SendResult | SQSError]:
    ids = [str(uuid.uuid4()) for _ in batch]
    found = conn.execute(
        _SEND_STANDARD,
        {
            "name": name,
            "now": now_ms,
            "channel": channel,
            "ids": ids,
            "bodies": [m.body for m in batch],
            "md5s": [m.md5_of_body for m in batch],
            "attributes": [encode_attributes(m.message_attributes) for m in batch],
            "system": [encode_attributes(m.system_attributes) for m in batch],
            "visible": [now_ms + m.delay_seconds * 1000 for m in batch],
        },
    ).fetchone()
    if found is None or found[0] is None:
        raise QueueDoesNotExist()
    return [send_result(message, ids[index], None) for index, message in enumerate(batch)]


def notify(conn: Connection, channel: str, name: str) -> None:
    """Wake long polls on every host: the notification leaves when this transaction commits."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, name))


# -- delete and change visibility ------------------------------------------------------------
def checked_handle(queue: QueueRow, handle: str) -> tuple[int, bytes]:
    queue_id, row_id, token = parse_handle(handle)
    if queue_id != queue.id:
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.'
        )
    return row_id, token


def _expired(handle: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle "
        "has expired."
    )


_DELETE_STANDARD = (
    "WITH q AS (SELECT id FROM queues WHERE name = %(name)s), "
    "deleted AS (DELETE FROM messages m USING q, "
    " unnest(%(queues)s::bigint[], %(ids)s::bigint[], %(tokens)s::bytea[]) AS d (qid, id, token) "
    " WHERE m.id = d.id AND m.queue_id = q.id AND d.qid = q.id AND m.receipt_token = d.token "
    " RETURNING 1) "
    "SELECT (SELECT id FROM q), (SELECT count(*) FROM deleted)"
)


def _delete_standard(conn: Connection, name: str, handles: Sequence[str]) -> list[SQSError | None]:
    """A standard queue's delete in one statement (find the queue, delete by handle)."""
    results: list[SQSError | None] = []
    parsed: list[tuple[int, int, int, bytes, str]] = []
    for index, handle in enumerate(handles):
        try:
            queue_id, row_id, token = parse_handle(handle)
        except SQSError as exc:
            results.append(exc)
            continue
        parsed.append((index, queue_id, row_id, token, handle))
        results.append(None)
    found = conn.execute(
        _DELETE_STANDARD,
        {
            "name": name,
            "queues": [p[1] for p in parsed],
            "ids": [p[2] for p in parsed],
            "tokens": [p[3] for p in parsed],
        },
    ).fetchone()
    if found is None or found[0] is None:
        raise QueueDoesNotExist()
    for index, queue_id, _, _, handle in parsed:
        if queue_id != found[0]:  # another queue's handle: it deleted nothing here
            results[index] = ReceiptHandleIsInvalid(
                f'The input receipt handle "{handle}" is not a valid receipt handle.'
            )
    return results


def delete(
    conn: Connection, name: str, handles: Sequence[str], now_ms: int
) -> list[SQSError | None]:
    """Delete by receipt handle.

    A stale handle (an earlier delivery) succeeds and deletes nothing, as SQS
    documents; so does the handle of an already deleted message.  On a FIFO queue the
    latest handle of a message whose visibility ran out fails with AWS's "The receipt
    handle has expired.": the message is back in its group's line, and deleting it
    then could let a consumer skip ahead of the group's order.
    """
    if one_statement(name):
        return _delete_standard(conn, name, handles)
    queue = queues.load(conn, name)
    results: list[SQSError | None] = []
    wanted: list[tuple[int, int, bytes, str]] = []
    for index, handle in enumerate(handles):
        try:
            row_id, token = checked_handle(queue, handle)
        except SQSError as exc:
            results.append(exc)
            continue
        wanted.append((index, row_id, token, handle))
        results.append(None)
    if not wanted:
        return results
    if queue.fifo:
        current = {
            row[0]: (bytes(row[1]) if row[1] is not None else None, row[2])
            for row in conn.execute(
                "SELECT id, receipt_token, visible_at FROM messages "
                "WHERE queue_id = %s AND id = ANY(%s) FOR UPDATE",
                (queue.id, [row_id for _, row_id, _, _ in wanted]),
            )
        }
        kept = []
        for index, row_id, token, handle in wanted:
            found = current.get(row_id)
            if found is not None and found[0] == token and found[1] <= now_ms:
                results[index] = _expired(handle)
            else:
                kept.append((index, row_id, token, handle))
        wanted = kept
    if wanted:
        conn.execute(
            "DELETE FROM messages m USING unnest(%s::bigint[], %s::bytea[]) AS d(id, token) "
            "WHERE m.id = d.id AND m.queue_id = %s AND m.receipt_token = d.token",
            ([w[1] for w in wanted], [w[2] for w in wanted], queue.id),
        )
    return results


def change_visibility(
    conn: Connection, name: str, changes: Sequence[tuple[str, int]], now_ms: int, channel: str
) -> list[SQSError | None]:
    queue = queues.load(conn, name)
    results: list[SQSError | None] = []
    revealed = False
    for handle, timeout in changes:
        try:
            _change_one(conn, queue, handle, timeout, now_ms)
            results.append(None)
            revealed = revealed or timeout == 0
        except SQSError as exc:
            results.append(exc)
    if revealed:
        notify(conn, channel, name)
    return results


def _change_one(conn: Connection, queue: QueueRow, handle: str, timeout: int, now_ms: int) -> None:
    """Change the visibility of the message's latest delivery.

    As in SQS, the latest handle still works after the visibility ran out, as long as
    nobody has received the message since: it hides the message again.  A handle from
    an earlier delivery does not (SQS would accept it): a stale consumer must not hide
    or release a message that a newer one is working on.
    """
    row_id, token = checked_handle(queue, handle)
    found = conn.execute(
        "SELECT receipt_token, received_at FROM messages "
        "WHERE id = %s AND queue_id = %s FOR UPDATE",
        (row_id, queue.id),
    ).fetchone()
    if found is None:
        raise InvalidParameterValue(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not "
            "exist or is not available for visibility timeout change."
        )
    current_token, received_at = found
    if current_token is None or bytes(current_token) != token or received_at is None:
        raise MessageNotInflight()
    new_visible_at = now_ms + timeout * 1000
    if new_visible_at - received_at > limits.MAX_VISIBILITY_TIMEOUT * 1000:
        raise InvalidParameterValue(
            f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            f"VisibilityTimeout for the message is beyond the limit "
            f"[{limits.MAX_VISIBILITY_TIMEOUT} seconds]"
        )
    conn.execute("UPDATE messages SET visible_at = %s WHERE id = %s", (new_visible_at, row_id))


# -- housekeeping ---------------------------------------------------------------------------
def sweep(conn: Connection, queue: QueueRow, now_ms: int) -> int:
    """Delete up to SWEEP_BATCH expired messages, and expired deduplication records and
    receive attempts, of one queue; returns how many messages went.

    Reads already ignore expired rows, so a sweep only reclaims space; bounded
    batches keep the receive that runs it quick, and ``SKIP LOCKED`` keeps it
    from waiting on rows another host is working on.  Since ``visible_at >=
    sent_at`` always, every message whose ``visible_at`` is past the cutoff is
    expired, which the visibility index finds.
    """
    cutoff = now_ms - queue.retention_ms
    expired = conn.execute(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE queue_id = %s "
        "AND visible_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED)",
        (queue.id, cutoff, SWEEP_BATCH),
    ).rowcount
    for table in ("deduplication", "receive_attempts"):
        conn.execute(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE queue_id = %s "
            "AND expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED)",
            (queue.id, now_ms, SWEEP_BATCH),
        )
    return int(expired)


def next_visible_at(conn: Connection, name: str, now_ms: int) -> int | None:
    """When the next delayed or in-flight message of the queue becomes visible."""
    found = conn.execute(
        "SELECT min(m.visible_at) FROM messages m JOIN queues q ON q.id = m.queue_id "
        "WHERE q.name = %s AND m.visible_at > %s",
        (name, now_ms),
    ).fetchone()
    return None if found is None or found[0] is None else int(found[0])
