"""``PostgresBackend``: the SQS contract on PostgreSQL, for many hosts sharing queues.

Writes go through a group committer over a small connection pool; a send,
delete or visibility change returns once its transaction has committed.  Claims
lock rows with ``SKIP LOCKED``, so consumers on any number of hosts neither
block each other nor hold one message together.  Long polls wake on
``LISTEN``/``NOTIFY`` from the committing host, with a bounded fallback poll.
Times come from the backend's clock (hosts keep theirs in sync with NTP, as
SQS's own timestamps assume); tests pass a fake one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

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
from . import browse, claims, messages, moves, queues, schema
from .commit import Connection, GroupCommitter, describe
from .config import PostgresAddress
from .listen import Listener

__all__ = ["PostgresBackend"]

T = TypeVar("T")
_SWEEP_INTERVAL_MS = 10_000
_MOVE_CHUNK = 100


class PostgresBackend:
    """The queue contract over one PostgreSQL schema (``trainmq`` unless told otherwise).

    ``durability="full"`` (default) commits as the server's ``synchronous_commit``
    says (on a default server: flushed to disk, and to synchronous standbys if
    any); ``"normal"`` sets ``synchronous_commit = off`` for this backend's
    sessions.  ``pool_size`` transactions of this process run at once (more
    callers share them, group commit); ``fallback_poll`` bounds how late a long
    poll notices a message whose notification was lost.
    """

    def __init__(
        self,
        address: str,
        *,
        schema_name: str | None = None,
        clock: Clock | None = None,
        durability: str = "full",
        region: str = "us-east-1",
        account_id: str = "000000000000",
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        fallback_poll: float = 1.0,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ConfigurationError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.address = PostgresAddress.parse(address, schema_name)
        self.clock: Clock = clock or SystemClock()
        self.region = region
        self.account_id = account_id
        self.durability = durability
        self._fallback_poll = fallback_poll
        self._channel = f"trainmq.{self.address.schema}"
        self._changed = threading.Event()
        self._changed_lock = threading.Lock()
        self._released = threading.Event()
        self._closed = threading.Event()
        self._last_sweep: dict[str, int] = {}
        self._move_threads: list[threading.Thread] = []
        self._listener: Listener | None = None
        self._pool = self._open_pool(pool_size, connect_timeout)
        try:
            with self._pool.connection() as conn:
                schema.migrate(conn, self.address.schema)
        except psycopg.Error as exc:
            self._pool.close()
            raise StorageError(f"{self.address.display}: {describe(exc)}") from exc
        except BaseException:
            self._pool.close()
            raise
        self._committer = GroupCommitter(
            self._pool, on_commit=lambda: self._wake(""), max_leaders=pool_size
        )

    # -- connections ------------------------------------------------------------------------
    def _open_pool(self, size: int, timeout: float) -> ConnectionPool[Connection]:
        settings = sql.SQL("SET search_path TO {}").format(sql.Identifier(self.address.schema))
        durability = self.durability

        def configure(conn: Connection) -> None:
            conn.execute(settings)
            if durability == "normal":
                conn.execute("SET synchronous_commit TO off")

        kwargs: dict[str, object] = {"autocommit": True}
        if "application_name" not in conninfo_to_dict(self.address.conninfo):
            kwargs["application_name"] = "trainmq"  # what pg_stat_activity shows
        pool: ConnectionPool[Connection] = ConnectionPool(
            self.address.conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=max(1, size) + 2,  # a connection per leader, and two for reads
            configure=configure,
            open=False,
            name="trainmq",
        )
        try:
            pool.open(wait=True, timeout=timeout)
        except PoolTimeout:
            pool.close()
            raise StorageError(
                f"cannot connect to {self.address.display} within {timeout:g} s"
            ) from None
        return pool

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _write(
        self, fn: Callable[[Connection, int], T], *, durable: bool = True, single: bool = False
    ) -> T:
        return self._committer.submit(
            lambda conn: fn(conn, self._now_ms()), durable=durable, single=single
        )

    def _read(self, fn: Callable[[Connection, int], T]) -> T:
        """A read outside the group: it neither waits for writers nor holds them up."""
        try:
            with self._pool.connection() as conn:
                return fn(conn, self._now_ms())
        except psycopg.Error as exc:
            raise StorageError(f"queue database error: {describe(exc)}") from exc

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
        def tag(conn: Connection, now: int) -> None:
            queues.set_tags(conn, name, queues.load(conn, name, lock=True).tags | tags)

        self._write(tag)

    def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        def untag(conn: Connection, now: int) -> None:
            current = queues.load(conn, name, lock=True).tags
            queues.set_tags(conn, name, {k: v for k, v in current.items() if k not in keys})

        self._write(untag)

    def add_permission(
        self, name: str, label: str, accounts: Sequence[str], actions: Sequence[str]
    ) -> None:
        def add(conn: Connection, now: int) -> None:
            current = queues.load(conn, name, lock=True).attributes.get("Policy")
            updated = policy.add_statement(current, self.arn(name), label, accounts, actions)
            queues.set_attributes(conn, name, {"Policy": updated}, now)

        self._write(add)

    def remove_permission(self, name: str, label: str) -> None:
        def remove(conn: Connection, now: int) -> None:
            current = queues.load(conn, name, lock=True).attributes.get("Policy")
            updated = policy.remove_statement(current, self.arn(name), label)
            queues.set_attributes(conn, name, {"Policy": updated}, now)

        self._write(remove)

    def list_dead_letter_source_queues(self, name: str) -> list[str]:
        def sources(conn: Connection, now: int) -> list[str]:
            queues.load(conn, name)
            return dead_letter_sources(queues.all_rows(conn), name)

        return self._read(sources)

    # -- messages ---------------------------------------------------------------------------
    def send_messages(self, name: str, batch: Sequence[NewMessage]) -> list[SendResult | SQSError]:
        return self._write(
            lambda c, now: messages.send(c, name, batch, now, self._channel),
            single=messages.one_statement(name),
        )

    def receive_messages(self, name: str, request: ReceiveRequest) -> list[ReceivedMessage]:
        def claim() -> list[ReceivedMessage]:
            return self._write(lambda c, now: self._claim(c, name, request, now), durable=False)

        if request.wait_seconds <= 0:
            return claim()
        if self._listener is None:
            self._start_listener()
        deadline = self.clock.now() + request.wait_seconds
        while True:
            changed = self._changed
            claimed = claim()
            if claimed or self.clock.now() >= deadline or self._released.is_set():
                return claimed
            self._wait_for_change(name, changed, deadline)

    def _claim(
        self, conn: Connection, name: str, request: ReceiveRequest, now: int
    ) -> list[ReceivedMessage]:
        queue = queues.load(conn, name)
        if now - self._last_sweep.get(name, 0) >= _SWEEP_INTERVAL_MS:
            self._last_sweep[name] = now
            messages.sweep(conn, queue, now)
        return claims.claim(conn, queue, request, now, self.arn)

    def _start_listener(self) -> None:
        with self._changed_lock:
            if self._listener is None and not self._closed.is_set():
                self._listener = Listener(self.address.conninfo, self._channel, self._wake)

    def _wake(self, queue_name: str) -> None:
        """A commit here or a notification from any host: every waiting long poll re-checks."""
        with self._changed_lock:
            changed, self._changed = self._changed, threading.Event()
        changed.set()

    def _wait_for_change(self, name: str, changed: threading.Event, deadline: float) -> None:
        """Block until a commit or notification, a delayed or in-flight message of the queue
        comes due, the fallback interval ends, or the deadline passes."""
        due_ms = self._read(lambda c, now: messages.next_visible_at(c, name, now))
        wake_at = deadline if due_ms is None else min(deadline, due_ms / 1000)
        remaining = min(wake_at - self.clock.now(), self._fallback_poll)
        if remaining > 0 and not self._released.is_set():
            self.clock.wait(changed, remaining)

    def peek_messages(
        self,
        name: str,
        *,
        limit: int = 50,
        after: int = 0,
        message_ids: Sequence[str] | None = None,
    ) -> list[PeekedMessage]:
        """Messages in send order, read without claiming them: nothing about them changes."""
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
        return self._write(
            lambda c, now: messages.delete(c, name, receipt_handles, now),
            single=messages.one_statement(name),
        )

    def change_visibility(
        self, name: str, changes: Sequence[tuple[str, int]]
    ) -> list[SQSError | None]:
        return self._write(
            lambda c, now: messages.change_visibility(c, name, changes, now, self._channel)
        )

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
            try:
                more = self._write(lambda c, now: moves.move_chunk(c, task_id, chunk, now))
            except StorageError:
                return  # the task stays RUNNING; cancel it and start another
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
        self._wake("")

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.release_waiters()
        for thread in self._move_threads:
            thread.join()
        self._committer.close()
        with self._changed_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._pool.close()

    def __enter__(self) -> PostgresBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
