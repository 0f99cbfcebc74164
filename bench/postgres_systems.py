"""The queues `bench/postgres.py` compares, behind one adapter shape.

Each adapter works in a PostgreSQL schema of its own (dropped afterwards) on
the server's default durability (``synchronous_commit = on``), except the
SQLite engine, which works in a file with ``durability="full"``.  Every call
handles messages and says how many; the 4-consumer scenario calls
``receive_delete`` from four threads (sync adapters) or four tasks (async ones),
each peer consumer and floor consumer with a connection of its own, trainmq's
four threads sharing one client, as ``trainmq worker --concurrency 4`` runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import trainmq

BATCH = 10


def schema_address(server: str, schema: str) -> str:
    return f"{server}{'&' if '?' in server else '?'}schema={schema}"


def drop_schema(server: str, schema: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


class TrainmqQueue:
    """trainmq's boto3-shaped client on one queue (PostgreSQL or the SQLite engine)."""

    def __init__(self, address: str) -> None:
        self.client = trainmq.client(address)
        self.url = self.client.create_queue(
            QueueName="bench", Attributes={"VisibilityTimeout": "60"}
        )["QueueUrl"]

    def send(self, body: str) -> int:
        self.client.send_message(QueueUrl=self.url, MessageBody=body)
        return 1

    def send_batch(self, bodies: list[str]) -> int:
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
        self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
        return len(bodies)

    def receive_delete(self) -> int:
        got = self.client.receive_message(QueueUrl=self.url).get("Messages", [])
        for m in got:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return len(got)

    def receive_delete_batch(self) -> int:
        got = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=BATCH).get(
            "Messages", []
        )
        if got:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ]
            self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
        return len(got)

    def close(self) -> None:
        self.client.close()


_FLOOR_SCHEMA = """
CREATE TABLE floor (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body text NOT NULL,
    visible_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX floor_visible ON floor (visible_at, id);
"""
_FLOOR_CLAIM = (
    "UPDATE floor SET visible_at = now() + interval '60 seconds' WHERE id IN ("
    "SELECT id FROM floor WHERE visible_at <= now() ORDER BY visible_at, id LIMIT %s "
    "FOR UPDATE SKIP LOCKED) RETURNING id, body"
)


class FloorQueue:
    """A minimal hand-written SKIP LOCKED queue: what PostgreSQL itself costs here.

    A send is one INSERT, a receive one UPDATE (claim with a visibility time), a
    delete one DELETE, each its own autocommitted transaction; nothing else.
    """

    def __init__(self, address: str, schema: str, setup: bool) -> None:
        self.conn = psycopg.connect(address, autocommit=True)
        self.conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        if setup:
            self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            self.conn.execute(_FLOOR_SCHEMA)

    def send(self, body: str) -> int:
        self.conn.execute("INSERT INTO floor (body) VALUES (%s)", (body,))
        return 1

    def send_batch(self, bodies: list[str]) -> int:
        self.conn.execute("INSERT INTO floor (body) SELECT unnest(%s::text[])", (bodies,))
        return len(bodies)

    def _receive_delete(self, limit: int) -> int:
        ids = [row[0] for row in self.conn.execute(_FLOOR_CLAIM, (limit,)).fetchall()]
        if ids:
            self.conn.execute("DELETE FROM floor WHERE id = ANY(%s)", (ids,))
        return len(ids)

    def receive_delete(self) -> int:
        return self._receive_delete(1)

    def receive_delete_batch(self) -> int:
        return self._receive_delete(BATCH)

    def close(self) -> None:
        self.conn.close()


