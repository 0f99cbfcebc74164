"""ReceiveMessage: limits, attribute selection, long polling, delay and visibility."""

from __future__ import annotations

import threading
import time

import pytest

# --- Parameters ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 11, -1])
def test_max_number_of_messages_must_be_1_to_10(sqs, count):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.receive_message(QueueUrl=sqs.queue(), MaxNumberOfMessages=count)


def test_receive_returns_at_most_max_number_of_messages(sqs):
    url = sqs.queue()
    sqs.client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": str(i)} for i in range(10)]
    )
    assert len(sqs.receive(url, MaxNumberOfMessages=3)) <= 3
    assert len(sqs.receive(url, MaxNumberOfMessages=1)) <= 1


def test_receive_without_max_returns_one_message(sqs):
    url = sqs.queue()
    for i in range(3):
        sqs.client.send_message(QueueUrl=url, MessageBody=str(i))
    response = sqs.client.receive_message(QueueUrl=url)
    assert len(response["Messages"]) == 1


def test_receive_on_an_empty_queue_returns_no_messages(sqs):
    assert sqs.client.receive_message(QueueUrl=sqs.queue()).get("Messages", []) == []


@pytest.mark.parametrize("wait", [-1, 21])
def test_wait_time_seconds_must_be_0_to_20(sqs, wait):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.receive_message(QueueUrl=sqs.queue(), WaitTimeSeconds=wait)


@pytest.mark.parametrize("timeout", [-1, 43201])
def test_receive_visibility_timeout_must_be_0_to_43200(sqs, timeout):
    if timeout < 0:
        sqs.xfail_on("moto", "moto accepts a negative VisibilityTimeout on ReceiveMessage")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.receive_message(QueueUrl=sqs.queue(), VisibilityTimeout=timeout)


# --- System attributes -------------------------------------------------------------------

STANDARD_SYSTEM_ATTRIBUTES = {
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
}


@pytest.mark.parametrize("parameter", ["AttributeNames", "MessageSystemAttributeNames"])
def test_all_system_attributes_of_a_standard_message(sqs, parameter):
    url = sqs.queue()
    before_ms = int(sqs.now() * 1000)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    message = sqs.receive_one(url, **{parameter: ["All"]})
    after_ms = int(sqs.now() * 1000) + 1000
    attributes = message["Attributes"]
    assert set(attributes) >= STANDARD_SYSTEM_ATTRIBUTES
    assert attributes["ApproximateReceiveCount"] == "1"
    assert attributes["SenderId"]
    for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp"):
        assert attributes[name].isdigit(), name
        assert before_ms - 1000 <= int(attributes[name]) <= after_ms, name
    for fifo_only in ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber"):
        assert fifo_only not in attributes


def test_only_requested_system_attributes_are_returned(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    message = sqs.receive_one(
        url, MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"]
    )
    assert set(message["Attributes"]) == {"ApproximateReceiveCount", "SentTimestamp"}


def test_no_system_attributes_unless_asked(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    assert sqs.receive_one(url).get("Attributes", {}) == {}


def test_first_receive_timestamp_stays_and_count_grows(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(VisibilityTimeout=10)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    sqs.advance(5)
    first = sqs.receive_one(url, MessageSystemAttributeNames=["All"])["Attributes"]
    sqs.advance(10)
    second = sqs.receive_one(url, MessageSystemAttributeNames=["All"])["Attributes"]
    assert int(first["ApproximateFirstReceiveTimestamp"]) - int(first["SentTimestamp"]) == 5000
    assert second["ApproximateFirstReceiveTimestamp"] == first["ApproximateFirstReceiveTimestamp"]
    assert second["SentTimestamp"] == first["SentTimestamp"]
    assert (first["ApproximateReceiveCount"], second["ApproximateReceiveCount"]) == ("1", "2")


# --- Message attribute selection ---------------------------------------------------------

ATTRIBUTES = {
    "foo.a": {"DataType": "String", "StringValue": "1"},
    "foo.b": {"DataType": "Number", "StringValue": "2"},
    "food": {"DataType": "String", "StringValue": "3"},
    "bar": {"DataType": "Binary", "BinaryValue": b"4"},
}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["All"], {"foo.a", "foo.b", "food", "bar"}),
        ([".*"], {"foo.a", "foo.b", "food", "bar"}),
        (["*"], {"foo.a", "foo.b", "food", "bar"}),
        # a name ending in ".*" is a prefix without the dot, as in SQS
        (["foo.*"], {"foo.a", "foo.b", "food"}),
        (["bar"], {"bar"}),
        (["bar", "foo.b"], {"bar", "foo.b"}),
        (["missing"], set()),
    ],
)
def test_message_attribute_names_select_attributes(sqs, names, expected):
    if names == ["*"]:
        sqs.xfail_on("moto", "moto does not read * as every attribute")
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=ATTRIBUTES)
    message = sqs.receive_one(url, MessageAttributeNames=names)
    returned = message.get("MessageAttributes", {})
    assert returned == {name: ATTRIBUTES[name] for name in expected}


