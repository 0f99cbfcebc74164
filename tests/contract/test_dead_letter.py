"""Dead-letter queues, RedriveAllowPolicy enforcement and message-move tasks."""

from __future__ import annotations

import json
import time

import pytest

MOVE_TASKS_MISSING = "moto does not implement message-move tasks"


def _redrive(arn, count):
    return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count})


def _pair(sqs, max_receive_count=2):
    """A dead-letter queue and a source queue that sends to it."""
    dlq = sqs.queue(sqs.unique("dlq"))
    source = sqs.queue(sqs.unique("src"), RedrivePolicy=_redrive(sqs.arn(dlq), max_receive_count))
    return source, dlq


def _exhaust(sqs, url, receives):
    """Receive the queue's one message ``receives`` times without deleting it."""
    for _ in range(receives):
        sqs.receive_one(url, VisibilityTimeout=0)


# --- Redrive on receive ---------------------------------------------------------------------


def test_message_moves_to_the_dlq_after_max_receive_count(sqs):
    source, dlq = _pair(sqs, max_receive_count=2)
    sent = sqs.client.send_message(QueueUrl=source, MessageBody="poison")
    _exhaust(sqs, source, 2)
    assert sqs.receive(source, VisibilityTimeout=0) == []
    moved = sqs.receive_one(dlq)
    assert moved["MessageId"] == sent["MessageId"]
    assert moved["Body"] == "poison"
    assert sqs.count(source) == 0


def test_message_attributes_survive_the_move(sqs):
    source, dlq = _pair(sqs, max_receive_count=1)
    attributes = {"trace": {"DataType": "String", "StringValue": "t-1"}}
    sqs.client.send_message(QueueUrl=source, MessageBody="x", MessageAttributes=attributes)
    _exhaust(sqs, source, 1)
    assert sqs.receive(source) == []
    moved = sqs.receive_one(dlq, MessageAttributeNames=["All"])
    assert moved["MessageAttributes"] == attributes


def test_messages_within_max_receive_count_stay(sqs):
    source, dlq = _pair(sqs, max_receive_count=3)
    sqs.client.send_message(QueueUrl=source, MessageBody="x")
    _exhaust(sqs, source, 3)
    assert sqs.receive(dlq) == []
    assert sqs.count(source) == 1


def test_deleted_messages_never_reach_the_dlq(sqs):
    source, dlq = _pair(sqs, max_receive_count=1)
    sqs.client.send_message(QueueUrl=source, MessageBody="handled")
    handle = sqs.receive_one(source)["ReceiptHandle"]
    sqs.client.delete_message(QueueUrl=source, ReceiptHandle=handle)
    assert sqs.receive(source) == []
    assert sqs.receive(dlq) == []


def test_fifo_message_moves_to_a_fifo_dlq(sqs):
    dlq = sqs.fifo_queue()
    source = sqs.fifo_queue(RedrivePolicy=_redrive(sqs.arn(dlq), 1))
    sqs.client.send_message(
        QueueUrl=source, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d"
    )
    _exhaust(sqs, source, 1)
    assert sqs.receive(source) == []
    moved = sqs.receive_one(dlq, MessageSystemAttributeNames=["MessageGroupId"])
    assert moved["Body"] == "x"
    assert moved["Attributes"]["MessageGroupId"] == "g"


# --- ListDeadLetterSourceQueues ----------------------------------------------------------------


def test_list_dead_letter_source_queues(sqs):
    dlq = sqs.queue("dlq")
    arn = sqs.arn(dlq)
    sources = [sqs.queue(f"src-{i}", RedrivePolicy=_redrive(arn, 3)) for i in range(2)]
    sqs.queue("unrelated")
    listed = sqs.client.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]
    assert sorted(listed) == sorted(sources)


def test_list_dead_letter_source_queues_of_a_plain_queue_is_empty(sqs):
    response = sqs.client.list_dead_letter_source_queues(QueueUrl=sqs.queue())
    assert response.get("queueUrls", []) == []


def test_list_dead_letter_source_queues_of_an_unknown_queue(sqs):
    url = sqs.queue()
    sqs.client.delete_queue(QueueUrl=url)
    with sqs.raises("AWS.SimpleQueueService.NonExistentQueue"):
        sqs.client.list_dead_letter_source_queues(QueueUrl=url)


# --- RedriveAllowPolicy enforcement -------------------------------------------------------------


def _allow(sqs, dlq, policy):
    sqs.client.set_queue_attributes(
        QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps(policy)}
    )


def test_deny_all_rejects_a_redrive_policy_that_points_at_it(sqs):
    sqs.xfail_on("moto", "moto does not enforce RedriveAllowPolicy")
    dlq = sqs.queue("dlq")
    _allow(sqs, dlq, {"redrivePermission": "denyAll"})
    with sqs.raises("InvalidParameterValue"):
        sqs.queue("source", RedrivePolicy=_redrive(sqs.arn(dlq), 3))


