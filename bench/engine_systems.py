"""The queues `bench/engine.py` compares, behind one small adapter shape.

Every adapter opens a fresh database in a directory it is given, in SQLite's
WAL mode with ``synchronous=FULL``: an fsync on every commit (trainmq's
``durability="full"``: on every commit a send, delete or visibility change
depends on). The peers do not all default to that, so the adapters set it on
every connection the peer opens and read it back, and the benchmark prints
what was read back.

Loading (``load``) is not measured, so it may commit without fsync; the queue
is then closed and reopened with full durability before anything is timed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

QUEUE_NAME = "bench"
BATCH = 10


class BenchQueue(Protocol):
    """One open queue; each call handles messages and says how many."""

    def send(self, body: str) -> int: ...

    def send_batch(self, bodies: list[str]) -> int: ...

    def receive_one(self) -> Any:
        """Receives (claims) one message; a token for ``delete``, or None if none."""
        ...

    def delete(self, token: Any) -> None: ...

    def receive_delete(self) -> int: ...

    def receive_delete_batch(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class System:
    """A queue implementation under test, and what it cannot do."""

    name: str
    open: Callable[[Path], BenchQueue]
    open_shared: Callable[[Path], BenchQueue]  # one instance for many threads
    load: Callable[[Path, int, str], None]
    settings: Callable[[Path], dict[str, Any]]
    not_applicable: dict[str, str] = field(default_factory=dict)


def _pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    return {
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
            conn.execute("PRAGMA synchronous").fetchone()[0], "?"
        ),
    }


def _set_pragmas(conn: sqlite3.Connection, synchronous: str | None) -> None:
    """Sets WAL and ``synchronous``; ``None`` leaves the connection as the peer opened it."""
    if synchronous is None:
        return
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")


# --- trainmq ---------------------------------------------------------------


class TrainmqQueue:
    """trainmq's boto3-shaped client on one queue."""

    def __init__(self, directory: Path, durability: str = "full") -> None:
        import trainmq

        self.client = trainmq.client(str(directory / "queues.db"), durability=durability)
        self.url = self.client.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]

    def send(self, body: str) -> int:
        self.client.send_message(QueueUrl=self.url, MessageBody=body)
        return 1

    def send_batch(self, bodies: list[str]) -> int:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"send_message_batch failed: {response['Failed']}")
        return len(response.get("Successful", []))

    def receive(self, count: int) -> list[str]:
        response = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=count)
        return [message["ReceiptHandle"] for message in response.get("Messages", [])]

    def receive_one(self) -> str | None:
        handles = self.receive(1)
        return handles[0] if handles else None

    def delete(self, token: str) -> None:
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=token)

    def receive_delete(self) -> int:
        handles = self.receive(1)
        for handle in handles:
            self.delete(handle)
        return len(handles)

    def receive_delete_batch(self) -> int:
        handles = self.receive(BATCH)
        if not handles:
            return 0
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        response = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"delete_message_batch failed: {response['Failed']}")
        return len(handles)

    def close(self) -> None:
        self.client.close()


def _trainmq_load(directory: Path, count: int, body: str) -> None:
    """Fill the queue through a ``durability="normal"`` client, in batches."""
    queue = TrainmqQueue(directory, durability="normal")
    try:
        for start in range(0, count, BATCH):
            queue.send_batch([body] * min(BATCH, count - start))
    finally:
        queue.close()


def _trainmq_settings(directory: Path) -> dict[str, Any]:
    conn = sqlite3.connect(directory / "queues.db")
    try:
        journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    return {"durability": "full", "journal_mode": journal_mode}


TRAINMQ = System("trainmq", TrainmqQueue, TrainmqQueue, _trainmq_load, _trainmq_settings)


# --- SQLite alone: the limit of trainmq's design on this disk --------------


