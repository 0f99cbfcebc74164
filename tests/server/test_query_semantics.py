"""SQS's delivery rules and validation corners over the Query protocol.

The contract suite runs them over the JSON protocol (boto3) and in process; here
a botocore client on the Query protocol (form-encoded requests, XML answers)
checks that ``trainmq serve`` answers the same way, error wording included.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import ServerProcess, http
from .query_model import query_client

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
_names = itertools.count()


@pytest.fixture
def client(server: ServerProcess, tmp_path: Path) -> Any:
    return query_client(server.url, tmp_path / "models")


def _queue(client: Any, fifo: bool = False, **attributes: str) -> str:
    name = f"qsem-{next(_names)}-{time.monotonic_ns()}"
    if fifo:
        name += ".fifo"
        attributes = {"FifoQueue": "true", **attributes}
    url: str = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def _error(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def _bodies(client: Any, url: str, **params: Any) -> list[str]:
    response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **params)
    return [m["Body"] for m in response.get("Messages", [])]


def _send(client: Any, url: str, body: str, group: str) -> None:
    client.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body
    )


def test_fifo_receive_fills_from_one_group_and_returning_groups_wait(client: Any) -> None:
    url = _queue(client, fifo=True)
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g1-m2", "g1"), ("g3-m1", "g3")):
        _send(client, url, body, group)
    assert _bodies(client, url, VisibilityTimeout=0) == ["g1-m1", "g1-m2", "g2-m1", "g3-m1"]
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)
    assert [m["Body"] for m in first["Messages"]] == ["g1-m1", "g1-m2"]
    time.sleep(0.01)  # g1-m1 comes back a millisecond after the other groups did
    handle = first["Messages"][0]["ReceiptHandle"]
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    # g1-m1 is back behind the groups that came back earlier; g1-m2, later in its group
    # and still in flight, does not hold it back
    assert _bodies(client, url, VisibilityTimeout=30) == ["g2-m1", "g3-m1", "g1-m1"]


def test_fifo_expired_handle_and_purged_deduplication(client: Any) -> None:
    url = _queue(client, fifo=True)
    _send(client, url, "once", "g")
    handle = client.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0][
        "ReceiptHandle"
    ]
    code, message = _error(client.delete_message, QueueUrl=url, ReceiptHandle=handle)
    assert code == "InvalidParameterValue"
    assert message.endswith("Reason: The receipt handle has expired.")
    client.purge_queue(QueueUrl=url)
    _send(client, url, "once", "g")
    assert _bodies(client, url) == ["once"]


def test_standard_queue_oldest_sent_first(client: Any) -> None:
    url = _queue(client)
    client.send_message(QueueUrl=url, MessageBody="old")
    handle = client.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0][
        "ReceiptHandle"
    ]
    client.send_message(QueueUrl=url, MessageBody="new")
    time.sleep(0.01)  # the release below must come a millisecond after "new" was sent
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert _bodies(client, url) == ["old", "new"]


def test_fifo_batch_without_group_fails_whole(client: Any) -> None:
    url = _queue(client, fifo=True, ContentBasedDeduplication="true")
    entries = [
        {"Id": "ok", "MessageBody": "a", "MessageGroupId": "g"},
        {"Id": "bad", "MessageBody": "b"},
    ]
    assert _error(client.send_message_batch, QueueUrl=url, Entries=entries) == (
        "InvalidParameterValue",
        "The request must contain the parameter MessageGroupId.",
    )
    assert _bodies(client, url) == []


def test_queue_type_attributes(client: Any) -> None:
    assert _error(
        client.create_queue, QueueName="qsem-plain", Attributes={"FifoQueue": "false"}
    ) == ("InvalidAttributeName", "Unknown Attribute FifoQueue.")
    url = _queue(client, fifo=True)
    client.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "true"})
    assert _error(client.set_queue_attributes, QueueUrl=url, Attributes={"FifoQueue": "false"}) == (
        "InvalidAttributeValue",
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
    )


def test_empty_kms_key_removes_both_attributes(client: Any) -> None:
    url = _queue(client, KmsMasterKeyId="alias/aws/sqs")
    client.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": ""})
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "KmsMasterKeyId" not in attributes
    assert "KmsDataKeyReusePeriodSeconds" not in attributes


def test_message_attributes_names_values_and_wildcards(client: Any) -> None:
    url = _queue(client)
    names = ("attr.1øßä", "Hello", "Help.Me", "World")
    attributes = {name: {"DataType": "String", "StringValue": "v"} for name in names}
    client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attributes)
    message = client.receive_message(
        QueueUrl=url, MessageAttributeNames=["Hel.*"], VisibilityTimeout=0
    )["Messages"][0]
    assert set(message["MessageAttributes"]) == {"Hello", "Help.Me"}
    message = client.receive_message(QueueUrl=url, MessageAttributeNames=["*"])["Messages"][0]
    assert set(message["MessageAttributes"]) == set(names)
    empty = {"ErrorDetails": {"DataType": "String", "StringValue": ""}}
    assert _error(client.send_message, QueueUrl=url, MessageBody="x", MessageAttributes=empty) == (
        "InvalidParameterValue",
        "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'.",
    )


def test_permissions_look_like_aws(client: Any) -> None:
    url = _queue(client)
    code, message = _error(
        client.add_permission,
        QueueUrl=url,
        Label="grant",
        AWSAccountIds=["111122223333"],
        Actions=["RemovePermission"],
    )
    assert (code, message) == (
        "InvalidParameterValue",
        "Value SQS:RemovePermission for parameter ActionName is invalid. Reason: Only the queue "
        "owner is allowed to invoke this action.",
    )
    client.add_permission(
        QueueUrl=url, Label="one", AWSAccountIds=["111122223333"], Actions=["SendMessage"]
    )
    policy = json.loads(
        client.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert policy["Version"] == "2008-10-17"
    assert policy["Statement"][0]["Action"] == "SQS:SendMessage"
    assert _error(client.remove_permission, QueueUrl=url, Label="nobody") == (
        "InvalidParameterValue",
        "Value nobody for parameter Label is invalid. Reason: can't find label.",
    )


def test_trace_header_on_a_query_send(server: ServerProcess, client: Any) -> None:
    url = _queue(client)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    body = urllib.parse.urlencode(
        {"Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": url, "MessageBody": "t"}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Amzn-Trace-Id": trace}
    answer = http(server.url + "/", body, headers)
    assert answer.status == 200, answer
    assert ET.fromstring(answer.body).find("sqs:SendMessageResult/sqs:MessageId", NS) is not None
    message = client.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"])
    assert message["Messages"][0]["Attributes"] == {"AWSTraceHeader": trace}


def test_latest_handle_changes_visibility_after_it_ended(client: Any) -> None:
    url = _queue(client)
    client.send_message(QueueUrl=url, MessageBody="x")
    handle = client.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0][
        "ReceiptHandle"
    ]
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=60)
    assert _bodies(client, url) == []
