"""Crash tests on PostgreSQL: SIGKILLed producers and consumers, and server-side
connections terminated mid-transaction.

The SIGKILL rounds are the embedded engine's (``tests/crash/test_kill9.py``) with
the actors pointed at a PostgreSQL schema: every acknowledged send accounted for,
nothing invented, no message held by two consumers at once, none delivered after
its delete returned, dead-lettering after maxReceiveCount.

The termination test runs sends, receives and deletes while another connection
calls ``pg_terminate_backend`` on the backend's sessions over and over: an
operation may fail (``StorageError``), but an acknowledged send is never lost and
a message is never delivered twice within its visibility timeout.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import trainmq
from tests.crash import test_kill9 as kill9
from tests.crash.harness import History
from tests.postgres.support import fresh_schema, require_postgres
from trainmq.errors import StorageError


@pytest.fixture
def address() -> Iterator[str]:
    with fresh_schema("c") as url:
        yield url


@pytest.mark.slow
def test_every_message_accounted_for_after_kill9_rounds(
    address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each actor here also connects to a server and checks the schema: rounds take longer.
    monkeypatch.setattr(kill9, "ROUNDS_BUDGET", 3 * kill9.ROUNDS_BUDGET)
    seed = random.SystemRandom().randrange(2**32)
    kill9.create_queues(address, kill9.VISIBILITY, redrive=True)
    cluster = kill9.Cluster(tmp_path, address, random.Random(seed))
    try:
        rounds = kill9.run_rounds(cluster)
    finally:
        cluster.stop()
    history = kill9.collect(cluster.actors())
    with trainmq.client(address) as client:
        kill9.drain(client, kill9.QUEUE, history, timeout=kill9.VISIBILITY + 20)
        kill9.drain(client, kill9.DEAD_LETTER_QUEUE, history, timeout=20)
    print(f"seed {seed}, {rounds} rounds: {kill9.summary(history, cluster)}")
    assert history.acked, f"seed {seed}: no send was acknowledged"
    assert history.deletes, f"seed {seed}: no consumer deleted anything"
    checks: list[Callable[[History], None]] = [
        kill9.check_none_lost,
        kill9.check_none_invented,
        kill9.check_never_held_twice,
        kill9.check_not_delivered_after_delete,
        kill9.check_receive_counts,
        kill9.check_dead_lettered,
    ]
    for check in checks:
        try:
            check(history)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc


class Terminator:
    """Terminates every session named ``application_name`` until stopped."""

    def __init__(self, application_name: str) -> None:
        self.name = application_name
        self.terminated = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Terminator:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(require_postgres(), autocommit=True) as conn:
            while not self._stop.wait(random.uniform(0.002, 0.02)):
                found = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = %s",
                    (self.name,),
                ).fetchone()
                self.terminated += int(found[0]) if found else 0


def _tolerant(call: Callable[[], Any]) -> Any:
    """The call's result, or None when the connection died under it."""
    try:
        return call()
    except StorageError:
        return None


def test_terminated_connections_lose_no_acknowledged_send(address: str) -> None:
    visibility = 2
    name = f"tmq-kill-{random.randrange(10**9)}"
    acked: set[str] = set()
    seen: dict[str, list[tuple[float, float]]] = {}
    with trainmq.client(f"{address}&application_name={name}") as client:
        url = client.create_queue(
            QueueName="q", Attributes={"VisibilityTimeout": str(visibility)}
        )["QueueUrl"]
        with Terminator(name) as terminator:
            for n in range(300):
                sent = _tolerant(lambda n=n: client.send_message(QueueUrl=url, MessageBody=f"{n}"))
                if sent is not None:
                    acked.add(sent["MessageId"])
                if n % 3 == 2:
                    _consume(client, url, seen)
        assert terminator.terminated > 0, "no session was terminated: the test tested nothing"
        deadline = time.monotonic() + visibility + 20
        while not acked <= set(seen):
            assert time.monotonic() < deadline, f"lost: {sorted(acked - set(seen))[:5]}"
            if not _consume(client, url, seen):
                time.sleep(0.05)
    for message_id, times in seen.items():
        for (first_start, _), (_, second_end) in itertools.pairwise(times):
            # each claim lies within its receive call: the second ended after the first's
            # claim plus the visibility timeout, or it was held twice
            assert second_end - first_start >= visibility - 0.01, f"{message_id}: {times}"
    print(f"{terminator.terminated} sessions terminated, {len(acked)} sends acknowledged")


def _consume(client: Any, url: str, seen: dict[str, list[tuple[float, float]]]) -> int:
    """One receive, then delete what it got (a failed delete leaves it to come back)."""
    started = time.time()
    response = _tolerant(lambda: client.receive_message(QueueUrl=url, MaxNumberOfMessages=10))
    messages = (response or {}).get("Messages", [])
    ended = time.time()
    for message in messages:
        seen.setdefault(message["MessageId"], []).append((started, ended))
    for message in messages:
        handle = message["ReceiptHandle"]
        _tolerant(lambda handle=handle: client.delete_message(QueueUrl=url, ReceiptHandle=handle))
    return len(messages)
