"""What the PostgreSQL backend adds beyond the contract: long polls woken by another
host's commit, group commit of overlapping callers, housekeeping in bounded batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.postgres.support import fresh_schema, require_postgres
from trainmq.clock import FakeClock
from trainmq.queue.client import LocalClient
from trainmq.queue.model import NewMessage, ReceiveRequest
from trainmq.queue.postgres import PostgresAddress, PostgresBackend
from trainmq.queue.postgres import messages as pg_messages
from trainmq.queue.service import SQSService


@pytest.fixture
def address() -> Iterator[str]:
    with fresh_schema("g") as url:
        yield url


def _message(body: str) -> NewMessage:
    return NewMessage(body=body, md5_of_body="0" * 32, delay_seconds=0)


def test_a_long_poll_wakes_on_another_hosts_commit(address: str) -> None:
    """The fallback poll is longer than the wait: only the notification can wake it."""
    waiter = PostgresBackend(address, fallback_poll=60)
    sender = PostgresBackend(address)
    try:
        sender.create_queue("q", {}, {})
        got: list[object] = []
        started = time.monotonic()

        def poll() -> None:
            got.extend(waiter.receive_messages("q", ReceiveRequest(1, wait_seconds=20)))

        thread = threading.Thread(target=poll)
        thread.start()
        deadline = time.monotonic() + 10
        while waiter._listener is None or not waiter._listener.listening.is_set():
            assert time.monotonic() < deadline, "the long poll never listened"
            time.sleep(0.01)
        sender.send_messages("q", [_message("wake up")])
        thread.join(30)
        elapsed = time.monotonic() - started
        assert [m.body for m in got] == ["wake up"]  # type: ignore[attr-defined]
        assert elapsed < 10, f"woke after {elapsed:.1f} s: not by the notification"
    finally:
        waiter.close()
        sender.close()


def test_overlapping_sends_share_commits(address: str) -> None:
    backend = PostgresBackend(address)
    try:
        backend.create_queue("q.fifo", {"FifoQueue": "true"}, {})  # FIFO: never sent alone
        before = backend._committer.commits
        barrier = threading.Barrier(16)

        def send(n: int) -> None:
            barrier.wait()
            for k in range(10):
                message = _message(f"{n}-{k}")
                message.group_id, message.deduplication_id = f"g{n}", f"{n}-{k}"
                backend.send_messages("q.fifo", [message])

        threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        commits = backend._committer.commits - before
        assert backend.queue_counts("q.fifo")["ApproximateNumberOfMessages"] == 160
        assert commits < 160, f"{commits} commits for 160 overlapping sends"
    finally:
        backend.close()


def _rows(address: str) -> int:
    schema = PostgresAddress.parse(address).schema
    with psycopg.connect(require_postgres(), autocommit=True) as conn:
        found = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "messages"))
        ).fetchone()
    return int(found[0]) if found else -1


def test_receives_delete_expired_messages_in_bounded_batches(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_messages, "SWEEP_BATCH", 2)
    clock = FakeClock()
    with LocalClient(SQSService(PostgresBackend(address, clock=clock))) as client:
        url = client.create_queue(
            QueueName="q", Attributes={"MessageRetentionPeriod": "60"}
        )["QueueUrl"]
        for n in range(5):
            client.send_message(QueueUrl=url, MessageBody=f"old-{n}")
        clock.advance(61)
        client.send_message(QueueUrl=url, MessageBody="new")
        assert _rows(address) == 6
        received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in received] == ["new"]  # expired ones are never delivered
        assert _rows(address) == 4  # one batch of two removed
        clock.advance(11)  # the next sweep of this queue
        client.receive_message(QueueUrl=url)
        assert _rows(address) == 2