class ProcrastinateQueue:
    """procrastinate: ``defer``/``batch_defer`` and the worker's fetch_job + finish_job."""

    def __init__(self, address: str, schema: str) -> None:
        self.address, self.schema = address, schema
        self.app: Any = None
        self.task: Any = None
        self.worker_id = 0

    async def open(self, setup: bool) -> None:
        import procrastinate

        options = {"options": f"-c search_path={self.schema}"}
        if setup:
            with psycopg.connect(self.address, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        connector = procrastinate.PsycopgConnector(
            conninfo=self.address, kwargs=options, min_size=1, max_size=1
        )
        self.app = procrastinate.App(connector=connector)
        await self.app.open_async()
        if setup:
            await self.app.schema_manager.apply_schema_async()
        self.task = self.app.task(name="bench", queue="bench")(_noop)
        self.worker_id = await self.app.job_manager.register_worker()

    async def send(self, body: str) -> int:
        await self.task.defer_async(body=body)
        return 1

    async def send_batch(self, bodies: list[str]) -> int:
        await self.task.batch_defer_async(*({"body": b} for b in bodies))
        return len(bodies)

    async def receive_delete(self) -> int:
        from procrastinate.jobs import Status

        job = await self.app.job_manager.fetch_job(queues=None, worker_id=self.worker_id)
        if job is None:
            return 0
        await self.app.job_manager.finish_job(job, Status.SUCCEEDED, delete_job=True)
        return 1

    async def receive_delete_batch(self) -> int:
        return -1  # procrastinate fetches one job at a time

    async def close(self) -> None:
        await self.app.close_async()


def _noop(body: str) -> None:
    """The benchmark's procrastinate task (never run: the benchmark fetches jobs itself)."""


class PgqueuerQueue:
    """pgqueuer: ``enqueue`` (lists for a batch), ``dequeue`` + ``log_jobs``."""

    def __init__(self, address: str, schema: str) -> None:
        self.address, self.schema = address, schema
        self.conn: Any = None
        self.queries: Any = None

    async def open(self, setup: bool) -> None:
        from pgqueuer.queries import Queries

        if setup:
            with psycopg.connect(self.address, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.conn = await psycopg.AsyncConnection.connect(
            self.address, autocommit=True, options=f"-c search_path={self.schema}"
        )
        self.queries = Queries.from_psycopg_connection(self.conn)
        if setup:
            await self.queries.install(create_schema=False)

    async def send(self, body: str) -> int:
        await self.queries.enqueue("bench", body.encode(), 0)
        return 1

    async def send_batch(self, bodies: list[str]) -> int:
        await self.queries.enqueue(
            ["bench"] * len(bodies), [b.encode() for b in bodies], [0] * len(bodies)
        )
        return len(bodies)

    async def _receive_delete(self, limit: int) -> int:
        from pgqueuer.queries import EntrypointExecutionParameter

        jobs = await self.queries.dequeue(
            batch_size=limit,
            entrypoints={"bench": EntrypointExecutionParameter(concurrency_limit=0)},
            queue_manager_id=uuid.uuid4(),
            global_concurrency_limit=None,
            heartbeat_timeout=timedelta(seconds=60),
        )
        if jobs:
            await self.queries.log_jobs([(job, "successful", None) for job in jobs])
        return len(jobs)

    async def receive_delete(self) -> int:
        return await self._receive_delete(1)

    async def receive_delete_batch(self) -> int:
        return await self._receive_delete(BATCH)

    async def close(self) -> None:
        await self.conn.close()


def sync_opener(
    name: str, server: str, workdir: Path
) -> Callable[[str, bool], Any]:
    """(schema, set up?) -> an open sync queue, for the named system."""

    def open_queue(schema: str, setup: bool) -> Any:
        if name == "trainmq-postgres":
            return TrainmqQueue(schema_address(server, schema))
        if name == "trainmq-sqlite":
            return TrainmqQueue(str(workdir / f"{schema}.db"))
        return FloorQueue(server, schema, setup)

    return open_queue


def async_opener(name: str, server: str) -> Callable[[str, bool], Awaitable[Any]]:
    async def open_queue(schema: str, setup: bool) -> Any:
        queue: Any = (
            ProcrastinateQueue(server, schema)
            if name == "procrastinate"
            else PgqueuerQueue(server, schema)
        )
        await queue.open(setup)
        return queue

    return open_queue


def run_async(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]
