"""boto3 (the JSON 1.0 protocol) against a real ``trainmq serve``."""

from __future__ import annotations

import hashlib

import pytest
from botocore.exceptions import ClientError

from .conftest import ServerProcess


def test_queue_and_message_lifecycle(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="json-lifecycle", Attributes={"VisibilityTimeout": "45"})[
        "QueueUrl"
    ]
    assert url.endswith("/json-lifecycle")
    assert client.get_queue_url(QueueName="json-lifecycle")["QueueUrl"] == url
    assert url in client.list_queues(QueueNamePrefix="json-life")["QueueUrls"]

    sent = client.send_message(QueueUrl=url, MessageBody='{"step": 1}')
    assert sent["MD5OfMessageBody"] == hashlib.md5(b'{"step": 1}').hexdigest()

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    assert attributes["ApproximateNumberOfMessages"] == "1"
    assert attributes["QueueArn"].endswith(":json-lifecycle")

    received = client.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert [m["MessageId"] for m in received] == [sent["MessageId"]]
    assert received[0]["Body"] == '{"step": 1}'
    assert received[0]["Attributes"]["ApproximateReceiveCount"] == "1"

    client.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    counts = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }

    client.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3"})
    delay = client.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])
    assert delay["Attributes"] == {"DelaySeconds": "3"}
    client.delete_queue(QueueUrl=url)
    assert url not in client.list_queues(QueueNamePrefix="json-life").get("QueueUrls", [])


def test_message_attributes_round_trip_binary_string_and_number(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="json-attributes")["QueueUrl"]
    payload = bytes(range(256))
    attributes = {
        "blob": {"DataType": "Binary", "BinaryValue": payload},
        "label": {"DataType": "String", "StringValue": "tokenize ✓"},
        "shard": {"DataType": "Number", "StringValue": "17"},
        "image": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG\r\n\x1a\n"},
    }
    sent = client.send_message(
        QueueUrl=url, MessageBody="with attributes", MessageAttributes=attributes
    )
    # boto3 itself checks both MD5s of every send and receive; these checks see them present.
    assert sent["MD5OfMessageAttributes"]

    message = client.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]

    only_label = client.send_message(
        QueueUrl=url, MessageBody="second", MessageAttributes={"label": attributes["label"]}
    )
    second = client.receive_message(QueueUrl=url, MessageAttributeNames=["label"])["Messages"][0]
    assert second["MessageId"] == only_label["MessageId"]
    assert second["MessageAttributes"] == {"label": attributes["label"]}


def test_batches_report_success_and_failure_per_entry(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="json-batches")["QueueUrl"]
    result = client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "first"},
            {"Id": "b", "MessageBody": "second", "DelaySeconds": 0},
            {"Id": "c", "MessageBody": "late", "DelaySeconds": 901},
        ],
    )
    assert sorted(entry["Id"] for entry in result["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["SenderFault"]) for f in result["Failed"]] == [("c", True)]

    messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in messages) == ["first", "second"]
    deleted = client.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ],
    )
    assert len(deleted["Successful"]) == 2
    assert deleted.get("Failed", []) == []


def test_modelled_exception_class_and_query_compatible_code(server: ServerProcess) -> None:
    client = server.client()
    with pytest.raises(client.exceptions.QueueDoesNotExist) as caught:
        client.get_queue_url(QueueName="json-no-such-queue")
    error = caught.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["Message"] == "The specified queue does not exist."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    url = client.create_queue(QueueName="json-errors")["QueueUrl"]
    with pytest.raises(client.exceptions.QueueNameExists) as exists:
        client.create_queue(QueueName="json-errors", Attributes={"DelaySeconds": "5"})
    assert exists.value.response["Error"]["Code"] == "QueueAlreadyExists"

    with pytest.raises(client.exceptions.EmptyBatchRequest) as empty:
        client.send_message_batch(QueueUrl=url, Entries=[])
    assert empty.value.response["Error"]["Code"] == "AWS.SimpleQueueService.EmptyBatchRequest"

    with pytest.raises(ClientError) as invalid:
        client.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert invalid.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_visibility_change_and_receipt_handle_errors(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="json-visibility")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="held")
    handle = client.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"][0][
        "ReceiptHandle"
    ]
    assert client.receive_message(QueueUrl=url).get("Messages", []) == []
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    again = client.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in again] == ["held"]

    with pytest.raises(ClientError) as bad_handle:
        client.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")
    assert bad_handle.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