class SqliteFloor:
    """trainmq's own statements on trainmq's own schema, with nothing around them.

    The same rows, indexes, transactions and fsyncs as trainmq's engine (a send
    or a delete is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` with ``synchronous=FULL``;
    a receive's claim commits with ``synchronous=NORMAL``, as trainmq's does), but
    no SQS validation, MD5s, receipt handles, group committer or response shapes:
    what trainmq could reach on this disk if its Python cost nothing.
    """

    def __init__(self, directory: Path) -> None:
        path = directory / "queues.db"
        if not path.exists():
            TrainmqQueue(directory).close()  # the schema and the queue row, as trainmq makes them
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.synchronous = ""
        self.queue_id = self.conn.execute(
            "SELECT id FROM queues WHERE name = ?", (QUEUE_NAME,)
        ).fetchone()[0]
        self.sequence = 0

    def _transaction(self, synchronous: str) -> None:
        if synchronous != self.synchronous:
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            self.synchronous = synchronous
        self.conn.execute("BEGIN IMMEDIATE")

    def _rows(self, bodies: list[str]) -> list[tuple[Any, ...]]:
        now = time.time_ns() // 1_000_000
        self.sequence += len(bodies)
        return [
            (self.queue_id, f"m-{self.sequence}-{i}", body, "0" * 32, now, now)
            for i, body in enumerate(bodies)
        ]

    def send(self, body: str) -> int:
        return self.send_batch([body])

    def send_batch(self, bodies: list[str]) -> int:
        self._transaction("FULL")
        self.conn.executemany(
            "INSERT INTO messages (queue_id, message_id, body, md5_of_body, sent_at, visible_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            self._rows(bodies),
        )
        self.conn.execute("COMMIT")
        return len(bodies)

    def _claim(self, count: int) -> list[tuple[int, bytes]]:
        now = time.time_ns() // 1_000_000
        token = os.urandom(16)
        self._transaction("NORMAL")
        # trainmq's standard-queue candidates (queue/sqlite/delivery.py): the oldest
        # visible rows in a window of row ids from the table's oldest, claimed by key
        rows = self.conn.execute(
            "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1,"
            " receipt_token = ?, received_at = ? WHERE id IN (SELECT id FROM messages"
            " NOT INDEXED WHERE id >= (SELECT min(id) FROM messages)"
            " AND id < (SELECT min(id) FROM messages) + 2000 AND queue_id = ?"
            " AND visible_at <= ? ORDER BY id LIMIT ?) RETURNING id, body",
            (now + 30_000, token, now, self.queue_id, now, count),
        ).fetchall()
        self.conn.execute("COMMIT")
        return [(row[0], token) for row in rows]

    def receive_one(self) -> tuple[int, bytes] | None:
        claimed = self._claim(1)
        return claimed[0] if claimed else None

    def delete(self, token: tuple[int, bytes]) -> None:
        self._delete([token])

    def _delete(self, tokens: list[tuple[int, bytes]]) -> None:
        self._transaction("FULL")
        self.conn.executemany(
            "DELETE FROM messages WHERE id = ? AND queue_id = ? AND receipt_token = ?",
            [(row_id, self.queue_id, token) for row_id, token in tokens],
        )
        self.conn.execute("COMMIT")

    def receive_delete(self) -> int:
        return self.receive_delete_count(1)

    def receive_delete_batch(self) -> int:
        return self.receive_delete_count(BATCH)

    def receive_delete_count(self, count: int) -> int:
        claimed = self._claim(count)
        if claimed:
            self._delete(claimed)
        return len(claimed)

    def close(self) -> None:
        self.conn.close()


SQLITE_FLOOR = System(
    "sqlite-alone",
    SqliteFloor,
    SqliteFloor,
    _trainmq_load,
    lambda directory: {"durability": "as trainmq's: FULL for sends and deletes"},
    {"b_send_8_threads": "one connection, one fsync per send: no group commit to measure"},
)


# --- persist-queue ---------------------------------------------------------


