"""SendMessage: digests, message attributes, body rules, size limits and delays."""

from __future__ import annotations

import hashlib
import struct

import pytest


def md5_of_attributes(attributes: dict) -> str:
    """AWS's digest of message attributes, computed from the documented algorithm.

    Names sorted; for each, the length-prefixed (4-byte big-endian) UTF-8 name,
    the length-prefixed data type, one transport byte (1 string, 2 binary) and
    the length-prefixed value.
    """

    def prefixed(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    digest = hashlib.md5()
    for name in sorted(attributes):
        value = attributes[name]
        digest.update(prefixed(name.encode()))
        digest.update(prefixed(value["DataType"].encode()))
        if "BinaryValue" in value:
            digest.update(b"\x02" + prefixed(value["BinaryValue"]))
        else:
            digest.update(b"\x01" + prefixed(value["StringValue"].encode()))
    return digest.hexdigest()


def test_md5_of_attributes_matches_the_value_aws_documents():
    attributes = {"Foo": {"DataType": "String", "StringValue": "Bar"}}
    assert md5_of_attributes(attributes) == "ae7155c6026991b6d54b11589678bf9c"


# --- Digests and identity --------------------------------------------------------


@pytest.mark.parametrize("body", ["hello", "ünïcödé ✓ 𝄞", '{"json": [1, 2]}', "\t\n\r tabs"])
def test_send_message_returns_the_md5_of_the_body(sqs, body):
    response = sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody=body)
    assert response["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert response["MessageId"]
    assert "MD5OfMessageAttributes" not in response


def test_message_ids_are_unique(sqs):
    url = sqs.queue()
    ids = {sqs.client.send_message(QueueUrl=url, MessageBody="same")["MessageId"] for _ in range(5)}
    assert len(ids) == 5


def test_received_message_carries_body_id_and_md5(sqs):
    url = sqs.queue()
    sent = sqs.client.send_message(QueueUrl=url, MessageBody="payload")
    message = sqs.receive_one(url)
    assert message["Body"] == "payload"
    assert message["MessageId"] == sent["MessageId"]
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["ReceiptHandle"]


# --- Message attributes -------------------------------------------------------------

ALL_TYPES = {
    "text": {"DataType": "String", "StringValue": "Bar"},
    "count": {"DataType": "Number", "StringValue": "-12.5e3"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "label": {"DataType": "String.custom", "StringValue": "tagged"},
    "size": {"DataType": "Number.int", "StringValue": "42"},
    "raw": {"DataType": "Binary.gz", "BinaryValue": b"gzip?"},
}


def test_send_message_attribute_digest_follows_the_aws_algorithm(sqs):
    url = sqs.queue()
    response = sqs.client.send_message(
        QueueUrl=url, MessageBody="x", MessageAttributes={"Foo": ALL_TYPES["text"]}
    )
    assert response["MD5OfMessageAttributes"] == "ae7155c6026991b6d54b11589678bf9c"


def test_message_attributes_of_every_type_round_trip(sqs):
    url = sqs.queue()
    response = sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=ALL_TYPES)
    assert response["MD5OfMessageAttributes"] == md5_of_attributes(ALL_TYPES)
    message = sqs.receive_one(url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == ALL_TYPES
    assert message["MD5OfMessageAttributes"] == md5_of_attributes(ALL_TYPES)


def test_ten_message_attributes_are_allowed(sqs):
    attributes = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    response = sqs.client.send_message(
        QueueUrl=sqs.queue(), MessageBody="x", MessageAttributes=attributes
    )
    assert response["MD5OfMessageAttributes"] == md5_of_attributes(attributes)


def test_more_than_ten_message_attributes_are_rejected(sqs):
    sqs.xfail_on("moto", "moto accepts more than ten message attributes")
    attributes = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(11)}
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody="x", MessageAttributes=attributes)


@pytest.mark.parametrize(
    "name",
    [
        "AWS.thing",
        "aws.thing",
        "Amazon.thing",
        "amazon.Thing",
        ".lead",
        "trail.",
        "dou..ble",
        "sp ace",
        "star*",
        "x" * 257,
    ],
)
def test_invalid_message_attribute_names_are_rejected(sqs, name):
    if name not in {"sp ace", "star*"}:
        sqs.xfail_on("moto", "moto checks attribute names only for their characters")
    attributes = {name: {"DataType": "String", "StringValue": "v"}}
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody="x", MessageAttributes=attributes)


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 256, "0-9"])
def test_valid_message_attribute_names_are_accepted(sqs, name):
    attributes = {name: {"DataType": "String", "StringValue": "v"}}
    response = sqs.client.send_message(
        QueueUrl=sqs.queue(), MessageBody="x", MessageAttributes=attributes
    )
    assert response["MD5OfMessageAttributes"] == md5_of_attributes(attributes)


@pytest.mark.parametrize(
    "value",
    [
        {"DataType": "Text", "StringValue": "v"},
        {"DataType": "", "StringValue": "v"},
        {"DataType": "String", "StringValue": ""},
        {"DataType": "Number", "StringValue": "twelve"},
        {"DataType": "Binary", "BinaryValue": b""},
        {"DataType": "String"},
        {"DataType": "String", "StringValue": "bad \x00 char"},
    ],
    ids=[
        "unknown-type",
        "empty-type",
        "empty-string",
        "not-a-number",
        "empty-binary",
        "no-value",
        "bad-character",
    ],
)
def test_invalid_message_attribute_values_are_rejected(sqs, value):
    if value["DataType"] not in {"Text", ""}:
        sqs.xfail_on("moto", "moto checks only the attribute's data type")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(
            QueueUrl=sqs.queue(), MessageBody="x", MessageAttributes={"attr": value}
        )


