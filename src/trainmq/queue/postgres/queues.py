"""Queue rows on PostgreSQL: lookup, creation, attributes, tags, purge, counts.

Functions take a connection inside the caller's transaction and the current
time in milliseconds.  ``lock`` loads a queue row ``FOR UPDATE``: FIFO sends,
purges and attribute changes serialise on it; standard sends and claims only
read it, so they never wait for each other.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from ...errors import QueueDoesNotExist
from ..attributes import default_attributes, merge
from ..queue_row import (
    QUEUE_COLUMNS,
    QueueRow,
    check_purge,
    check_recreate,
    check_same_attributes,
    check_tags,
)
from .commit import Connection

__all__ = [
    "QueueRow",
    "all_rows",
    "counts",
    "create",
    "delete",
    "find",
    "load",
    "oldest_message_age",
    "purge",
    "set_attributes",
    "set_tags",
]


def _row(values: tuple[Any, ...]) -> QueueRow:
    return QueueRow(*values)


def find(conn: Connection, name: str, *, lock: bool = False) -> QueueRow | None:
    suffix = " FOR UPDATE" if lock else ""
    values = conn.execute(
        f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name = %s{suffix}", (name,)
    ).fetchone()
    return None if values is None else _row(values)


def load(conn: Connection, name: str, *, lock: bool = False) -> QueueRow:
    row = find(conn, name, lock=lock)
    if row is None:
        raise QueueDoesNotExist()
    return row


def all_rows(conn: Connection, prefix: str | None = None) -> list[QueueRow]:
    if prefix:
        cursor = conn.execute(
            f"SELECT {QUEUE_COLUMNS} FROM queues WHERE starts_with(name, %s) "
            'ORDER BY name COLLATE "C"',
            (prefix,),
        )
    else:
        cursor = conn.execute(f'SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name COLLATE "C"')
    return [_row(values) for values in cursor]


def create(
    conn: Connection, name: str, attributes: dict[str, str], tags: dict[str, str], now_ms: int
) -> QueueRow:
    """Create the queue, or return the existing one whose attributes match.

    Two hosts creating one name race on the unique index: the loser's insert does
    nothing and it compares attributes with the winner's row.
    """
    existing = find(conn, name)
    if existing is None:
        deleted = conn.execute(
            "SELECT deleted_at FROM deleted_queues WHERE name = %s", (name,)
        ).fetchone()
        check_recreate(None if deleted is None else deleted[0], now_ms)
        fifo = name.endswith(".fifo")
        full = merge(default_attributes(fifo), attributes)
        conn.execute("DELETE FROM deleted_queues WHERE name = %s", (name,))
        inserted = conn.execute(
            "INSERT INTO queues (name, fifo, attributes, tags, created_at, modified_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING id",
            (name, fifo, Jsonb(full), Jsonb(tags), now_ms, now_ms),
        ).fetchone()
        if inserted is not None:
            return load(conn, name)
        existing = load(conn, name)
    check_same_attributes(existing, attributes)
    return existing


def delete(conn: Connection, name: str, now_ms: int) -> None:
    row = load(conn, name, lock=True)
    conn.execute("DELETE FROM messages WHERE queue_id = %s", (row.id,))
    conn.execute("DELETE FROM queues WHERE id = %s", (row.id,))
    conn.execute(
        "INSERT INTO deleted_queues (name, deleted_at) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at",
        (name, now_ms),
    )


def set_attributes(conn: Connection, name: str, attributes: dict[str, str], now_ms: int) -> None:
    row = load(conn, name, lock=True)
    merged = merge(row.attributes, attributes)
    conn.execute(
        "UPDATE queues SET attributes = %s, modified_at = %s WHERE id = %s",
        (Jsonb(merged), now_ms, row.id),
    )


def set_tags(conn: Connection, name: str, tags: dict[str, str]) -> None:
    row = load(conn, name, lock=True)
    check_tags(name, tags)
    conn.execute("UPDATE queues SET tags = %s WHERE id = %s", (Jsonb(tags), row.id))


def purge(conn: Connection, name: str, now_ms: int) -> None:
    """Delete every message sent before now, and forget deduplication ids (as SQS does)."""
    row = load(conn, name, lock=True)
    check_purge(row, now_ms)
    conn.execute("DELETE FROM messages WHERE queue_id = %s AND sent_at <= %s", (row.id, now_ms))
    conn.execute("DELETE FROM deduplication WHERE queue_id = %s", (row.id,))
    conn.execute("UPDATE queues SET purged_at = %s WHERE id = %s", (now_ms, row.id))


def counts(conn: Connection, row: QueueRow, now_ms: int) -> dict[str, int]:
    visible, delayed, in_flight = conn.execute(
        "SELECT count(*) FILTER (WHERE visible_at <= %(now)s), "
        " count(*) FILTER (WHERE visible_at > %(now)s AND received_at IS NULL), "
        " count(*) FILTER (WHERE visible_at > %(now)s AND received_at IS NOT NULL) "
        "FROM messages WHERE queue_id = %(queue)s AND sent_at > %(cutoff)s",
        {"now": now_ms, "queue": row.id, "cutoff": now_ms - row.retention_ms},
    ).fetchone() or (0, 0, 0)
    return {
        "ApproximateNumberOfMessages": int(visible),
        "ApproximateNumberOfMessagesDelayed": int(delayed),
        "ApproximateNumberOfMessagesNotVisible": int(in_flight),
    }


def oldest_message_age(conn: Connection, row: QueueRow, now_ms: int) -> float | None:
    """Seconds since the oldest unexpired message was sent (None when empty)."""
    found = conn.execute(
        "SELECT min(sent_at) FROM messages WHERE queue_id = %s AND sent_at > %s",
        (row.id, now_ms - row.retention_ms),
    ).fetchone()
    oldest = found[0] if found else None
    return None if oldest is None else (now_ms - int(oldest)) / 1000
