"""FIFO queues: groups, ordering, deduplication, sequence numbers and receive attempts."""

from __future__ import annotations

import pytest


def _send(sqs, url, body, group="g", dedup=None, **params):
    return sqs.client.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageGroupId=group,
        MessageDeduplicationId=dedup or body,
        **params,
    )


def _bodies(messages):
    return [m["Body"] for m in messages]


def _delete_all(sqs, url, messages):
    for message in messages:
        sqs.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# --- Required parameters --------------------------------------------------------------------


def test_message_group_id_is_required(sqs):
    with sqs.raises("MissingParameter"):
        sqs.client.send_message(
            QueueUrl=sqs.fifo_queue(), MessageBody="x", MessageDeduplicationId="d"
        )


def test_deduplication_id_is_required_without_content_based_deduplication(sqs):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=sqs.fifo_queue(), MessageBody="x", MessageGroupId="g")


def test_per_message_delay_is_rejected(sqs):
    with sqs.raises("InvalidParameterValue"):
        _send(sqs, sqs.fifo_queue(), "x", DelaySeconds=5)


def test_deduplication_id_is_rejected_on_a_standard_queue(sqs):
    sqs.xfail_on("moto", "moto accepts MessageDeduplicationId on a standard queue")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody="x", MessageDeduplicationId="d")


@pytest.mark.parametrize("field", ["MessageGroupId", "MessageDeduplicationId"])
@pytest.mark.parametrize("value", ["x" * 129, "has space", "tab\t"])
def test_group_and_deduplication_ids_are_128_printable_characters(sqs, field, value):
    sqs.xfail_on("moto", "moto does not validate FIFO ids")
    params = {"MessageGroupId": "g", "MessageDeduplicationId": "d", field: value}
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=sqs.fifo_queue(), MessageBody="x", **params)


def test_ids_may_use_punctuation(sqs):
    url = sqs.fifo_queue()
    punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    _send(sqs, url, "x", group=punctuation, dedup="a" * 128)
    message = sqs.receive_one(url, MessageSystemAttributeNames=["All"])
    assert message["Attributes"]["MessageGroupId"] == punctuation
    assert message["Attributes"]["MessageDeduplicationId"] == "a" * 128


# --- Ordering and groups ----------------------------------------------------------------------


def test_messages_of_a_group_arrive_in_send_order(sqs):
    url = sqs.fifo_queue()
    bodies = [f"m{i}" for i in range(8)]
    for body in bodies:
        _send(sqs, url, body)
    received = []
    for _ in range(len(bodies)):
        batch = sqs.receive(url)
        received.extend(batch)
        _delete_all(sqs, url, batch)
        if len(received) == len(bodies):
            break
    assert _bodies(received) == bodies


def test_no_second_message_of_a_group_while_one_is_in_flight(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "first")
    _send(sqs, url, "second")
    first = sqs.receive_one(url)
    assert first["Body"] == "first"
    assert sqs.receive(url) == []
    sqs.client.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert _bodies(sqs.receive(url)) == ["second"]


def test_an_expired_message_is_redelivered_before_the_rest_of_its_group(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "first")
    _send(sqs, url, "second")
    sqs.receive_one(url, VisibilityTimeout=0)
    assert sqs.receive_one(url)["Body"] == "first"


def test_groups_interleave(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "a1", group="A")
    _send(sqs, url, "a2", group="A")
    _send(sqs, url, "b1", group="B")
    first = sqs.receive_one(url)
    second = sqs.receive_one(url)
    assert {first["Body"], second["Body"]} == {"a1", "b1"}
    assert sqs.receive(url) == []


def test_one_receive_returns_a_group_in_order(sqs):
    url = sqs.fifo_queue()
    for body in ("x1", "x2", "x3"):
        _send(sqs, url, body, group="X")
    batch = sqs.receive(url)
    assert _bodies(batch) == ["x1", "x2", "x3"][: len(batch)]
    assert batch


# --- Deduplication --------------------------------------------------------------------------------


def test_duplicate_deduplication_id_is_accepted_but_delivered_once(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "original", dedup="same")
    duplicate = _send(sqs, url, "duplicate", dedup="same")
    assert duplicate["MessageId"]
    messages = sqs.receive(url)
    assert _bodies(messages) == ["original"]
    _delete_all(sqs, url, messages)
    assert sqs.receive(url) == []


def test_duplicates_are_dropped_even_after_the_original_is_deleted(sqs):
    sqs.xfail_on("moto", "moto forgets a deduplication id once its message is deleted")
    url = sqs.fifo_queue()
    _send(sqs, url, "once", dedup="d1")
    _delete_all(sqs, url, sqs.receive(url))
    _send(sqs, url, "once again", dedup="d1")
    assert sqs.receive(url) == []


