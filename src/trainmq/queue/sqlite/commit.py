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

Adjacent operations of a group that name the same ``merge`` key (sends to one
queue by one client) run as one call of the merge function: one queue lookup
and one multi-row statement for the group instead of one per caller.  Should the
merged call fail, the group is rerun one operation at a time, as any failing
group is, so merging never changes an outcome.

Hand-offs are what a waiting caller costs, so they are kept to one lock each: a
follower blocks on a lock the leader holds for it and releases when its
operation is committed (no ``Event``, whose every wait allocates a condition);
leadership passes to the next caller before the finished ones are woken, so the
next group starts at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ...errors import StorageError
from .writer_lock import WriterLock

__all__ = ["GroupCommitter"]

T = TypeVar("T")
_MAX_BATCH = 512

#: Runs the payloads of several merged operations in one call; one result per payload.
Merge = Callable[[sqlite3.Connection, list[Any]], list[Any]]


class _Op(Generic[T]):
    __slots__ = ("done", "durable", "error", "fn", "lead", "merge", "payload", "result", "sync")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], T],
        durable: bool,
        sync: bool,
        merge: tuple[object, Merge, object] | None,
    ) -> None:
        self.fn = fn
        self.durable = durable
        self.sync = sync
        self.merge = merge
        self.done: Any = None  # a held lock, released when the op is done; only for waiters
        self.lead = False
        self.result: T | None = None
        self.error: BaseException | None = None


def _same_key(merge: tuple[object, Merge, object] | None, key: object) -> bool:
    return merge is not None and merge[0] == key


def _payload(op: _Op[Any]) -> object:
    assert op.merge is not None
    return op.merge[2]


class GroupCommitter:
    """Runs operations on one connection, committing concurrent ones in groups."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        full_sync: bool,
        on_commit: Callable[[], None] | None = None,
        writer_lock: WriterLock | None = None,
    ) -> None:
        self._conn = conn
        self._writer_lock = writer_lock
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
        merge: tuple[object, Merge, object] | None = None,
    ) -> T:
        """Run ``fn(conn)`` in the next group transaction and return its result.

        ``durable``: a change others may wait for (``on_commit`` runs after it).
        ``sync`` (default: ``durable``): the commit must be fsynced before returning;
        clients of one file with ``durability="normal"`` share the committer and say no.
        ``merge``: ``(key, merged, payload)``; adjacent operations with an equal key may
        run as one ``merged(conn, payloads)`` instead of each calling ``fn``.
        """
        op: _Op[T] = _Op(fn, durable, durable if sync is None else sync, merge)
        with self._mutex:
            if self._closed:
                raise StorageError("the queue database is closed")
            lead = not self._leading
            if not lead:
                op.done = done = threading.Lock()
                done.acquire()
            self._pending.append(op)
            self._leading = True
        if not lead:
            op.done.acquire()  # released by the leader once the op ran (or leads)
            lead = op.lead
        if lead:
            self._lead()
        if op.error is not None:
            if isinstance(op.error, sqlite3.Error):
                raise StorageError(f"queue database error: {op.error}") from op.error
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
                        successor.done.release()
                else:
                    self._leading = False
                    if self._closed:
                        self._idle.notify_all()
            for op in batch:
                if op.done is not None:
                    op.done.release()

    @staticmethod
    def _run_all(conn: sqlite3.Connection, batch: list[_Op[Any]]) -> bool:
        """Run every operation in the open transaction; False as soon as one raises."""
        index, count = 0, len(batch)
        while index < count:
            op = batch[index]
            merge = op.merge
            end = index + 1
            if merge is not None:
                while end < count and _same_key(batch[end].merge, merge[0]):
                    end += 1
            try:
                if merge is None or end - index == 1:
                    op.result = op.fn(conn)
                else:
                    group = batch[index:end]
                    results = merge[1](conn, [_payload(member) for member in group])
                    for member, result in zip(group, results, strict=True):
                        member.result = result
            except BaseException as exc:
                op.error = exc
                return False
            index = end
        return True

    @staticmethod
    def _run_isolated(conn: sqlite3.Connection, batch: list[_Op[Any]]) -> None:
        for op in batch:
            op.error = None
            op.result = None
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
        sync = durable = False
        for op in batch:
            sync = sync or op.sync
            durable = durable or op.durable
        wanted = "FULL" if self._full_sync and sync else "NORMAL"
        lock = self._writer_lock
        locked = lock is not None and lock.acquire()  # other processes' writers queue here
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
            if locked and lock is not None:
                lock.release()
            if durable and self._on_commit is not None:
                self._on_commit()
