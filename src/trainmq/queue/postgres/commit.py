"""Group commit on PostgreSQL: callers that overlap share one transaction.

As in the SQLite engine, a caller that arrives while fewer than
``max_leaders`` transactions run becomes a *leader*: it runs its operation in a
transaction on a pooled connection of its own.  Callers arriving while every
leader is busy queue up; when a leader is done it hands everything queued to
the oldest waiting caller, who runs it all in one transaction and commits
once.  So up to ``max_leaders`` callers proceed in parallel (PostgreSQL groups
their WAL flushes), and beyond that about N waiting operations share a commit.
Every caller returns only after the transaction holding its operation has
committed, so a returned send is durable to the degree the server's
``synchronous_commit`` promises.

If an operation raises, the group is rolled back and run again with each
operation in its own savepoint, so only the failing one fails.  A deadlock or
serialization failure (other hosts' transactions) retries the group; a lost
connection before ``COMMIT`` was sent retries it once on a fresh connection
(nothing of it can have committed); a connection lost during ``COMMIT`` fails
the group with ``StorageError``, because whether it committed is unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from ...errors import StorageError

__all__ = ["Connection", "GroupCommitter", "describe"]

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]
_MAX_BATCH = 256
_RETRIES = 5
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off"
_OPEN = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)


class _Op(Generic[T]):
    __slots__ = ("done", "durable", "error", "fn", "handoff", "result", "single")

    def __init__(self, fn: Callable[[Connection], T], durable: bool, single: bool) -> None:
        self.fn = fn
        self.durable = durable
        self.single = single
        self.done: threading.Event | None = None
        self.handoff: list[_Op[Any]] | None = None  # the group this caller is to lead
        self.result: T | None = None
        self.error: BaseException | None = None


class _CommitUnknown(Exception):
    """The connection broke while COMMIT was in flight."""


class GroupCommitter:
    """Runs operations in transactions on ``pool``'s connections, grouping overlapping ones."""

    def __init__(
        self,
        pool: ConnectionPool[Connection],
        on_commit: Callable[[], None] | None = None,
        *,
        max_leaders: int = 1,
    ) -> None:
        self._pool = pool
        self._on_commit = on_commit
        self._max_leaders = max(1, max_leaders)
        self._mutex = threading.Lock()
        self._idle = threading.Condition(self._mutex)
        self._pending: list[_Op[Any]] = []
        self._leaders = 0
        self._closed = False
        self.commits = 0

    def submit(
        self, fn: Callable[[Connection], T], *, durable: bool = True, single: bool = False
    ) -> T:
        """Run ``fn(conn)`` in the next group transaction and return its result.

        Up to ``max_leaders`` groups run at once, each on its own pooled connection;
        callers beyond that wait and form the next group.  ``single``: ``fn`` writes
        with one statement (after any reads), so when it is alone in its group it
        runs without ``BEGIN``/``COMMIT``: the statement commits itself, saving a
        round trip.  Such an operation is not retried when the connection breaks,
        since whether its statement committed is unknown.
        """
        op: _Op[T] = _Op(fn, durable, single)
        batch: list[_Op[Any]] | None = None
        with self._mutex:
            if self._closed:
                raise StorageError("the queue database is closed")
            self._pending.append(op)
            if self._leaders < self._max_leaders:
                # Nobody waits while a leader slot is free, so the group is this op alone.
                self._leaders += 1
                batch = self._take()
            else:
                op.done = threading.Event()
        if batch is None and op.done is not None:
            op.done.wait()
            batch = op.handoff
        if batch is not None:
            self._lead(batch)
        if isinstance(op.error, psycopg.Error):
            raise StorageError(f"queue database error: {describe(op.error)}") from op.error
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]

    def _take(self) -> list[_Op[Any]]:
        batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
        return batch

    def _lead(self, batch: list[_Op[Any]]) -> None:
        """Run ``batch``; then hand the next group to its oldest caller, or step down."""
        try:
            self._run_batch(batch)
        finally:
            with self._mutex:
                if self._pending:
                    group = self._take()
                    successor = group[0]
                    successor.handoff = group
                    if successor.done is not None:
                        successor.done.set()
                else:
                    self._leaders -= 1
                    self._idle.notify_all()

    def _run_batch(self, batch: list[_Op[Any]]) -> None:
        try:
            for attempt in range(_RETRIES):
                try:
                    self._attempt(batch)
                    return
                except _RETRYABLE:
                    continue
                except psycopg.OperationalError:
                    if attempt > 0:
                        raise  # a second broken connection in a row: the server is gone
            self._attempt(batch)
        except (psycopg.Error, _CommitUnknown) as exc:
            error = StorageError(f"queue database error: {describe(exc)}")
            for op in batch:
                if op.error is None or isinstance(op.error, psycopg.Error):
                    op.error = error
        finally:
            if self._on_commit is not None and any(op.durable for op in batch):
                self._on_commit()
            for op in batch:
                if op.done is not None:
                    op.done.set()

    def _attempt(self, batch: list[_Op[Any]]) -> None:
        """One try: run the group (isolating failures) and commit it."""
        with self._pool.connection() as conn:
            try:
                if len(batch) == 1 and batch[0].single:
                    self._run_alone(conn, batch[0])
                    return
                self._attempt_on(conn, batch)
            except BaseException:
                if conn.info.transaction_status in _OPEN:
                    conn.execute("ROLLBACK")
                raise

    def _run_alone(self, conn: Connection, op: _Op[Any]) -> None:
        op.error = None
        try:
            op.result = op.fn(conn)
        except _RETRYABLE:
            raise
        except psycopg.OperationalError as exc:
            raise _CommitUnknown(str(exc)) from exc
        except BaseException as exc:
            op.error = exc
            return
        self.commits += 1

    def _attempt_on(self, conn: Connection, batch: list[_Op[Any]]) -> None:
        """Run the group in pipeline mode: ``BEGIN`` travels with the first statement and
        ``COMMIT`` with the last ones that return nothing, so a lone send costs two round
        trips.  A group of claims only commits without waiting for the disk
        (``synchronous_commit = off``): a claim lost in a crash makes its message visible
        again early, which at-least-once delivery allows."""
        for op in batch:
            op.error = None
        durable = any(op.durable for op in batch)
        ok = False
        try:
            with conn.pipeline():
                self._begin(conn, durable)
                ok = self._run_all(conn, batch)
                if ok:
                    conn.execute("COMMIT")
        except _RETRYABLE:
            raise
        except psycopg.OperationalError as exc:
            if ok:
                raise _CommitUnknown(str(exc)) from exc
            raise
        except psycopg.Error as exc:
            if ok:  # a statement whose result nobody fetched failed: nothing committed
                for op in batch:
                    op.error = exc
                ok = False
        if ok:
            self.commits += 1
            return
        if conn.info.transaction_status in _OPEN:
            conn.execute("ROLLBACK")
        if len(batch) == 1:
            self._raise_if_retryable(batch)
            return
        self._begin(conn, durable)
        self._run_isolated(conn, batch)
        self._raise_if_retryable(batch)
        try:
            conn.execute("COMMIT")
        except psycopg.OperationalError as exc:
            raise _CommitUnknown(str(exc)) from exc
        self.commits += 1

    @staticmethod
    def _begin(conn: Connection, durable: bool) -> None:
        conn.execute("BEGIN")
        if not durable:
            conn.execute(_ASYNC_COMMIT)

    @staticmethod
    def _raise_if_retryable(batch: list[_Op[Any]]) -> None:
        for op in batch:
            if isinstance(op.error, psycopg.OperationalError):
                raise op.error

    @staticmethod
    def _run_all(conn: Connection, batch: list[_Op[Any]]) -> bool:
        """Run every operation in the open transaction; False as soon as one raises."""
        for op in batch:
            try:
                op.result = op.fn(conn)
            except BaseException as exc:
                op.error = exc
                return False
        return True

    @staticmethod
    def _run_isolated(conn: Connection, batch: list[_Op[Any]]) -> None:
        for op in batch:
            op.error = None
            conn.execute("SAVEPOINT op")
            try:
                op.result = op.fn(conn)
            except BaseException as exc:
                op.error = exc
                if isinstance(exc, psycopg.OperationalError):
                    return
                conn.execute("ROLLBACK TO SAVEPOINT op")
            conn.execute("RELEASE SAVEPOINT op")

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            while self._leaders:
                self._idle.wait()


def describe(exc: BaseException) -> str:
    """An error's first line: never the connection string (it may hold a password)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