def test_aws_trace_header_system_attribute(sqs):
    url = sqs.queue()
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageSystemAttributes=system)
    message = sqs.receive_one(url, MessageSystemAttributeNames=["AWSTraceHeader"])
    assert message["Attributes"] == {"AWSTraceHeader": trace}


def test_send_message_returns_the_md5_of_system_attributes(sqs):
    sqs.xfail_on("moto", "moto leaves out MD5OfMessageSystemAttributes")
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}}
    response = sqs.client.send_message(
        QueueUrl=sqs.queue(), MessageBody="x", MessageSystemAttributes=system
    )
    assert response["MD5OfMessageSystemAttributes"] == md5_of_attributes(system)


def test_unknown_message_system_attributes_are_rejected(sqs):
    sqs.xfail_on("moto", "moto accepts any message system attribute")
    system = {"SenderId": {"DataType": "String", "StringValue": "me"}}
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(
            QueueUrl=sqs.queue(), MessageBody="x", MessageSystemAttributes=system
        )


# --- Body rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["\x00", "a\x08b", "\x1f", "\ufffe", "\uffff"], ids=["nul", "bs", "us", "fffe", "ffff"]
)
def test_bodies_with_characters_outside_the_allowed_set_are_rejected(sqs, body):
    sqs.xfail_on("moto", "moto does not check the body's characters")
    with sqs.raises("InvalidMessageContents"):
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody=body)


@pytest.mark.parametrize(
    "body",
    ["\t\n\r", " ~", "\ud7ff\ue000\ufffd", "\U00010000\U0010ffff"],
    ids=["whitespace", "ascii", "bmp-edges", "astral"],
)
def test_bodies_at_the_edges_of_the_allowed_set_round_trip(sqs, body):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody=body)
    assert sqs.receive_one(url)["Body"] == body


def test_empty_body_is_rejected(sqs):
    sqs.xfail_on("moto", "moto accepts an empty body")
    with sqs.raises("MissingParameter"):
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody="")


def test_body_may_be_as_large_as_the_queue_maximum(sqs):
    url = sqs.queue(MaximumMessageSize=1024)
    sqs.client.send_message(QueueUrl=url, MessageBody="x" * 1024)
    assert len(sqs.receive_one(url)["Body"]) == 1024


def test_body_larger_than_the_queue_maximum_is_rejected(sqs):
    url = sqs.queue(MaximumMessageSize=1024)
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=url, MessageBody="x" * 1025)


def test_size_counts_utf8_bytes_not_characters(sqs):
    sqs.xfail_on("moto", "moto measures the body in characters")
    url = sqs.queue(MaximumMessageSize=1024)
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=url, MessageBody="é" * 513)


def test_size_counts_message_attributes(sqs):
    sqs.xfail_on("moto", "moto leaves message attributes out of the size")
    url = sqs.queue(MaximumMessageSize=1024)
    attributes = {"padding": {"DataType": "String", "StringValue": "p" * 100}}
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=url, MessageBody="x" * 1000, MessageAttributes=attributes)


def test_default_maximum_allows_one_mebibyte(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="m" * 1048576)
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=url, MessageBody="m" * 1048577)


# --- Delays ---------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [-1, 901])
def test_per_message_delay_must_be_0_to_900(sqs, delay):
    if delay < 0:
        sqs.xfail_on("moto", "moto accepts a negative DelaySeconds")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody="x", DelaySeconds=delay)


def test_per_message_delay_hides_the_message_until_it_ends(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    sqs.client.send_message(QueueUrl=url, MessageBody="now")
    assert [m["Body"] for m in sqs.receive(url)] == ["now"]
    sqs.advance(1.1)
    assert [m["Body"] for m in sqs.receive(url)] == ["later"]


def test_queue_delay_applies_when_the_message_sets_none(sqs):
    url = sqs.queue(DelaySeconds=60)
    sqs.client.send_message(QueueUrl=url, MessageBody="queued")
    assert sqs.receive(url) == []
    assert sqs.count(url, "ApproximateNumberOfMessagesDelayed") == 1
    assert sqs.count(url) == 0


def test_per_message_delay_overrides_the_queue_delay(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(DelaySeconds=900, VisibilityTimeout=43200)
    sqs.client.send_message(QueueUrl=url, MessageBody="no wait", DelaySeconds=0)
    sqs.client.send_message(QueueUrl=url, MessageBody="short", DelaySeconds=10)
    sqs.client.send_message(QueueUrl=url, MessageBody="default")
    assert [m["Body"] for m in sqs.receive(url)] == ["no wait"]
    sqs.advance(10)
    assert [m["Body"] for m in sqs.receive(url)] == ["short"]
    sqs.advance(889)
    assert sqs.receive(url) == []
    sqs.advance(1)
    assert [m["Body"] for m in sqs.receive(url)] == ["default"]
