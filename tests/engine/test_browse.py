"""Peeking at messages without receiving them, and moving hand-picked dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainmq.clock import FakeClock
from trainmq.errors import QueueDoesNotExist
from trainmq.queue.backend import MessageBrowser
from trainmq.queue.client import LocalClient, open_service
from trainmq.queue.sqlite import SqliteBackend


@pytest.fixture
def sqs(tmp_path: Path) -> Iterator[LocalClient]:
    with LocalClient(open_service(tmp_path / "queues.db", clock=FakeClock())) as client:
        yield client


def _engine(sqs: LocalClient) -> MessageBrowser:
    """The backend under test (the PostgreSQL suite runs these tests on its backend too)."""
    backend = sqs.service.backend
    assert isinstance(backend, SqliteBackend | MessageBrowser)
    return backend


def _pair(sqs: LocalClient, max_receives: int = 1) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = json.dumps(
        {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": max_receives}
    )
    source = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return source, dlq


def _dead_letter(sqs: LocalClient, source: str, body: str) -> str:
    """Send ``body`` to ``source`` and receive it until it lands in the dead-letter queue."""
    message_id = sqs.send_message(QueueUrl=source, MessageBody=body)["MessageId"]
    sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=source).get("Messages", []) == []
    return str(message_id)


def test_the_engine_is_a_message_browser(sqs: LocalClient) -> None:
    assert isinstance(_engine(sqs), MessageBrowser)


def test_peek_leaves_receive_count_and_visibility_unchanged(sqs: LocalClient) -> None:
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"a": 1}',
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "train"}},
    )
    for _ in range(3):
        peeked = _engine(sqs).peek_messages("jobs")
    assert [(m.body, m.receive_count, m.state) for m in peeked] == [('{"a": 1}', 0, "visible")]
    assert peeked[0].message_attributes["kind"].string_value == "train"
    received = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert received["Attributes"]["ApproximateReceiveCount"] == "1"
    in_flight = _engine(sqs).peek_messages("jobs")[0]
    assert (in_flight.receive_count, in_flight.state) == (1, "in flight")


def test_peek_pages_in_send_order_and_filters_by_id(sqs: LocalClient) -> None:
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    ids = [sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"] for i in range(5)]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    first = _engine(sqs).peek_messages("jobs", limit=2)
    rest = _engine(sqs).peek_messages("jobs", limit=10, after=first[-1].position)
    assert [m.body for m in first + rest] == ["m0", "m1", "m2", "m3", "m4", "later"]
    assert rest[-1].state == "delayed"
    chosen = _engine(sqs).peek_messages("jobs", message_ids=[ids[3], ids[1], "nope"])
    assert [m.body for m in chosen] == ["m1", "m3"]
    assert _engine(sqs).peek_messages("jobs", message_ids=[]) == []


def test_peek_of_a_missing_queue_is_an_sqs_error(sqs: LocalClient) -> None:
    with pytest.raises(QueueDoesNotExist):
        _engine(sqs).peek_messages("absent")


def test_move_selected_moves_exactly_the_named_dead_letters(sqs: LocalClient) -> None:
    source, _dlq = _pair(sqs)
    kept = _dead_letter(sqs, source, "stay")
    chosen = _dead_letter(sqs, source, "go back")
    dead = _engine(sqs).peek_messages("work-dlq")
    assert {m.dead_letter_source for m in dead} == {"arn:aws:sqs:us-east-1:000000000000:work"}
    outcomes = _engine(sqs).move_messages("work-dlq", [chosen, "missing-id"])
    assert [(o.message_id, o.moved, o.destination, o.reason) for o in outcomes] == [
        (chosen, True, "work", None),
        ("missing-id", False, None, "not in the queue"),
    ]
    assert [m.message_id for m in _engine(sqs).peek_messages("work-dlq")] == [kept]
    back = sqs.receive_message(QueueUrl=source, AttributeNames=["All"])["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in back] == [(chosen, "go back")]
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "1"  # a fresh message again


def test_move_selected_leaves_messages_in_flight_alone(sqs: LocalClient) -> None:
    source, dlq = _pair(sqs)
    message_id = _dead_letter(sqs, source, "busy")
    sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=60)
    [outcome] = _engine(sqs).move_messages("work-dlq", [message_id])
    assert (outcome.moved, outcome.reason) == (False, "in flight")
    assert len(_engine(sqs).peek_messages("work-dlq")) == 1


def test_move_selected_reports_a_vanished_source_queue(sqs: LocalClient) -> None:
    source, _dlq = _pair(sqs)
    message_id = _dead_letter(sqs, source, "orphan")
    sqs.delete_queue(QueueUrl=source)
    [outcome] = _engine(sqs).move_messages("work-dlq", [message_id])
    assert (outcome.moved, outcome.reason) == (False, "its source queue no longer exists")
    assert len(_engine(sqs).peek_messages("work-dlq")) == 1
    other = sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    [outcome] = _engine(sqs).move_messages("work-dlq", [message_id], destination="elsewhere")
    assert (outcome.moved, outcome.destination) == (True, "elsewhere")
    assert sqs.receive_message(QueueUrl=other)["Messages"][0]["Body"] == "orphan"


def test_a_planted_source_queue_attribute_is_not_a_way_into_another_queue(
    sqs: LocalClient,
) -> None:
    """Anyone who may send to a dead-letter queue can set ``trainmq.SourceQueue``: a
    redrive back to origins (selected, or a move task) honours it only for a queue that
    really dead-letters into this one, so a planted message cannot reach ``secret``."""
    source, dlq = _pair(sqs)
    secret = sqs.create_queue(QueueName="secret")["QueueUrl"]
    secret_arn = sqs.get_queue_attributes(QueueUrl=secret, AttributeNames=["QueueArn"])
    planted = sqs.send_message(
        QueueUrl=dlq,
        MessageBody="planted",
        MessageAttributes={
            "trainmq.SourceQueue": {
                "DataType": "String",
                "StringValue": secret_arn["Attributes"]["QueueArn"],
            }
        },
    )["MessageId"]
    [outcome] = _engine(sqs).move_messages("work-dlq", [planted])
    assert (outcome.moved, outcome.reason) == (False, "no source queue")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    sqs.start_message_move_task(SourceArn=dlq_arn["Attributes"]["QueueArn"])
    deadline = time.monotonic() + 10
    while True:  # the task runs on its own thread: poll, bounded, until it ends
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn["Attributes"]["QueueArn"])
        if tasks["Results"][0]["Status"] != "RUNNING":
            break
        assert time.monotonic() < deadline, tasks
        time.sleep(0.02)
    assert tasks["Results"][0]["Status"] == "FAILED"
    assert sqs.receive_message(QueueUrl=secret).get("Messages", []) == []
    assert [m.body for m in _engine(sqs).peek_messages("work-dlq")] == ["planted"]
    assert sqs.receive_message(QueueUrl=source).get("Messages", []) == []
