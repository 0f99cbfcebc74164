"""Group commit: many callers, one transaction and one fsync.

Callers hand the committer a function of the connection.  The first caller to
arrive while no transaction is running becomes the *leader*: it takes every
operation queued at that moment, runs them in one ``BEGIN IMMEDIATE``
transaction (each inside a savepoint, so one failing operation rolls back
alone) and commits once.  While it waits on the disk, new operations pile up;
when it is done it hands leadership to the oldest waiting caller, who commits
the next group.  A lone caller thus runs its operation on its own thread with
no hand-off, and with N concurrent callers about N operations share an fsync;
every caller still returns only after its own change is committed.
``on_commit`` runs after each group that held a durable operation (a change
another caller may be waiting for: a send, a visibility change).

Operations say whether they must be durable before their caller returns.  A
group of non-durable operations only (receive claims, reads) commits with
``synchronous=NORMAL``: atomic and safe against the crash of any process, but
without an fsync (docs/durability.md explains why at-least-once still holds).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ...errors import StorageError

__all__ = ["GroupCommitter"]

T = TypeVar("T")
_MAX_BATCH = 512


class _Op(Generic[T]):
    __slots__ = ("done", "durable", "error", "fn", "lead", "result", "sync")

    def __init__(self, fn: Callable[[sqlite3.Connection], T], durable: bool, sync: bool) -> None:
        self.fn = fn
        self.durable = durable
        self.sync = sync
        self.done: threading.Event | None = None  # only callers that wait need one
        self.lead = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs operations on one connection, committing concurrent ones in groups."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        full_sync: bool,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._conn = conn
        self._full_sync = full_sync
        self._on_commit = on_commit
        self._mutex = threading.Lock()
        self._idle = threading.Condition(self._mutex)
        self._pending: list[_Op[Any]] = []
        self._leading = False
        self._closed = False
        self._synchronous = ""
        self.commits = 0

    def submit(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool = True,
        sync: bool | None = None,
    ) -> T:
        """Run ``fn(conn)`` in the next group transaction and return its result.

        ``durable``: a change others may wait for (``on_commit`` runs after it).
        ``sync`` (default: ``durable``): the commit must be fsynced before returning;
        clients of one file with ``durability="normal"`` share the committer and say no.
        """
        op: _Op[T] = _Op(fn, durable, durable if sync is None else sync)
        with self._mutex:
            if self._closed:
                raise StorageError("the queue database is closed")
            lead = not self._leading
            if not lead:
                op.done = threading.Event()
            self._pending.append(op)
            self._leading = True
        if op.done is not None:
            op.done.wait()
            lead = op.lead
        if lead:
            self._lead()
        if isinstance(op.error, sqlite3.Error):
            raise StorageError(f"queue database error: {op.error}") from op.error
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._mutex:
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
        try:
            self._run_batch(batch)
        finally:
            with self._mutex:
                if self._pending:
                    successor = self._pending[0]
                    successor.lead = True
                    if successor.done is not None:
                        successor.done.set()
                else:
                    self._leading = False
                    self._idle.notify_all()

    @staticmethod
    def _run_all(conn: sqlite3.Connection, batch: list[_Op[Any]]) -> bool:
        """Run every operation in the open transaction; False as soon as one raises."""
        for op in batch:
            try:
                op.result = op.fn(conn)
            except BaseException as exc:
                op.error = exc
                return False
        return True

    @staticmethod
    def _run_isolated(conn: sqlite3.Connection, batch: list[_Op[Any]]) -> None:
        for op in batch:
            op.error = None
            conn.execute("SAVEPOINT op")
            try:
                op.result = op.fn(conn)
            except BaseException as exc:
                op.error = exc
                conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            while self._leading:
                self._idle.wait()
        self._conn.close()

    def _run_batch(self, batch: list[_Op[Any]]) -> None:
        conn = self._conn
        wanted = "FULL" if self._full_sync and any(op.sync for op in batch) else "NORMAL"
        try:
            if wanted != self._synchronous:
                conn.execute(f"PRAGMA synchronous = {wanted}")
                self._synchronous = wanted
            conn.execute("BEGIN IMMEDIATE")
            if not self._run_all(conn, batch):
                # Something failed: start over, each operation in its own savepoint so
                # that only the failing ones roll back.
                conn.execute("ROLLBACK")
                if len(batch) == 1:
                    return
                conn.execute("BEGIN IMMEDIATE")
                self._run_isolated(conn, batch)
            conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StorageError(f"queue database error: {exc}")
            for op in batch:
                if op.error is None:
                    op.error = error
        finally:
            if self._on_commit is not None and any(op.durable for op in batch):
                self._on_commit()
            for op in batch:
                if op.done is not None:
                    op.done.set()