def test_deduplication_window_is_five_minutes(sqs_clock):
    sqs = sqs_clock
    url = sqs.fifo_queue()
    _send(sqs, url, "first", dedup="d")
    _delete_all(sqs, url, sqs.receive(url))
    sqs.advance(299)
    _send(sqs, url, "too soon", dedup="d")
    assert sqs.receive(url) == []
    sqs.advance(2)
    _send(sqs, url, "accepted", dedup="d")
    assert _bodies(sqs.receive(url)) == ["accepted"]


def test_content_based_deduplication_uses_the_body(sqs):
    url = sqs.fifo_queue(ContentBasedDeduplication="true")
    for body in ("same", "same", "different"):
        sqs.client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    received = []
    for _ in range(3):
        batch = sqs.receive(url)
        received.extend(batch)
        _delete_all(sqs, url, batch)
    assert _bodies(received) == ["same", "different"]


def test_explicit_deduplication_id_overrides_content_based(sqs):
    url = sqs.fifo_queue(ContentBasedDeduplication="true")
    _send(sqs, url, "same", dedup="one")
    _send(sqs, url, "same", dedup="two")
    received = []
    for _ in range(3):
        batch = sqs.receive(url)
        received.extend(batch)
        _delete_all(sqs, url, batch)
    assert _bodies(received) == ["same", "same"]


def test_deduplication_scope_message_group(sqs):
    sqs.xfail_on("moto", "moto deduplicates across the whole queue whatever the scope")
    url = sqs.fifo_queue(DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    attributes = sqs.attributes(url, "DeduplicationScope", "FifoThroughputLimit")
    assert attributes == {
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
    }
    _send(sqs, url, "in A", group="A", dedup="same")
    _send(sqs, url, "in B", group="B", dedup="same")
    _send(sqs, url, "again in A", group="A", dedup="same")
    received = []
    for _ in range(3):
        batch = sqs.receive(url)
        received.extend(batch)
        _delete_all(sqs, url, batch)
    assert sorted(_bodies(received)) == ["in A", "in B"]


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("DeduplicationScope", "everywhere"), ("FifoThroughputLimit", "unlimited")],
)
def test_fifo_attributes_reject_unknown_values(sqs, attribute, value):
    sqs.xfail_on("moto", "moto does not validate FIFO attribute values")
    with sqs.raises("InvalidAttributeValue"):
        sqs.fifo_queue(**{attribute: value})


# --- Sequence numbers and system attributes -------------------------------------------------------


def test_sequence_numbers_are_present_and_increasing(sqs):
    sqs.xfail_on("moto", "moto draws sequence numbers at random")
    url = sqs.fifo_queue()
    numbers = [_send(sqs, url, f"m{i}", group=f"g{i % 2}")["SequenceNumber"] for i in range(5)]
    assert all(n.isdigit() for n in numbers)
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers)
    assert len(set(numbers)) == 5


def test_fifo_system_attributes(sqs):
    url = sqs.fifo_queue()
    sent = _send(sqs, url, "body", group="grp", dedup="ddp")
    message = sqs.receive_one(url, MessageSystemAttributeNames=["All"])
    attributes = message["Attributes"]
    assert attributes["MessageGroupId"] == "grp"
    assert attributes["MessageDeduplicationId"] == "ddp"
    assert attributes["SequenceNumber"] == sent["SequenceNumber"]
    assert attributes["ApproximateReceiveCount"] == "1"


def test_send_batch_to_a_fifo_queue_keeps_order(sqs):
    url = sqs.fifo_queue()
    result = sqs.client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": f"e{i}",
                "MessageBody": f"m{i}",
                "MessageGroupId": "g",
                "MessageDeduplicationId": f"d{i}",
            }
            for i in range(5)
        ],
    )
    assert all(entry["SequenceNumber"] for entry in result["Successful"])
    received = []
    for _ in range(5):
        batch = sqs.receive(url)
        received.extend(batch)
        _delete_all(sqs, url, batch)
        if len(received) == 5:
            break
    assert _bodies(received) == [f"m{i}" for i in range(5)]


# --- ReceiveRequestAttemptId ----------------------------------------------------------------------


def test_receive_request_attempt_id_returns_the_same_messages(sqs):
    sqs.xfail_on("moto", "moto ignores ReceiveRequestAttemptId")
    url = sqs.fifo_queue()
    for body in ("r1", "r2"):
        _send(sqs, url, body)
    first = sqs.receive(url, ReceiveRequestAttemptId="attempt-1")
    assert first
    retry = sqs.receive(url, ReceiveRequestAttemptId="attempt-1")
    assert [m["MessageId"] for m in retry] == [m["MessageId"] for m in first]


def test_a_new_receive_request_attempt_id_gets_new_messages(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "a", group="A")
    _send(sqs, url, "b", group="B")
    first = sqs.receive(url, MaxNumberOfMessages=1, ReceiveRequestAttemptId="one")
    second = sqs.receive(url, MaxNumberOfMessages=1, ReceiveRequestAttemptId="two")
    assert {m["Body"] for m in first + second} == {"a", "b"}
