"""``SqliteBackend``: the embedded, durable, multi-process SQS engine.

One database file holds every queue.  Writes go through a group committer (one
writer connection per file per process, shared by every client of the file in
the process: see ``files``), reads and the long-poll watcher use a separate
connection.  Any number of processes may open the same file: SQLite's locks
serialise their transactions and every claim is atomic.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ...clock import Clock, SystemClock
from ...errors import ConfigurationError, SQSError, StorageError
from .. import policy
from ..model import (
    MoveTask,
    NewMessage,
    PeekedMessage,
    QueueRecord,
    ReceivedMessage,
    ReceiveRequest,
    SelectedMove,
    SendResult,
)
from ..queue_row import dead_letter_sources
from . import browse, files, messages, moves, queues, wakeup
from .commit import Merge

__all__ = ["SqliteBackend"]

T = TypeVar("T")
_SWEEP_INTERVAL_MS = 10_000
_MOVE_CHUNK = 100


class SqliteBackend:
    """The embedded queue engine over one SQLite file.

    ``durability="full"`` (default) fsyncs every commit that a caller's promise
    depends on; ``"normal"`` skips those fsyncs (safe against process crashes,
    not against power loss).  ``durable_receives=True`` fsyncs receive claims
    too: for consumers on other machines (through ``trainmq serve``), whose
    receipt handles outlive a power loss of this one (docs/durability.md).
    A long poll wakes at once for a send by this process and, on Linux, within
    about a millisecond for one by another process (inotify; elsewhere within
    ``wakeup.FALLBACK_INTERVAL``): see ``wakeup``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        durability: str = "full",
        region: str = "us-east-1",
        account_id: str = "000000000000",
        busy_timeout: float = 30.0,
        durable_receives: bool = False,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ConfigurationError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self.region = region
        self.account_id = account_id
        self.durability = durability
        self._durable_receives = durable_receives
        self._last_sweep: dict[str, int] = {}
        self._move_threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._released = threading.Event()
        self._shut = False
        self._database = files.open_database(self.path, busy_timeout)

    # -- connections ------------------------------------------------------------------------
    def _usable(self) -> None:
        if self._shut:
            raise StorageError("the queue database is closed")
        self._database.check_process()

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _write(
        self,
        fn: Callable[[sqlite3.Connection, int], T],
        *,
        durable: bool = True,
        sync: bool | None = None,
        merge: tuple[object, Merge, object] | None = None,
    ) -> T:
        """Run ``fn`` in the next group commit.  ``durable``: a change that long polls
        wait for; ``sync`` (default ``durable``): fsynced before returning, if this
        client's durability is "full" (clients sharing one file may differ);
        ``merge``: see ``GroupCommitter.submit``."""
        self._usable()
        wanted = durable if sync is None else sync
        return self._database.committer.submit(
            lambda conn: fn(conn, self._now_ms()),
            durable=durable,
            sync=wanted and self.durability == "full",
            merge=merge,
        )

    def _read(self, fn: Callable[[sqlite3.Connection, int], T]) -> T:
        """A read on its own connection, in one snapshot: in WAL mode it neither waits for
        nor blocks writers (counting a million messages must not stall every send)."""
        self._usable()
        with self._database.watch_lock:
            conn = self._database.watcher
            try:
                conn.execute("BEGIN")
                try:
                    return fn(conn, self._now_ms())
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"queue database error: {exc}") from exc

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    # -- queues -----------------------------------------------------------------------------
    def create_queue(
        self, name: str, attributes: dict[str, str], tags: dict[str, str]
    ) -> QueueRecord:
        return self._write(lambda c, now: queues.create(c, name, attributes, tags, now).record())

    def delete_queue(self, name: str) -> None:
        self._write(lambda c, now: queues.delete(c, name, now))

    def list_queues(self, prefix: str | None) -> list[str]:
        return self._read(lambda c, now: [row.name for row in queues.all_rows(c, prefix)])

    def get_queue(self, name: str) -> QueueRecord:
        return self._read(lambda c, now: queues.load(c, name).record())

    def queue_counts(self, name: str) -> dict[str, int]:
        return self._read(lambda c, now: queues.counts(c, queues.load(c, name), now))

    def oldest_message_age(self, name: str) -> float | None:
        return self._read(lambda c, now: queues.oldest_message_age(c, queues.load(c, name), now))

    def set_queue_attributes(self, name: str, attributes: dict[str, str]) -> None:
        self._write(lambda c, now: queues.set_attributes(c, name, attributes, now))

    def purge_queue(self, name: str) -> None:
        self._write(lambda c, now: queues.purge(c, name, now))

    def tag_queue(self, name: str, tags: dict[str, str]) -> None:
        def tag(conn: sqlite3.Connection, now: int) -> None:
            queues.set_tags(conn, name, queues.load(conn, name).tags | tags)

        self._write(tag)

    def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        def untag(conn: sqlite3.Connection, now: int) -> None:
            current = queues.load(conn, name).tags
            queues.set_tags(conn, name, {k: v for k, v in current.items() if k not in keys})

        self._write(untag)

    def add_permission(
        self, name: str, label: str, accounts: Sequence[str], actions: Sequence[str]
    ) -> None:
        def add(conn: sqlite3.Connection, now: int) -> None:
            current = queues.load(conn, name).attributes.get("Policy")
            updated = policy.add_statement(current, self.arn(name), label, accounts, actions)
            queues.set_attributes(conn, name, {"Policy": updated}, now)

        self._write(add)

    def remove_permission(self, name: str, label: str) -> None:
        def remove(conn: sqlite3.Connection, now: int) -> None:
            current = queues.load(conn, name).attributes.get("Policy")
            updated = policy.remove_statement(current, self.arn(name), label)
            queues.set_attributes(conn, name, {"Policy": updated}, now)

        self._write(remove)

    def list_dead_letter_source_queues(self, name: str) -> list[str]:
        def sources(conn: sqlite3.Connection, now: int) -> list[str]:
            queues.load(conn, name)
            return dead_letter_sources(queues.all_rows(conn), name)

        return self._read(sources)

    # -- messages ---------------------------------------------------------------------------
    def send_messages(self, name: str, batch: Sequence[NewMessage]) -> list[SendResult | SQSError]:
        """One INSERT for the batch; concurrent sends of this client to the same queue
        that land in one group commit share one lookup and one INSERT as well."""
        return self._write(
            lambda c, now: messages.send(c, name, batch, now),
            merge=((self, name), self._send_merged, (name, batch)),
        )

    def _send_merged(
        self, conn: sqlite3.Connection, payloads: list[tuple[str, Sequence[NewMessage]]]
    ) -> list[list[SendResult | SQSError]]:
        name = payloads[0][0]
        merged = [message for _, batch in payloads for message in batch]
        results = messages.send(conn, name, merged, self._now_ms())
        split, start = [], 0
        for _, batch in payloads:
            split.append(results[start : start + len(batch)])
            start += len(batch)
        return split

    def receive_messages(self, name: str, request: ReceiveRequest) -> list[ReceivedMessage]:
        def claim() -> list[ReceivedMessage]:
            return self._write(
                lambda c, now: self._claim(c, name, request, now),
                durable=False,
                sync=self._durable_receives,
            )

        if request.wait_seconds <= 0:
            return claim()
        deadline = self.clock.now() + request.wait_seconds
        changes = self._database.changes
        with changes.waiting_for_change():
            while True:
                changed = changes.changed
                claimed = claim()
                if claimed or self.clock.now() >= deadline or self._released.is_set():
                    return claimed
                self._wait_for_change(name, changed, deadline)

    def _claim(
        self, conn: sqlite3.Connection, name: str, request: ReceiveRequest, now: int
    ) -> list[ReceivedMessage]:
        if now - self._last_sweep.get(name, 0) >= _SWEEP_INTERVAL_MS:
            self._last_sweep[name] = now
            messages.sweep(conn, queues.load(conn, name), now)
        return messages.claim(conn, name, request, now, self.arn)

    def next_due(self, name: str) -> float | None:
        """When (in this engine's clock) the queue's next delayed or in-flight message
        becomes visible; None if none will."""
        self._usable()
        with self._database.watch_lock:
            due_ms = messages.next_visible_at(self._database.watcher, name, self._now_ms())
        return None if due_ms is None else due_ms / 1000

    def _wait_for_change(self, name: str, changed: threading.Event, deadline: float) -> None:
        """Block until this process commits, another process commits (``wakeup``), a
        delayed or in-flight message of the queue comes due, or the deadline passes."""
        due = self.next_due(name)
        wake_at = deadline if due is None else min(deadline, due)
        while not self._released.is_set():
            remaining = wake_at - self.clock.now()
            if remaining <= 0 or self.clock.wait(changed, remaining):
                return

    # -- waiting without a thread (the HTTP endpoint) ----------------------------------------
    def async_changes(self, loop: asyncio.AbstractEventLoop) -> wakeup.AsyncChanges:
        """This database's changes for coroutines on ``loop``: a server's long polls
        await them instead of blocking a thread each in ``receive_messages``."""
        self._usable()
        return self._database.changes.async_changes(loop)

    @property
    def released(self) -> bool:
        """True once ``release_waiters`` has ended long polls for good (shutdown)."""
        return self._released.is_set()

    def peek_messages(
        self,
        name: str,
        *,
        limit: int = 50,
        after: int = 0,
        message_ids: Sequence[str] | None = None,
    ) -> list[PeekedMessage]:
        """Messages in send order, read in a snapshot: nothing about them changes."""
        return self._read(
            lambda c, now: browse.peek(
                c, name, now, limit=limit, after=after, message_ids=message_ids
            )
        )

    def move_messages(
        self, source: str, message_ids: Sequence[str], destination: str | None = None
    ) -> list[SelectedMove]:
        """Move the named messages (each atomically) to ``destination`` or their origin."""
        return self._write(
            lambda c, now: browse.move_selected(c, source, message_ids, destination, now)
        )

    def delete_messages(self, name: str, receipt_handles: Sequence[str]) -> list[SQSError | None]:
        return self._write(lambda c, now: messages.delete(c, name, receipt_handles, now))

    def change_visibility(
        self, name: str, changes: Sequence[tuple[str, int]]
    ) -> list[SQSError | None]:
        return self._write(lambda c, now: messages.change_visibility(c, name, changes, now))

    # -- message-move tasks -----------------------------------------------------------------
    def start_move_task(
        self, source: str, destination: str | None, max_per_second: int | None
    ) -> str:
        is_dlq = bool(self.list_dead_letter_source_queues(source))
        task_id = self._write(
            lambda c, now: moves.start(
                c, source, destination, max_per_second, now, self.arn(source), is_dlq
            )
        )
        thread = threading.Thread(
            target=self._run_move,
            args=(task_id, max_per_second),
            name="trainmq-move",
            daemon=True,
        )
        self._move_threads.append(thread)
        thread.start()
        return task_id

    def _run_move(self, task_id: str, max_per_second: int | None) -> None:
        chunk = min(_MOVE_CHUNK, max_per_second or _MOVE_CHUNK)
        pause = chunk / max_per_second if max_per_second else 0.0
        while not self._closed.is_set():
            more = self._write(lambda c, now: moves.move_chunk(c, task_id, chunk, now))
            if not more:
                return
            if pause:
                self.clock.wait(self._closed, pause)

    def redrive_destinations(self, source: str) -> list[str]:
        """Every queue a move task from ``source`` without a destination may write into."""
        return self._read(lambda c, now: moves.destinations(c, source))

    def cancel_move_task(self, task_handle: str) -> int:
        return self._write(lambda c, now: moves.cancel(c, task_handle))

    def list_move_tasks(self, source: str, max_results: int) -> list[MoveTask]:
        return self._read(lambda c, now: moves.list_tasks(c, source, max_results))

    def release_waiters(self) -> None:
        """End every long poll at once (they return what they hold, or nothing); for shutdown."""
        self._released.set()
        self._database.changes.wake_all()

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.release_waiters()
        for thread in self._move_threads:
            thread.join()
        self._shut = True
        files.close_database(self._database)

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
