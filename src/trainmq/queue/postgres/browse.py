"""Browsing messages without receiving them, and moving hand-picked ones.

``peek`` is a plain read: it changes neither visibility nor receive counts, so
looking at a queue never disturbs its consumers.  ``move_selected`` moves the
chosen messages of a dead-letter queue back to where they came from, each one
leaving its queue and entering the destination in the same transaction: a
crash leaves it in exactly one of the two, never in none and never in both.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import PeekedMessage, SelectedMove
from ..rows import PEEK_COLUMNS, message_state, origin, peeked_message
from . import queues
from .commit import Connection
from .moves import dead_letter_sources, move_row

__all__ = ["move_selected", "peek"]


def peek(
    conn: Connection,
    name: str,
    now_ms: int,
    *,
    limit: int,
    after: int = 0,
    message_ids: Sequence[str] | None = None,
) -> list[PeekedMessage]:
    """Up to ``limit`` unexpired messages in send order, after position ``after``;
    only those named in ``message_ids`` when it is given."""
    queue = queues.load(conn, name)
    params: dict[str, object] = {
        "queue": queue.id,
        "cutoff": now_ms - queue.retention_ms,
        "after": after,
        "limit": limit,
        "ids": list(message_ids or []),
    }
    only = " AND message_id = ANY(%(ids)s)" if message_ids is not None else ""
    if message_ids is not None and not message_ids:
        return []
    rows = conn.execute(
        f"SELECT {PEEK_COLUMNS} FROM messages WHERE queue_id = %(queue)s AND sent_at > %(cutoff)s "
        f"AND id > %(after)s{only} ORDER BY id LIMIT %(limit)s",
        params,
    ).fetchall()
    return [peeked_message(row, now_ms) for row in rows]


def move_selected(
    conn: Connection,
    source: str,
    message_ids: Sequence[str],
    destination: str | None,
    now_ms: int,
) -> list[SelectedMove]:
    """Move each named message of ``source`` to ``destination`` (None: the queue it was
    dead-lettered from).  Messages in flight stay: a consumer is working on them."""
    queue = queues.load(conn, source)
    fixed_target = queues.load(conn, destination) if destination is not None else None
    outcomes = []
    sources: set[str] | None = None
    for message_id in dict.fromkeys(message_ids):  # each once, in the order given
        row = conn.execute(
            "SELECT id, visible_at, received_at, dead_letter_source, attributes FROM messages "
            "WHERE queue_id = %s AND message_id = %s AND sent_at > %s FOR UPDATE",
            (queue.id, message_id, now_ms - queue.retention_ms),
        ).fetchone()
        if row is None:
            outcomes.append(SelectedMove(message_id, False, reason="not in the queue"))
            continue
        row_id, visible_at, received_at, recorded_arn, attributes = row
        if message_state(visible_at, received_at, now_ms) == "in flight":
            outcomes.append(SelectedMove(message_id, False, reason="in flight"))
            continue
        target = fixed_target
        origin_name = None
        if target is None:
            if sources is None:
                sources = dead_letter_sources(conn, source)
            origin_name = origin(recorded_arn, attributes, sources)
            target = queues.find(conn, origin_name) if origin_name else None
        if target is None:
            reason = "its source queue no longer exists" if origin_name else "no source queue"
            outcomes.append(SelectedMove(message_id, False, reason=reason))
            continue
        move_row(conn, row_id, target, now_ms)
        outcomes.append(SelectedMove(message_id, True, destination=target.name))
    return outcomes
