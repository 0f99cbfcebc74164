"""Queue rows: lookup, creation, attributes, tags, purge.

Functions here run inside the group committer's transaction; each takes the
connection and the current time in milliseconds.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any

from ...errors import QueueDoesNotExist
from .. import limits
from ..attributes import default_attributes, merge
from ..queue_row import (
    QUEUE_COLUMNS,
    QueueRow,
    check_purge,
    check_recreate,
    check_same_attributes,
    check_tags,
)

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


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> Any:
    """JSON columns parsed once per distinct text (rows are read on every operation)."""
    return json.loads(text)


def _row(values: tuple[object, ...]) -> QueueRow:
    (id_, name, fifo, attributes, tags, created, modified, purged, seq) = values
    return QueueRow(
        int(id_),  # type: ignore[call-overload]
        str(name),
        bool(fifo),
        dict(_parsed(str(attributes))),
        dict(_parsed(str(tags))),
        int(created),  # type: ignore[call-overload]
        int(modified),  # type: ignore[call-overload]
        None if purged is None else int(purged),  # type: ignore[call-overload]
        int(seq),  # type: ignore[call-overload]
    )


# Every message operation looks its queue up: the statement is one constant string, so
# that the connection's statement cache finds it prepared without hashing a new string.
_FIND = f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?"


def find(conn: sqlite3.Connection, name: str) -> QueueRow | None:
    values = conn.execute(_FIND, (name,)).fetchone()
    return None if values is None else _row(values)


def load(conn: sqlite3.Connection, name: str) -> QueueRow:
    row = find(conn, name)
    if row is None:
        raise QueueDoesNotExist()
    return row


def all_rows(conn: sqlite3.Connection, prefix: str | None = None) -> list[QueueRow]:
    if prefix and len(prefix) > limits.MAX_QUEUE_NAME_LENGTH:
        return []  # no name is that long; SQLite would also refuse so long a LIKE pattern
    if prefix:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cursor = conn.execute(
            f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name LIKE ? ESCAPE '\\' ORDER BY name",
            (pattern,),
        )
    else:
        cursor = conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name")
    # LIKE is case-insensitive for ASCII; queue names are case-sensitive.
    return [row for row in map(_row, cursor) if not prefix or row.name.startswith(prefix)]


def create(
    conn: sqlite3.Connection,
    name: str,
    attributes: dict[str, str],
    tags: dict[str, str],
    now_ms: int,
) -> QueueRow:
    existing = find(conn, name)
    if existing is not None:
        check_same_attributes(existing, attributes)
        return existing
    deleted = conn.execute(
        "SELECT deleted_at FROM deleted_queues WHERE name = ?", (name,)
    ).fetchone()
    check_recreate(None if deleted is None else deleted[0], now_ms)
    fifo = name.endswith(".fifo")
    full = merge(default_attributes(fifo), attributes)
    conn.execute("DELETE FROM deleted_queues WHERE name = ?", (name,))
    conn.execute(
        "INSERT INTO queues (name, fifo, attributes, tags, created_at, modified_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (name, fifo, json.dumps(full), json.dumps(tags), now_ms, now_ms),
    )
    return load(conn, name)


def delete(conn: sqlite3.Connection, name: str, now_ms: int) -> None:
    row = load(conn, name)
    conn.execute("DELETE FROM messages WHERE queue_id = ?", (row.id,))
    conn.execute("DELETE FROM queues WHERE id = ?", (row.id,))
    conn.execute(
        "INSERT OR REPLACE INTO deleted_queues (name, deleted_at) VALUES (?, ?)", (name, now_ms)
    )


def set_attributes(
    conn: sqlite3.Connection, name: str, attributes: dict[str, str], now_ms: int
) -> None:
    row = load(conn, name)
    merged = merge(row.attributes, attributes)
    conn.execute(
        "UPDATE queues SET attributes = ?, modified_at = ? WHERE id = ?",
        (json.dumps(merged), now_ms, row.id),
    )


def set_tags(conn: sqlite3.Connection, name: str, tags: dict[str, str]) -> None:
    row = load(conn, name)
    check_tags(name, tags)
    conn.execute("UPDATE queues SET tags = ? WHERE id = ?", (json.dumps(tags), row.id))


def purge(conn: sqlite3.Connection, name: str, now_ms: int) -> None:
    row = load(conn, name)
    check_purge(row, now_ms)
    conn.execute("DELETE FROM messages WHERE queue_id = ? AND sent_at <= ?", (row.id, now_ms))
    # SQS forgets the purged messages' deduplication ids too: they may be sent again.
    conn.execute("DELETE FROM deduplication WHERE queue_id = ?", (row.id,))
    conn.execute("UPDATE queues SET purged_at = ? WHERE id = ?", (now_ms, row.id))


def counts(conn: sqlite3.Connection, row: QueueRow, now_ms: int) -> dict[str, int]:
    cutoff = now_ms - row.retention_ms
    visible, delayed, in_flight = conn.execute(
        "SELECT "
        " coalesce(sum(visible_at <= :now), 0),"
        " coalesce(sum(visible_at > :now AND received_at IS NULL), 0),"
        " coalesce(sum(visible_at > :now AND received_at IS NOT NULL), 0) "
        "FROM messages WHERE queue_id = :queue AND sent_at > :cutoff",
        {"now": now_ms, "queue": row.id, "cutoff": cutoff},
    ).fetchone()
    return {
        "ApproximateNumberOfMessages": int(visible),
        "ApproximateNumberOfMessagesDelayed": int(delayed),
        "ApproximateNumberOfMessagesNotVisible": int(in_flight),
    }


def oldest_message_age(conn: sqlite3.Connection, row: QueueRow, now_ms: int) -> float | None:
    """Seconds since the oldest unexpired message was sent (None when empty)."""
    cutoff = now_ms - row.retention_ms
    oldest = conn.execute(
        "SELECT min(sent_at) FROM messages WHERE queue_id = ? AND sent_at > ?", (row.id, cutoff)
    ).fetchone()[0]
    return None if oldest is None else (now_ms - int(oldest)) / 1000

