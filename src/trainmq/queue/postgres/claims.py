"""Receiving: claim visible messages with row locks, so hosts never share a message.

Standard queues: the oldest sent visible messages, locked ``FOR UPDATE SKIP
LOCKED`` in send order; a consumer skips what another is claiming instead of
waiting for it.

FIFO queues follow SQS's rules: a group's deliverable messages are those before
its first message that is not visible (in flight or delayed), so only an
*earlier* message holds later ones back; a receive fills its batch from one
group before taking the next; groups are served in the order they became
available (a never-delivered head from its send, a returned head from its return,
never-delivered first on a tie).  A consumer takes a transaction-level advisory
lock per group before claiming from it (``pg_try_advisory_xact_lock``): two
consumers never claim from one group at once, and a locked group is skipped,
not waited for.  The group's rows are read again under the lock, so a claim
that committed meanwhile is seen.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg.types.json import Jsonb

from .. import limits
from ..model import ReceivedMessage, ReceiveRequest
from ..rows import MESSAGE_COLUMNS, received_message
from . import queues
from .commit import Connection
from .handles import make_handle, new_token, parse_handle
from .messages import SEQUENCE_BASE
from .queues import QueueRow

__all__ = ["claim"]

_FIFO_SCAN = 1000  # visible FIFO messages looked at to find groups, per receive
_ROUNDS = 20  # claim rounds per receive (a round only repeats after dead-lettering)


def claim(
    conn: Connection,
    queue: QueueRow,
    request: ReceiveRequest,
    now_ms: int,
    arn_of: Callable[[str], str],
) -> list[ReceivedMessage]:
    """Claim up to ``request.max_messages`` visible messages; dead-letter the over-received."""
    if queue.fifo and request.attempt_id:
        repeated = _repeat_attempt(conn, queue, request.attempt_id, now_ms)
        if repeated is not None:
            return repeated
    redrive = queue.redrive()
    if not queue.fifo and redrive is None:
        return _claim_standard(conn, queue, request, now_ms, new_token())
    dead_letter = queues.find(conn, redrive[0]) if redrive else None
    visibility_ms = (
        queue.visibility_ms
        if request.visibility_timeout is None
        else request.visibility_timeout * 1000
    )
    token = new_token()
    claimed: list[ReceivedMessage] = []
    taken: set[int] = set()
    pick = _fifo_candidates if queue.fifo else _standard_candidates
    for _ in range(_ROUNDS):
        wanted = request.max_messages - len(claimed)
        candidates = pick(conn, queue, now_ms, wanted, taken)
        if not candidates:
            break
        to_claim = []
        for row_id, receive_count in candidates:
            if redrive and dead_letter is not None and receive_count >= redrive[1]:
                _dead_letter(conn, row_id, dead_letter, arn_of(queue.name), now_ms)
            else:
                to_claim.append(row_id)
        claimed += _claim_rows(conn, queue, to_claim, token, now_ms, visibility_ms)
        taken.update(to_claim)
        if len(to_claim) == len(candidates) or len(claimed) >= request.max_messages:
            break
    if queue.fifo and request.attempt_id and claimed:
        _record_attempt(conn, queue, request.attempt_id, claimed, now_ms)
    return claimed


def _claim_standard(
    conn: Connection, queue: QueueRow, request: ReceiveRequest, now_ms: int, token: bytes
) -> list[ReceivedMessage]:
    """A standard queue without a redrive policy: choose, lock and claim in one statement."""
    visibility_ms = (
        queue.visibility_ms
        if request.visibility_timeout is None
        else request.visibility_timeout * 1000
    )
    rows = conn.execute(
        "UPDATE messages SET visible_at = %(until)s, receive_count = receive_count + 1, "
        "receipt_token = %(token)s, received_at = %(now)s, "
        "first_received_at = coalesce(first_received_at, %(now)s) "
        "WHERE id IN (SELECT id FROM messages WHERE queue_id = %(queue)s "
        " AND visible_at <= %(now)s AND sent_at > %(cutoff)s "
        " ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
        f"RETURNING id, {MESSAGE_COLUMNS}",
        {
            "until": now_ms + visibility_ms,
            "token": token,
            "now": now_ms,
            "queue": queue.id,
            "cutoff": now_ms - queue.retention_ms,
            "limit": request.max_messages,
        },
    ).fetchall()
    rows.sort(key=lambda row: int(row[0]))
    return [received_message(row[1:], make_handle(queue.id, int(row[0]), token)) for row in rows]


def _standard_candidates(
    conn: Connection, queue: QueueRow, now_ms: int, limit: int, taken: set[int]
) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT id, receive_count FROM messages "
        "WHERE queue_id = %s AND visible_at <= %s AND sent_at > %s AND NOT (id = ANY(%s)) "
        "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (queue.id, now_ms, now_ms - queue.retention_ms, list(taken), limit),
    ).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]


def _fifo_candidates(
    conn: Connection, queue: QueueRow, now_ms: int, limit: int, taken: set[int]
) -> list[tuple[int, int]]:
    """Messages to claim, group by group in SQS's order, each group under its lock."""
    cutoff = now_ms - queue.retention_ms
    chosen: list[tuple[int, int]] = []
    for group in _group_order(conn, queue, now_ms, taken):
        if len(chosen) >= limit:
            break
        locked = conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
            (queue.id % 2**31, group),
        ).fetchone()
        if not locked or not locked[0]:
            continue
        rows = conn.execute(
            "SELECT id, receive_count, visible_at FROM messages "
            "WHERE queue_id = %s AND group_id = %s AND sent_at > %s ORDER BY id LIMIT %s",
            (queue.id, group, cutoff, limit - len(chosen) + len(taken)),
        ).fetchall()
        for row_id, receive_count, visible_at in rows:
            if row_id in taken:
                continue  # claimed by this receive with visibility 0: still ahead
            if visible_at > now_ms or len(chosen) >= limit:
                break
            chosen.append((int(row_id), int(receive_count)))
    return chosen


