"""Which messages a receive takes, and in what order.

Reads only; the claim in ``messages`` updates the rows it is given.  Both orders
are SQS's: standard queues deliver the oldest sent message first, FIFO queues fill
a batch from one message group at a time (see below).  Each query reads a bounded
part of the table, so a receive costs the same however deep the backlog is.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .queues import QueueRow

__all__ = ["candidates"]

# A standard queue delivers the oldest sent message first.  Rows are read in send (row id)
# order within a window of row ids from the table's oldest row, which is exact whenever
# the queue's oldest receivable messages lie in it; past the window the visibility index
# takes over, oldest visible first, so a receive never reads more than the window however
# deep the backlog (or another queue's backlog) is.
_STANDARD_WINDOW = 2000
_STANDARD = (
    "SELECT id, receive_count FROM messages NOT INDEXED "
    "WHERE id >= (SELECT min(id) FROM messages) "
    "AND id < (SELECT min(id) FROM messages) + :window "
    "AND queue_id = :queue AND visible_at <= :now AND sent_at > :cutoff "
    "ORDER BY id LIMIT :limit"
)
_STANDARD_BY_VISIBILITY = (
    "SELECT id, receive_count FROM messages "
    "WHERE queue_id = :queue AND visible_at <= :now AND sent_at > :cutoff "
    "ORDER BY visible_at, id LIMIT :limit"
)
# A FIFO message is receivable when it is visible and no earlier message of its group is
# hidden (in flight or delayed): later messages never overtake it.  A receive fills its
# batch from one group before the next, and serves groups in the order they became
# available: a group whose first message was never received counts from that message's
# send, one whose first message came back from in flight counts from that return and, on a
# tie, after the groups never delivered (as SQS does: returning groups queue up behind
# waiting ones).  The groups come from one pass over the group index; each chosen group's
# messages are then read in send order between its first message and its first hidden one.
_FIFO_GROUPS = (
    "SELECT g.group_id, g.head, g.last FROM ("
    "  SELECT group_id, min(id) AS head, max(id) AS last FROM messages "
    "  WHERE queue_id = :queue AND group_id IS NOT NULL GROUP BY group_id) g "
    "JOIN messages m ON m.id = g.head WHERE m.visible_at <= :now "
    "ORDER BY m.visible_at, m.received_at IS NOT NULL, g.head LIMIT :limit"
)
_FIRST_HIDDEN = (
    "SELECT min(id) FROM messages "
    "WHERE queue_id = :queue AND group_id = :group AND visible_at > :now"
)
_FIFO_MESSAGES = (
    "SELECT id, receive_count FROM messages NOT INDEXED "
    "WHERE id >= :head AND id < :upper AND queue_id = :queue AND group_id = :group "
    "AND sent_at > :cutoff ORDER BY id LIMIT :limit"
)


def _fifo_candidates(
    conn: sqlite3.Connection, params: dict[str, Any], limit: int
) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for group, head, last in conn.execute(_FIFO_GROUPS, params).fetchall():
        hidden = conn.execute(_FIRST_HIDDEN, {**params, "group": group}).fetchone()[0]
        upper = last + 1 if hidden is None else min(int(hidden), last + 1)
        rows = conn.execute(
            _FIFO_MESSAGES,
            {**params, "group": group, "head": head, "upper": upper, "limit": limit - len(found)},
        )
        found += [(int(r[0]), int(r[1])) for r in rows]
        if len(found) >= limit:
            break
    return found


def candidates(
    conn: sqlite3.Connection, queue: QueueRow, now_ms: int, limit: int
) -> list[tuple[int, int]]:
    """Up to ``limit`` (row id, receive count) of the messages a receive takes, in order."""
    params = {
        "queue": queue.id,
        "now": now_ms,
        "cutoff": now_ms - queue.retention_ms,
        "limit": limit,
        "window": _STANDARD_WINDOW,
    }
    if queue.fifo:
        return _fifo_candidates(conn, params, limit)
    found = [(int(r[0]), int(r[1])) for r in conn.execute(_STANDARD, params)]
    if len(found) < limit:
        taken = {row_id for row_id, _ in found}
        params["limit"] = limit + len(taken)
        more = conn.execute(_STANDARD_BY_VISIBILITY, params)
        found += [(int(r[0]), int(r[1])) for r in more if int(r[0]) not in taken]
    return found[:limit]
