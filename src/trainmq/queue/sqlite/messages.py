"""Message rows: send, claim (receive), delete, change visibility, expire.

Every function runs inside the group committer's transaction.  A claim is one
``UPDATE ... RETURNING`` per message inside a ``BEGIN IMMEDIATE`` transaction,
so two consumers, in any processes, never hold the same message at once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ...errors import (
    InvalidParameterValue,
    MessageNotInflight,
    ReceiptHandleIsInvalid,
    SQSError,
)
from .. import limits
from ..ids import random_uuids
from ..model import NewMessage, ReceivedMessage, ReceiveRequest, SendResult
from ..rows import MESSAGE_COLUMNS, encode_attributes, received_message, send_result
from . import delivery, queues
from .handles import make_handle, new_token, parse_handle
from .queues import QueueRow

__all__ = ["change_visibility", "claim", "delete", "send", "sweep"]

_SEQUENCE_BASE = 10**19


# -- send -----------------------------------------------------------------------------------
def _dedup_key(queue: QueueRow, message: NewMessage) -> str:
    dedup_id = message.deduplication_id
    if dedup_id is None:
        dedup_id = hashlib.sha256(message.body.encode("utf-8")).hexdigest()
    if queue.deduplicate_per_group:
        return f"{message.group_id}\x00{dedup_id}"
    return dedup_id


_INSERT = (
    "INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, "
    "system_attributes, sent_at, visible_at, group_id, deduplication_id, "
    "sequence_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def send(
    conn: sqlite3.Connection, name: str, batch: Sequence[NewMessage], now_ms: int
) -> list[SendResult | SQSError]:
    """Insert the messages in one statement; FIFO messages pass deduplication first.

    ``batch`` may hold the sends of several callers (the group committer merges
    them): one queue lookup, one id draw and one INSERT serve them all.
    """
    queue = queues.load(conn, name)
    results: list[SendResult | SQSError] = []
    rows: list[tuple[object, ...]] = []
    sequence = queue.next_sequence
    queue_id = queue.id
    for message, message_id in zip(batch, random_uuids(len(batch)), strict=True):
        sequence_number: str | None = None
        dedup_id = message.deduplication_id
        if queue.fifo:
            key = _dedup_key(queue, message)
            seen = conn.execute(
                "SELECT message_id, sequence_number FROM deduplication "
                "WHERE queue_id = ? AND dedup_key = ? AND expires_at > ?",
                (queue.id, key, now_ms),
            ).fetchone()
            if seen is not None:
                results.append(send_result(message, seen[0], seen[1]))
                continue
            sequence += 1
            sequence_number = str(_SEQUENCE_BASE + sequence)
            if dedup_id is None:
                dedup_id = hashlib.sha256(message.body.encode("utf-8")).hexdigest()
            conn.execute(
                "INSERT OR REPLACE INTO deduplication "
                "(queue_id, dedup_key, message_id, sequence_number, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
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
                queue_id,
                message_id,
                message.body,
                message.md5_of_body,
                encode_attributes(message.message_attributes)
                if message.message_attributes
                else None,
                encode_attributes(message.system_attributes)
                if message.system_attributes
                else None,
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
        conn.executemany(_INSERT, rows)
    if sequence != queue.next_sequence:
        conn.execute("UPDATE queues SET next_sequence = ? WHERE id = ?", (sequence, queue.id))
    return results


# -- receive --------------------------------------------------------------------------------
def claim(
    conn: sqlite3.Connection, name: str, request: ReceiveRequest, now_ms: int, arn_of: Any
) -> list[ReceivedMessage]:
    """Claim up to ``request.max_messages`` visible messages; dead-letter the over-received.

    The messages of one receive share one random delivery token (each handle also
    names its row), claimed in a single ``UPDATE ... RETURNING``.
    """
    queue = queues.load(conn, name)
    if queue.fifo and request.attempt_id:
        repeated = _repeat_attempt(conn, queue, request.attempt_id, now_ms)
        if repeated is not None:
            return repeated
    redrive = queue.redrive()
    dead_letter = queues.find(conn, redrive[0]) if redrive else None
    visibility_ms = (
        queue.visibility_ms
        if request.visibility_timeout is None
        else request.visibility_timeout * 1000
    )
    token = new_token()
    claimed: list[ReceivedMessage] = []
    for _ in range(100):  # bounded: each round claims, or dead-letters candidates
        wanted = request.max_messages - len(claimed)
        taken = {parse_handle(m.receipt_handle)[1] for m in claimed}
        # with visibility 0, what this call claimed is visible again: skip it
        candidates = [
            c
            for c in delivery.candidates(conn, queue, now_ms, wanted + len(taken))
            if c[0] not in taken
        ][:wanted]
        if not candidates:
            break
        to_claim = []
        for row_id, receive_count in candidates:
            if redrive and dead_letter is not None and receive_count >= redrive[1]:
                _dead_letter(conn, row_id, dead_letter, arn_of(queue.name), now_ms)
            else:
                to_claim.append(row_id)
        claimed += _claim_rows(conn, queue, to_claim, token, now_ms, visibility_ms)
        if len(to_claim) == len(candidates) or len(claimed) >= request.max_messages:
            break
    if queue.fifo and request.attempt_id and claimed:
        _record_attempt(conn, queue, request.attempt_id, claimed, now_ms)
    return claimed


# The claim of 1 to 10 rows by primary key, one constant statement per count (each stays
# prepared in the connection's statement cache).
def _claim_sql(count: int) -> str:
    return (
        "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1, "
        "receipt_token = ?, received_at = ?, first_received_at = coalesce(first_received_at, ?) "
        f"WHERE id IN ({','.join('?' * count)}) RETURNING id, {MESSAGE_COLUMNS}"
    )


_CLAIM = {count: _claim_sql(count) for count in range(1, limits.MAX_RECEIVE_MESSAGES + 1)}


def _claim_rows(
    conn: sqlite3.Connection,
    queue: QueueRow,
    row_ids: list[int],
    token: bytes,
    now_ms: int,
    visibility_ms: int,
) -> list[ReceivedMessage]:
    if not row_ids:
        return []
    sql = _CLAIM.get(len(row_ids)) or _claim_sql(len(row_ids))
    rows = conn.execute(sql, (now_ms + visibility_ms, token, now_ms, now_ms, *row_ids)).fetchall()
    by_id = {row[0]: row[1:] for row in rows}
    return [
        received_message(by_id[row_id], make_handle(queue.id, row_id, token)) for row_id in row_ids
    ]


def _dead_letter(
    conn: sqlite3.Connection, row_id: int, dead_letter: QueueRow, source_arn: str, now_ms: int
) -> None:
    sequence: str | None = None
    if dead_letter.fifo:
        dead_letter.next_sequence += 1
        sequence = str(_SEQUENCE_BASE + dead_letter.next_sequence)
        conn.execute(
            "UPDATE queues SET next_sequence = ? WHERE id = ?",
            (dead_letter.next_sequence, dead_letter.id),
        )
    conn.execute(
        "UPDATE messages SET queue_id = ?, visible_at = ?, received_at = NULL, "
        "receipt_token = NULL, dead_letter_source = ?, "
        "sequence_number = coalesce(?, sequence_number) WHERE id = ?",
        (dead_letter.id, now_ms, source_arn, sequence, row_id),
    )


def _repeat_attempt(
    conn: sqlite3.Connection, queue: QueueRow, attempt_id: str, now_ms: int
) -> list[ReceivedMessage] | None:
    found = conn.execute(
        "SELECT deliveries FROM receive_attempts "
        "WHERE queue_id = ? AND attempt_id = ? AND expires_at > ?",
        (queue.id, attempt_id, now_ms),
    ).fetchone()
    if found is None:
        return None
    repeated = []
    for row_id, token_hex in json.loads(found[0]):
        token = bytes.fromhex(token_hex)
        values = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND queue_id = ? "
            "AND receipt_token = ? AND visible_at > ?",
            (row_id, queue.id, token, now_ms),
        ).fetchone()
        if values is not None:
            repeated.append(received_message(values, make_handle(queue.id, row_id, token)))
    return repeated or None


def _record_attempt(
    conn: sqlite3.Connection,
    queue: QueueRow,
    attempt_id: str,
    claimed: list[ReceivedMessage],
    now_ms: int,
) -> None:
    deliveries = []
    for message in claimed:
        _, row_id, token = parse_handle(message.receipt_handle)
        deliveries.append([row_id, token.hex()])
    conn.execute(
        "INSERT OR REPLACE INTO receive_attempts (queue_id, attempt_id, expires_at, deliveries) "
        "VALUES (?, ?, ?, ?)",
        (
            queue.id,
            attempt_id,
            now_ms + limits.RECEIVE_ATTEMPT_WINDOW_SECONDS * 1000,
            json.dumps(deliveries),
        ),
    )


# -- delete and change visibility ------------------------------------------------------------
def _checked_handle(queue: QueueRow, handle: str) -> tuple[int, bytes]:
    queue_id, row_id, token = parse_handle(handle)
    if queue_id != queue.id:
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.'
        )
    return row_id, token


def delete(
    conn: sqlite3.Connection, name: str, handles: Sequence[str], now_ms: int
) -> list[SQSError | None]:
    """Delete by receipt handle.

    On a standard queue a stale handle (an earlier delivery) succeeds and deletes
    nothing, as SQS documents; so does the handle of an already deleted message.  On a
    FIFO queue the latest handle of a message whose visibility ran out fails with AWS's
    "expired" error: the message is back in its group's line, and deleting it then could
    let a consumer skip ahead of the group's order.
    """
    queue = queues.load(conn, name)
    results: list[SQSError | None] = []
    rows = []
    for handle in handles:
        try:
            row_id, token = _checked_handle(queue, handle)
            if queue.fifo:
                _check_fifo_delivery(conn, queue, handle, row_id, token, now_ms)
        except SQSError as exc:
            results.append(exc)
            continue
        rows.append((row_id, queue.id, token))
        results.append(None)
    conn.executemany(
        "DELETE FROM messages WHERE id = ? AND queue_id = ? AND receipt_token = ?", rows
    )
    return results


def _check_fifo_delivery(
    conn: sqlite3.Connection, queue: QueueRow, handle: str, row_id: int, token: bytes, now_ms: int
) -> None:
    found = conn.execute(
        "SELECT receipt_token, visible_at FROM messages WHERE id = ? AND queue_id = ?",
        (row_id, queue.id),
    ).fetchone()
    if found is not None and found[0] == token and found[1] <= now_ms:
        raise InvalidParameterValue(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt "
            "handle has expired."
        )


def change_visibility(
    conn: sqlite3.Connection, name: str, changes: Sequence[tuple[str, int]], now_ms: int
) -> list[SQSError | None]:
    queue = queues.load(conn, name)
    results: list[SQSError | None] = []
    for handle, timeout in changes:
        try:
            _change_one(conn, queue, handle, timeout, now_ms)
            results.append(None)
        except SQSError as exc:
            results.append(exc)
    return results


def _change_one(
    conn: sqlite3.Connection, queue: QueueRow, handle: str, timeout: int, now_ms: int
) -> None:
    """Change the visibility of the message's latest delivery.

    As in SQS, the latest handle still works after the visibility ran out, as long as
    nobody has received the message since: it hides the message again.  A handle from
    an earlier delivery does not (SQS would accept it): a stale consumer must not hide
    or release a message that a newer one is working on.
    """
    row_id, token = _checked_handle(queue, handle)
    found = conn.execute(
        "SELECT receipt_token, received_at FROM messages WHERE id = ? AND queue_id = ?",
        (row_id, queue.id),
    ).fetchone()
    if found is None:
        raise InvalidParameterValue(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not "
            "exist or is not available for visibility timeout change."
        )
    current_token, received_at = found
    if current_token != token or received_at is None:
        raise MessageNotInflight()
    new_visible_at = now_ms + timeout * 1000
    if new_visible_at - received_at > limits.MAX_VISIBILITY_TIMEOUT * 1000:
        raise InvalidParameterValue(
            f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            f"VisibilityTimeout for the message is beyond the limit "
            f"[{limits.MAX_VISIBILITY_TIMEOUT} seconds]"
        )
    conn.execute("UPDATE messages SET visible_at = ? WHERE id = ?", (new_visible_at, row_id))


# -- housekeeping ---------------------------------------------------------------------------
def sweep(conn: sqlite3.Connection, queue: QueueRow, now_ms: int) -> int:
    """Delete expired messages, deduplication records and receive attempts.

    A message is expired once ``sent_at <= now - retention``; reads filter on that,
    so expired messages are never delivered or counted.  Since ``visible_at >=
    sent_at`` always, every message whose ``visible_at`` is past the cutoff is
    expired: the sweep deletes those through the visibility index (no index on
    ``sent_at`` is kept, which makes every send cheaper).  An expired message that
    was made visible later than the cutoff is deleted by a later sweep.
    """
    expired = conn.execute(
        "DELETE FROM messages WHERE queue_id = ? AND visible_at <= ?",
        (queue.id, now_ms - queue.retention_ms),
    ).rowcount
    conn.execute(
        "DELETE FROM deduplication WHERE queue_id = ? AND expires_at <= ?", (queue.id, now_ms)
    )
    conn.execute(
        "DELETE FROM receive_attempts WHERE queue_id = ? AND expires_at <= ?", (queue.id, now_ms)
    )
    return int(expired)


def next_visible_at(conn: sqlite3.Connection, name: str, now_ms: int) -> int | None:
    """When the next delayed or in-flight message of the queue becomes visible."""
    found = conn.execute(
        "SELECT min(m.visible_at) FROM messages m JOIN queues q ON q.id = m.queue_id "
        "WHERE q.name = ? AND m.visible_at > ?",
        (name, now_ms),
    ).fetchone()
    return None if found is None or found[0] is None else int(found[0])
