"""The engine's delivery order past the cases the contract suite sees: the bounded
window of a standard queue, and FIFO groups of very different shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trainmq
from trainmq.clock import FakeClock
from trainmq.queue.sqlite import delivery


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    client = trainmq.client(str(tmp_path / "queues.db"), clock=clock)
    yield client
    client.close()


def _send_all(client: Any, url: str, bodies: list[str], groups: list[str] | None = None) -> None:
    for start in range(0, len(bodies), 10):
        entries = []
        for i, body in enumerate(bodies[start : start + 10], start=start):
            entry = {"Id": str(i - start), "MessageBody": body}
            if groups is not None:
                entry |= {"MessageGroupId": groups[i], "MessageDeduplicationId": body}
            entries.append(entry)
        client.send_message_batch(QueueUrl=url, Entries=entries)


def _bodies(client: Any, url: str, count: int = 10, **params: Any) -> list[str]:
    response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=count, **params)
    return [m["Body"] for m in response.get("Messages", [])]


def test_standard_order_past_the_window_falls_back_to_visibility_order(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "_STANDARD_WINDOW", 5)
    other = client.create_queue(QueueName="backlog")["QueueUrl"]
    _send_all(client, other, [f"old-{i}" for i in range(8)])  # fills the window
    url = client.create_queue(QueueName="work")["QueueUrl"]
    _send_all(client, url, ["a", "b", "c"])
    assert _bodies(client, url, VisibilityTimeout=0) == ["a", "b", "c"]


def test_standard_order_inside_the_window_is_send_order(
    client: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "_STANDARD_WINDOW", 5)
    url = client.create_queue(QueueName="work")["QueueUrl"]
    _send_all(client, url, ["a", "b", "c", "d", "e", "f", "g"])
    taken = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=5)
    assert [m["Body"] for m in taken["Messages"]] == ["a"]
    clock.advance(5)  # "a" is visible again, later than every other message
    # the window (a..e) in send order, then the rest by visibility
    assert _bodies(client, url) == ["a", "b", "c", "d", "e", "f", "g"]


def test_one_large_fifo_group_is_read_in_order(client: Any) -> None:
    url = client.create_queue(QueueName="one.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    bodies = [f"m{i:04d}" for i in range(300)]
    _send_all(client, url, bodies, ["g"] * len(bodies))
    received: list[str] = []
    for _ in range(30):
        response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        for message in response["Messages"]:
            received.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert received == bodies


def test_many_small_fifo_groups_fill_one_batch(client: Any) -> None:
    url = client.create_queue(QueueName="many.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    bodies = [f"m{i:03d}" for i in range(100)]
    groups = [f"g{i % 40}" for i in range(100)]  # groups of 2 or 3, interleaved
    _send_all(client, url, bodies, groups)
    batch = _bodies(client, url, VisibilityTimeout=60)
    # g0: m000, m040, m080; g1: m001, m041, m081; g2: m002, m042, m082; g3: m003 ...
    assert batch == ["m000", "m040", "m080", "m001", "m041", "m081", "m002", "m042", "m082", "m003"]
    # g3's later messages wait behind m003, in flight
    assert _bodies(client, url, 3) == ["m004", "m044", "m084"]
