"""SQS's delivery rules on the PostgreSQL backend, as AWS states and records them.

FIFO: a receive fills its batch from one group first; only an *earlier* message
that is not visible holds back later ones of its group; groups that come back
from in flight are served after groups never delivered; an expired receipt
handle cannot delete ("The receipt handle has expired."); a purge clears the
deduplication cache.  Standard: the oldest sent message first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import trainmq
from tests.postgres.support import fresh_schema
from trainmq.clock import FakeClock
from trainmq.errors import SQSError


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[Any]:
    with fresh_schema("r") as address, trainmq.client(address, clock=clock) as sqs:
        yield sqs


def _fifo(client: Any, **attributes: str) -> str:
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true", **attributes}
    return str(client.create_queue(QueueName="f.fifo", Attributes=attributes)["QueueUrl"])


def _send(client: Any, url: str, group: str, body: str) -> None:
    client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)


def _receive(client: Any, url: str, count: int = 10, **params: Any) -> list[dict[str, Any]]:
    response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=count, **params)
    return list(response.get("Messages", []))


def _bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [m["Body"] for m in messages]


def test_batch_fills_from_one_group_first(client: Any) -> None:
    url = _fifo(client)
    for group, body in [("g1", "g1-m1"), ("g2", "g2-m1"), ("g1", "g1-m2"), ("g1", "g1-m3")]:
        _send(client, url, group, body)
    assert _bodies(_receive(client, url)) == ["g1-m1", "g1-m2", "g1-m3", "g2-m1"]


def test_only_an_earlier_message_in_flight_holds_its_group(client: Any) -> None:
    url = _fifo(client)
    for body in ("a", "b", "c"):
        _send(client, url, "g", body)
    first_two = _receive(client, url, 2)
    assert _bodies(first_two) == ["a", "b"]
    assert _receive(client, url) == []  # "a" in flight holds back "c"
    # "a" comes back; "b" stays in flight: "a" is ahead of it, and is delivered again
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first_two[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert _bodies(_receive(client, url)) == ["a"]


def test_groups_back_from_flight_come_after_never_delivered_groups(client: Any) -> None:
    url = _fifo(client)
    _send(client, url, "g1", "g1-m1")
    _send(client, url, "g2", "g2-m1")
    held = _receive(client, url, 1)
    assert _bodies(held) == ["g1-m1"]
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=held[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    _send(client, url, "g3", "g3-m1")
    assert _bodies(_receive(client, url, 1)) == ["g2-m1"]
    assert _bodies(_receive(client, url, 1)) == ["g3-m1"]
    assert _bodies(_receive(client, url, 1)) == ["g1-m1"]


def test_expired_handle_cannot_delete_on_fifo(client: Any, clock: FakeClock) -> None:
    url = _fifo(client, VisibilityTimeout="30")
    _send(client, url, "g", "m")
    handle = _receive(client, url, 1)[0]["ReceiptHandle"]
    clock.advance(31)
    with pytest.raises(SQSError) as caught:
        client.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert caught.value.code == "InvalidParameterValue"
    assert caught.value.response["Error"]["Message"] == (
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle "
        "has expired."
    )
    assert _bodies(_receive(client, url, 1)) == ["m"]  # still there


def test_purge_clears_the_deduplication_cache(client: Any, clock: FakeClock) -> None:
    url = _fifo(client)
    _send(client, url, "g", "same body")
    client.purge_queue(QueueUrl=url)
    _send(client, url, "g", "same body")
    assert _bodies(_receive(client, url)) == ["same body"]


def test_standard_queue_delivers_the_oldest_sent_first(client: Any, clock: FakeClock) -> None:
    url = client.create_queue(QueueName="s", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="old")
    assert _bodies(_receive(client, url, 1)) == ["old"]
    clock.advance(5)
    client.send_message(QueueUrl=url, MessageBody="new")
    clock.advance(6)  # "old" is visible again, later than "new" became visible
    assert _bodies(_receive(client, url, 2)) == ["old", "new"]