def _group_order(
    conn: Connection, queue: QueueRow, now_ms: int, taken: set[int]
) -> list[str]:
    """Groups with a deliverable message, in the order they became available.

    A group whose head was never received counts from that message's send (its
    ``visible_at``), one whose head came back from in flight from that return and, on
    a tie, after the groups never delivered; then by head (send order), as SQS serves
    them and as the embedded engine does.
    """
    cutoff = now_ms - queue.retention_ms
    blocked: dict[str, int] = dict(
        conn.execute(
            "SELECT group_id, min(id) FROM messages WHERE queue_id = %s AND visible_at > %s "
            "AND sent_at > %s GROUP BY group_id",
            (queue.id, now_ms, cutoff),
        ).fetchall()
    )
    visible = conn.execute(
        "SELECT group_id, id, receive_count, visible_at FROM messages "
        "WHERE queue_id = %s AND visible_at <= %s AND sent_at > %s ORDER BY id LIMIT %s",
        (queue.id, now_ms, cutoff, _FIFO_SCAN),
    ).fetchall()
    heads: dict[str, tuple[int, bool, int]] = {}
    for group, row_id, receive_count, visible_at in visible:
        if group in heads or row_id in taken:
            continue
        if group in blocked and blocked[group] < row_id:
            continue
        heads[group] = (int(visible_at), receive_count > 0, row_id)
    return sorted(heads, key=lambda group: heads[group])


def _claim_rows(
    conn: Connection,
    queue: QueueRow,
    row_ids: list[int],
    token: bytes,
    now_ms: int,
    visibility_ms: int,
) -> list[ReceivedMessage]:
    """Mark the rows delivered; rows that stopped being visible meanwhile are left out."""
    if not row_ids:
        return []
    rows = conn.execute(
        "UPDATE messages SET visible_at = %s, receive_count = receive_count + 1, "
        "receipt_token = %s, received_at = %s, "
        "first_received_at = coalesce(first_received_at, %s) "
        f"WHERE id = ANY(%s) AND visible_at <= %s RETURNING id, {MESSAGE_COLUMNS}",
        (now_ms + visibility_ms, token, now_ms, now_ms, row_ids, now_ms),
    ).fetchall()
    by_id = {row[0]: row[1:] for row in rows}
    return [
        received_message(by_id[row_id], make_handle(queue.id, row_id, token))
        for row_id in row_ids
        if row_id in by_id
    ]


def _dead_letter(
    conn: Connection, row_id: int, dead_letter: QueueRow, source_arn: str, now_ms: int
) -> None:
    sequence: str | None = None
    if dead_letter.fifo:
        found = conn.execute(
            "UPDATE queues SET next_sequence = next_sequence + 1 WHERE id = %s "
            "RETURNING next_sequence",
            (dead_letter.id,),
        ).fetchone()
        sequence = str(SEQUENCE_BASE + int(found[0])) if found else None
    conn.execute(
        "UPDATE messages SET queue_id = %s, visible_at = %s, received_at = NULL, "
        "receipt_token = NULL, dead_letter_source = %s, "
        "sequence_number = coalesce(%s, sequence_number) WHERE id = %s",
        (dead_letter.id, now_ms, source_arn, sequence, row_id),
    )


def _repeat_attempt(
    conn: Connection, queue: QueueRow, attempt_id: str, now_ms: int
) -> list[ReceivedMessage] | None:
    found = conn.execute(
        "SELECT deliveries FROM receive_attempts "
        "WHERE queue_id = %s AND attempt_id = %s AND expires_at > %s",
        (queue.id, attempt_id, now_ms),
    ).fetchone()
    if found is None:
        return None
    repeated = []
    for row_id, token_hex in found[0]:
        token = bytes.fromhex(token_hex)
        values = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = %s AND queue_id = %s "
            "AND receipt_token = %s AND visible_at > %s",
            (row_id, queue.id, token, now_ms),
        ).fetchone()
        if values is not None:
            repeated.append(received_message(values, make_handle(queue.id, row_id, token)))
    return repeated or None


def _record_attempt(
    conn: Connection,
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
        "INSERT INTO receive_attempts (queue_id, attempt_id, expires_at, deliveries) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (queue_id, attempt_id) DO UPDATE SET "
        "expires_at = excluded.expires_at, deliveries = excluded.deliveries",
        (
            queue.id,
            attempt_id,
            now_ms + limits.RECEIVE_ATTEMPT_WINDOW_SECONDS * 1000,
            Jsonb(deliveries),
        ),
    )