class PersistQueue:
    """persist-queue's ``SQLiteAckQueue``: get marks a row unacked, ack marks it acked.

    persist-queue opens its connections itself (``journal_mode=WAL``, SQLite's
    default ``synchronous``) and has no option for either, so the pragmas are
    set on its connection objects; with ``multithreading=True`` it holds two
    (one for get, one for put), and both are set. The JSON serializer replaces
    its default, pickle.
    """

    def __init__(
        self, directory: Path, multithreading: bool = False, synchronous: str | None = "FULL"
    ) -> None:
        from persistqueue import SQLiteAckQueue
        from persistqueue.serializers import json as json_serializer

        self.queue = SQLiteAckQueue(
            str(directory), multithreading=multithreading, serializer=json_serializer
        )
        for conn in self.connections():
            _set_pragmas(conn, synchronous)

    def connections(self) -> list[sqlite3.Connection]:
        getter, putter = self.queue._getter, self.queue._putter
        return [getter] if getter is putter else [getter, putter]

    def send(self, body: str) -> int:
        self.queue.put(body)
        return 1

    def send_batch(self, bodies: list[str]) -> int:
        raise NotImplementedError

    def receive_one(self) -> int | None:
        from persistqueue.exceptions import Empty

        try:
            return int(self.queue.get(block=False, raw=True)["pqid"])
        except Empty:
            return None

    def delete(self, token: int) -> None:
        self.queue.ack(id=token)

    def receive_delete(self) -> int:
        token = self.receive_one()
        if token is None:
            return 0
        self.delete(token)
        return 1

    def receive_delete_batch(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.queue.close()


def _persist_load(directory: Path, count: int, body: str) -> None:
    queue = PersistQueue(directory, multithreading=False, synchronous="OFF")
    try:
        for _ in range(count):
            queue.send(body)
    finally:
        queue.close()


def _persist_settings(directory: Path) -> dict[str, Any]:
    settings = {}
    for label, synchronous in (("as opened", None), ("benchmarked", "FULL")):
        queue = PersistQueue(directory, multithreading=True, synchronous=synchronous)
        try:
            settings[label] = [_pragmas(conn) for conn in queue.connections()]
        finally:
            queue.close()
    return settings


PERSIST_QUEUE = System(
    "persist-queue",
    PersistQueue,
    partial(PersistQueue, multithreading=True),
    _persist_load,
    _persist_settings,
    {
        "c_send_batch_10": "SQLiteAckQueue has no bulk put",
        "d_receive_delete_batch_10": "SQLiteAckQueue has no bulk get or ack",
    },
)


# --- litequeue -------------------------------------------------------------


class LiteQueueAdapter:
    """litequeue's ``LiteQueue``: pop marks a row locked, done marks it done.

    LiteQueue opens its own connection with ``check_same_thread=False`` (so one
    instance may be shared by threads) and sets ``synchronous=NORMAL``, which in
    WAL mode does not fsync on commit; the benchmark sets FULL after it.
    """

    def __init__(self, directory: Path, synchronous: str | None = "FULL") -> None:
        from litequeue import LiteQueue

        self.queue = LiteQueue(str(directory / "queue.db"))
        _set_pragmas(self.queue.conn, synchronous)

    def send(self, body: str) -> int:
        self.queue.put(body)
        return 1

    def send_batch(self, bodies: list[str]) -> int:
        raise NotImplementedError

    def receive_one(self) -> str | None:
        message = self.queue.pop()
        return None if message is None else str(message.message_id)

    def delete(self, token: str) -> None:
        self.queue.done(token)

    def receive_delete(self) -> int:
        token = self.receive_one()
        if token is None:
            return 0
        self.delete(token)
        return 1

    def receive_delete_batch(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.queue.close()


def _litequeue_load(directory: Path, count: int, body: str) -> None:
    queue = LiteQueueAdapter(directory, synchronous="OFF")
    try:
        with queue.queue.transaction():
            for _ in range(count):
                queue.send(body)
    finally:
        queue.close()


def _litequeue_settings(directory: Path) -> dict[str, Any]:
    settings = {}
    for label, synchronous in (("as opened", None), ("benchmarked", "FULL")):
        queue = LiteQueueAdapter(directory, synchronous=synchronous)
        try:
            settings[label] = _pragmas(queue.queue.conn)
        finally:
            queue.close()
    return settings


LITEQUEUE = System(
    "litequeue",
    LiteQueueAdapter,
    LiteQueueAdapter,
    _litequeue_load,
    _litequeue_settings,
    {
        "c_send_batch_10": "LiteQueue has no bulk put",
        "d_receive_delete_batch_10": "LiteQueue has no bulk pop or done",
    },
)

SYSTEMS = {system.name: system for system in (TRAINMQ, PERSIST_QUEUE, LITEQUEUE)}
