"""Group commit: one writer thread, one transaction and one fsync for many callers.

Callers hand the committer a function of the connection.  The writer thread
takes every operation waiting at that moment, runs them in one ``BEGIN
IMMEDIATE`` transaction (each inside a savepoint, so one failing operation
rolls back alone) and commits once.  While it waits on the disk, new work
piles up and rides in the next transaction: throughput grows with the number
of concurrent callers while every caller still returns only after its own
change is on disk.

Operations say whether they must be durable before their caller returns.  A
transaction of non-durable operations only (receive claims, reads) commits
with ``synchronous=NORMAL``: atomic and safe against a crash of any process,
but without an fsync (see docs/durability.md for why that keeps the
at-least-once promise).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ...errors import StorageError

__all__ = ["GroupCommitter"]

T = TypeVar("T")
_MAX_BATCH = 512


class _Op(Generic[T]):
    __slots__ = ("done", "durable", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], T], durable: bool) -> None:
        self.fn = fn
        self.durable = durable
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs operations on one connection in a writer thread, committing them in groups."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        full_sync: bool,
        on_commit: Callable[[], None] | None = None,
        name: str = "trainmq-commit",
    ) -> None:
        self._connect = connect
        self._full_sync = full_sync
        self._on_commit = on_commit
        self._ops: queue.SimpleQueue[_Op[Any] | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` in the next group transaction and return its result."""
        if self._closed:
            raise StorageError("the queue database is closed")
        op: _Op[T] = _Op(fn, durable)
        self._ops.put(op)
        op.done.wait()
        if isinstance(op.error, sqlite3.Error):
            raise StorageError(f"queue database error: {op.error}") from op.error
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ops.put(None)
        self._thread.join()

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the constructor's caller
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        synchronous = ""
        try:
            while True:
                first = self._ops.get()
                if first is None:
                    return
                batch: list[_Op[Any]] = [first]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        nxt = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                wanted = "FULL" if self._full_sync and any(op.durable for op in batch) else "NORMAL"
                if wanted != synchronous:
                    conn.execute(f"PRAGMA synchronous = {wanted}")
                    synchronous = wanted
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op[Any]]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            if len(batch) == 1:
                op = batch[0]
                try:
                    op.result = op.fn(conn)
                except BaseException as exc:
                    op.error = exc
                    conn.execute("ROLLBACK")
                    return
            else:
                for op in batch:
                    conn.execute("SAVEPOINT op")
                    try:
                        op.result = op.fn(conn)
                    except BaseException as exc:
                        op.error = exc
                        conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StorageError(f"queue database error: {exc}")
            for op in batch:
                if op.error is None:
                    op.error = error
        finally:
            if self._on_commit is not None:
                self._on_commit()
            for op in batch:
                op.done.set()
