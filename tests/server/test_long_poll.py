"""Long polling through the server, and long polls at shutdown.

These tests measure real time on purpose: how soon a waiting receive wakes up,
and how soon SIGTERM ends a waiting receive, is the behaviour under test.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .conftest import ServerProcess, StartServer

WAKE_UP_WITHIN = 2.0
SETTLE = 0.5  # how long a long poll must have been waiting before the test acts


class Background:
    """Run one call on a thread, remembering its result, error and when it returned."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.returned_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except Exception as exc:
            self.error = exc
        self.returned_at = time.monotonic()

    def still_waiting_after(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def test_waiting_receive_wakes_up_when_a_message_arrives(server: ServerProcess) -> None:
    consumer, producer = server.client(), server.client()
    url = consumer.create_queue(QueueName="long-poll-wake")["QueueUrl"]
    poll = Background(lambda: consumer.receive_message(QueueUrl=url, WaitTimeSeconds=10))
    assert poll.still_waiting_after(SETTLE), (poll.result, poll.error)

    sent = producer.send_message(QueueUrl=url, MessageBody="wake up")
    sent_at = time.monotonic()
    assert poll.wait(WAKE_UP_WITHIN + 5), "the long poll did not return"
    assert poll.error is None
    assert [m["MessageId"] for m in poll.result["Messages"]] == [sent["MessageId"]]
    assert poll.returned_at - sent_at < WAKE_UP_WITHIN


def test_empty_long_poll_waits_for_its_wait_time(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="long-poll-empty")["QueueUrl"]
    started = time.monotonic()
    result = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    elapsed = time.monotonic() - started
    assert result.get("Messages", []) == []
    assert 0.9 <= elapsed < 3.0


def test_long_polls_do_not_hold_up_other_requests(server: ServerProcess) -> None:
    client = server.client()
    idle = client.create_queue(QueueName="long-poll-idle")["QueueUrl"]
    busy = client.create_queue(QueueName="long-poll-busy")["QueueUrl"]
    pollers = [server.client() for _ in range(8)]
    polls = [
        Background(lambda c=c: c.receive_message(QueueUrl=idle, WaitTimeSeconds=3)) for c in pollers
    ]
    assert polls[-1].still_waiting_after(SETTLE)
    started = time.monotonic()
    for number in range(10):
        client.send_message(QueueUrl=busy, MessageBody=str(number))
    received = client.receive_message(QueueUrl=busy, MaxNumberOfMessages=10)["Messages"]
    assert len(received) >= 1
    assert time.monotonic() - started < 2.0
    assert all(poll.still_waiting_after(0) for poll in polls)
    for poll in polls:
        assert poll.wait(10)
        assert poll.error is None and poll.result.get("Messages", []) == []


def test_sigterm_ends_a_waiting_long_poll_and_the_server_exits_cleanly(
    start_server: StartServer,
) -> None:
    server = start_server()
    client = server.client()
    url = client.create_queue(QueueName="long-poll-shutdown")["QueueUrl"]
    poll = Background(lambda: client.receive_message(QueueUrl=url, WaitTimeSeconds=20))
    assert poll.still_waiting_after(SETTLE)

    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert poll.wait(10), "the long poll outlived the server's shutdown"
    assert poll.returned_at - signalled < 3.0
    if poll.error is None:  # answered before the connection closed: with no messages
        assert poll.result.get("Messages", []) == []
    returncode = server.process.wait(timeout=20)
    assert returncode == 0, server.output()
    assert time.monotonic() - signalled < 5.0