def test_by_queue_admits_only_the_listed_sources(sqs):
    sqs.xfail_on("moto", "moto does not enforce RedriveAllowPolicy")
    dlq = sqs.queue("dlq")
    allowed = sqs.queue("allowed")
    other = sqs.queue("other")
    _allow(sqs, dlq, {"redrivePermission": "byQueue", "sourceQueueArns": [sqs.arn(allowed)]})
    policy = _redrive(sqs.arn(dlq), 3)
    sqs.client.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": policy})
    with sqs.raises("InvalidParameterValue"):
        sqs.client.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": policy})


def test_allow_all_admits_any_source(sqs):
    dlq = sqs.queue("dlq")
    _allow(sqs, dlq, {"redrivePermission": "allowAll"})
    source = sqs.queue("source", RedrivePolicy=_redrive(sqs.arn(dlq), 3))
    assert "RedrivePolicy" in sqs.attributes(source)


# --- Message-move tasks -------------------------------------------------------------------------


def _dead_letters(sqs, bodies):
    """A source queue whose dead-letter queue holds one message per body."""
    source, dlq = _pair(sqs, max_receive_count=1)
    for body in bodies:
        sqs.client.send_message(QueueUrl=source, MessageBody=body)
    for _ in range(len(bodies) * 3):
        if not sqs.receive(source, VisibilityTimeout=0):
            break
    assert sqs.count(dlq) == len(bodies)
    return source, dlq


def _wait_for_task(sqs, source_arn, deadline_s=10.0):
    """Poll ListMessageMoveTasks until the newest task leaves RUNNING (bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        results = sqs.client.list_message_move_tasks(SourceArn=source_arn)["Results"]
        if results and results[0]["Status"] != "RUNNING":
            return results[0]
        assert time.monotonic() < deadline, f"move task still running: {results}"
        time.sleep(0.02)


def _drain(sqs, url, expected):
    bodies: list[str] = []
    for _ in range(expected * 3):
        batch = sqs.receive(url)
        bodies.extend(m["Body"] for m in batch)
        for message in batch:
            sqs.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(bodies) >= expected:
            break
    return sorted(bodies)


def test_move_task_returns_dead_letters_to_their_source(sqs):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    bodies = ["one", "two", "three"]
    source, dlq = _dead_letters(sqs, bodies)
    dlq_arn = sqs.arn(dlq)
    handle = sqs.client.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle
    task = _wait_for_task(sqs, dlq_arn)
    assert task["Status"] == "COMPLETED"
    assert task["SourceArn"] == dlq_arn
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert _drain(sqs, source, 3) == sorted(bodies)
    assert sqs.count(dlq) == 0


def test_move_task_sends_dead_letters_to_an_explicit_destination(sqs):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    source, dlq = _dead_letters(sqs, ["a", "b"])
    destination = sqs.queue("elsewhere")
    dlq_arn, destination_arn = sqs.arn(dlq), sqs.arn(destination)
    sqs.client.start_message_move_task(SourceArn=dlq_arn, DestinationArn=destination_arn)
    task = _wait_for_task(sqs, dlq_arn)
    assert task["Status"] == "COMPLETED"
    assert task["DestinationArn"] == destination_arn
    assert _drain(sqs, destination, 2) == ["a", "b"]
    assert sqs.receive(source) == []


def test_move_task_needs_a_dead_letter_queue_as_source(sqs):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    plain = sqs.queue("plain")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.start_message_move_task(SourceArn=sqs.arn(plain))


def test_move_task_from_an_unknown_queue(sqs):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    with sqs.raises("ResourceNotFoundException"):
        sqs.client.start_message_move_task(
            SourceArn="arn:aws:sqs:us-east-1:000000000000:no-such-queue"
        )


def test_list_move_tasks_of_a_queue_without_tasks_is_empty(sqs):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    _, dlq = _pair(sqs)
    # AWS leaves an empty list out of a response.
    assert sqs.client.list_message_move_tasks(SourceArn=sqs.arn(dlq)).get("Results", []) == []


def test_cancel_an_unknown_move_task(sqs):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    with sqs.raises("ResourceNotFoundException"):
        sqs.client.cancel_message_move_task(TaskHandle="does-not-exist")


@pytest.mark.parametrize("with_destination", [False, True])
def test_list_move_tasks_reports_the_newest_first(sqs, with_destination):
    sqs.xfail_on("moto", MOVE_TASKS_MISSING)
    _, dlq = _dead_letters(sqs, ["first"])
    dlq_arn = sqs.arn(dlq)
    params = {"SourceArn": dlq_arn}
    if with_destination:
        params["DestinationArn"] = sqs.arn(sqs.queue("target"))
    sqs.client.start_message_move_task(**params)
    _wait_for_task(sqs, dlq_arn)
    sqs.client.start_message_move_task(**params)
    _wait_for_task(sqs, dlq_arn)
    results = sqs.client.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert [r["Status"] for r in results] == ["COMPLETED", "COMPLETED"]
    assert [r["ApproximateNumberOfMessagesMoved"] for r in results] == [0, 1]
    assert results[0]["StartedTimestamp"] >= results[1]["StartedTimestamp"]