def test_message_attributes_are_left_out_unless_asked(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=ATTRIBUTES)
    assert "MessageAttributes" not in sqs.receive_one(url)


# --- Long polling -------------------------------------------------------------------------
# On a fake clock a long poll returns at once; the timeouts keep a poll that never
# gives up from stalling the suite for the default five minutes.


@pytest.mark.timeout(20)
def test_long_poll_returns_when_a_message_is_sent(sqs_realtime):
    sqs = sqs_realtime
    url = sqs.queue()
    results: list[list] = []
    started = threading.Event()

    def poll():
        started.set()
        results.append(sqs.receive(url, WaitTimeSeconds=10))

    poller = threading.Thread(target=poll)
    begin = time.monotonic()
    poller.start()
    started.wait(5)
    time.sleep(0.3)  # let the poll begin waiting: its waiting is what is under test
    sqs.client.send_message(QueueUrl=url, MessageBody="wake up")
    poller.join(10)
    elapsed = time.monotonic() - begin
    assert not poller.is_alive()
    assert [m["Body"] for m in results[0]] == ["wake up"]
    assert elapsed < 5


@pytest.mark.timeout(20)
def test_long_poll_returns_a_message_whose_delay_ends_while_waiting(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="soon", DelaySeconds=1)
    begin = sqs.now()
    messages = sqs.receive(url, WaitTimeSeconds=5)
    assert [m["Body"] for m in messages] == ["soon"]
    assert sqs.now() - begin < 5


@pytest.mark.timeout(20)
def test_long_poll_on_an_empty_queue_waits_the_whole_time(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue()
    begin = sqs.now()
    assert sqs.receive(url, WaitTimeSeconds=20) == []
    assert sqs.now() - begin == pytest.approx(20, abs=0.5)


@pytest.mark.timeout(20)
def test_queue_wait_time_applies_when_the_call_sets_none(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(ReceiveMessageWaitTimeSeconds=7)
    begin = sqs.now()
    assert sqs.receive(url) == []
    assert sqs.now() - begin == pytest.approx(7, abs=0.5)
    begin = sqs.now()
    assert sqs.receive(url, WaitTimeSeconds=0) == []
    assert sqs.now() - begin == pytest.approx(0, abs=0.5)


# --- Visibility -------------------------------------------------------------------------------


def test_received_message_is_invisible_until_its_timeout(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="once")
    first = sqs.receive_one(url, VisibilityTimeout=1, MessageSystemAttributeNames=["All"])
    assert sqs.receive(url) == []
    sqs.advance(1.1)
    second = sqs.receive_one(url, MessageSystemAttributeNames=["All"])
    assert second["MessageId"] == first["MessageId"]
    assert second["Body"] == "once"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"


def test_queue_visibility_timeout_applies_when_the_call_sets_none(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(VisibilityTimeout=100)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    sqs.receive_one(url)
    sqs.advance(99)
    assert sqs.receive(url) == []
    sqs.advance(1)
    assert len(sqs.receive(url)) == 1


def test_receive_visibility_timeout_zero_leaves_the_message_visible(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    first = sqs.receive_one(url, VisibilityTimeout=0)
    second = sqs.receive_one(url, VisibilityTimeout=0)
    assert first["MessageId"] == second["MessageId"]


def test_one_receive_never_returns_a_message_twice(sqs):
    url = sqs.queue()
    for i in range(5):
        sqs.client.send_message(QueueUrl=url, MessageBody=str(i))
    seen: list[str] = []
    for _ in range(10):
        seen.extend(m["MessageId"] for m in sqs.receive(url))
    assert len(seen) == len(set(seen)) == 5
