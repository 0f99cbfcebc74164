"""The Query protocol: form-encoded requests, XML answers.

Two clients: raw HTTP requests built by hand (what any HTTP library or an old
SDK sends), and botocore itself driven by the Query-protocol SQS model.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerProcess, http
from .query_model import query_client

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def query(server: ServerProcess, params: Mapping[str, str], path: str = "/") -> tuple[int, Any]:
    body = urllib.parse.urlencode({"Version": "2012-11-05", **params}).encode()
    answer = http(server.url + path, body, FORM)
    assert answer.headers["content-type"].startswith("text/xml"), answer
    return answer.status, ET.fromstring(answer.body)


def text(element: Any, path: str) -> str:
    found = element.find(path, NS)
    assert found is not None, f"{path} missing in {ET.tostring(element).decode()}"
    return str(found.text or "")


def attributes_md5(attributes: Mapping[str, tuple[str, str | bytes]]) -> str:
    """AWS's MD5 of message attributes (name, type, transport byte, value; sorted by name)."""
    digest = hashlib.md5()
    for name in sorted(attributes):
        data_type, value = attributes[name]
        raw = value if isinstance(value, bytes) else value.encode()
        for part in (name.encode(), data_type.encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        digest.update(b"\x02" if isinstance(value, bytes) else b"\x01")
        digest.update(struct.pack(">I", len(raw)) + raw)
    return digest.hexdigest()


def create(server: ServerProcess, name: str, **attributes: str) -> str:
    params = {"Action": "CreateQueue", "QueueName": name}
    for i, (key, value) in enumerate(attributes.items(), start=1):
        params[f"Attribute.{i}.Name"], params[f"Attribute.{i}.Value"] = key, value
    status, root = query(server, params)
    assert status == 200
    return text(root, "sqs:CreateQueueResult/sqs:QueueUrl")


def test_send_with_message_attributes_then_receive_all(server: ServerProcess) -> None:
    url = create(server, "query-send", VisibilityTimeout="40")
    blob = bytes([0, 1, 2, 254, 255])
    status, sent = query(
        server,
        {
            "Action": "SendMessage",
            "QueueUrl": url,
            "MessageBody": "héllo <xml> & more",
            "MessageAttribute.1.Name": "color",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "blue",
            "MessageAttribute.2.Name": "blob",
            "MessageAttribute.2.Value.DataType": "Binary",
            "MessageAttribute.2.Value.BinaryValue": base64.b64encode(blob).decode(),
        },
    )
    assert status == 200
    assert sent.tag == f"{{{NS['sqs']}}}SendMessageResponse"
    result = sent.find("sqs:SendMessageResult", NS)
    assert (
        text(result, "sqs:MD5OfMessageBody")
        == hashlib.md5("héllo <xml> & more".encode()).hexdigest()
    )
    expected_md5 = attributes_md5({"color": ("String", "blue"), "blob": ("Binary", blob)})
    assert text(result, "sqs:MD5OfMessageAttributes") == expected_md5
    message_id = text(result, "sqs:MessageId")
    assert text(sent, "sqs:ResponseMetadata/sqs:RequestId")

    status, received = query(
        server,
        {
            "Action": "ReceiveMessage",
            "QueueUrl": url,
            "AttributeName.1": "All",
            "MessageAttributeName.1": "All",
        },
    )
    assert status == 200
    messages = received.findall("sqs:ReceiveMessageResult/sqs:Message", NS)
    assert len(messages) == 1
    message = messages[0]
    assert text(message, "sqs:MessageId") == message_id
    assert text(message, "sqs:Body") == "héllo <xml> & more"
    assert text(message, "sqs:MD5OfMessageAttributes") == expected_md5
    system = {
        text(a, "sqs:Name"): text(a, "sqs:Value") for a in message.findall("sqs:Attribute", NS)
    }
    assert system["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= system.keys()
    custom = {
        text(a, "sqs:Name"): a.find("sqs:Value", NS)
        for a in message.findall("sqs:MessageAttribute", NS)
    }
    assert text(custom["color"], "sqs:StringValue") == "blue"
    assert text(custom["color"], "sqs:DataType") == "String"
    assert base64.b64decode(text(custom["blob"], "sqs:BinaryValue")) == blob

    status, _ = query(
        server,
        {
            "Action": "DeleteMessage",
            "QueueUrl": url,
            "ReceiptHandle": text(message, "sqs:ReceiptHandle"),
        },
    )
    assert status == 200
    assert queue_attribute(server, url, "ApproximateNumberOfMessagesNotVisible") == "0"


def queue_attribute(server: ServerProcess, url: str, name: str) -> str:
    status, root = query(
        server, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": name}
    )
    assert status == 200
    found = root.findall("sqs:GetQueueAttributesResult/sqs:Attribute", NS)
    values = {text(a, "sqs:Name"): text(a, "sqs:Value") for a in found}
    assert list(values) == [name]
    return values[name]


def test_send_message_batch_entries_and_attributes(server: ServerProcess) -> None:
    url = create(server, "query-batch")
    params = {"Action": "SendMessageBatch", "QueueUrl": url}
    for i, body in enumerate(["one", "two", "three"], start=1):
        params[f"SendMessageBatchRequestEntry.{i}.Id"] = f"e{i}"
        params[f"SendMessageBatchRequestEntry.{i}.MessageBody"] = body
    params["SendMessageBatchRequestEntry.2.MessageAttribute.1.Name"] = "n"
    params["SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType"] = "Number"
    params["SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue"] = "42"
    params["SendMessageBatchRequestEntry.3.DelaySeconds"] = "901"
    status, root = query(server, params)
    assert status == 200
    result = root.find("sqs:SendMessageBatchResult", NS)
    ok = {text(e, "sqs:Id"): e for e in result.findall("sqs:SendMessageBatchResultEntry", NS)}
    assert sorted(ok) == ["e1", "e2"]
    assert text(ok["e1"], "sqs:MD5OfMessageBody") == hashlib.md5(b"one").hexdigest()
    assert text(ok["e2"], "sqs:MD5OfMessageAttributes") == attributes_md5({"n": ("Number", "42")})
    failed = result.findall("sqs:BatchResultErrorEntry", NS)
    assert [text(f, "sqs:Id") for f in failed] == ["e3"]
    assert text(failed[0], "sqs:SenderFault") == "true"
    assert text(failed[0], "sqs:Code") == "InvalidParameterValue"

    assert queue_attribute(server, url, "ApproximateNumberOfMessages") == "2"


def test_errors_are_xml_error_responses(server: ServerProcess) -> None:
    status, root = query(server, {"Action": "GetQueueUrl", "QueueName": "query-missing"})
    assert status == 400
    assert root.tag == f"{{{NS['sqs']}}}ErrorResponse"
    assert text(root, "sqs:Error/sqs:Code") == "AWS.SimpleQueueService.NonExistentQueue"
    assert text(root, "sqs:Error/sqs:Type") == "Sender"
    # The Query protocol keeps its historical wording (the JSON protocol drops the suffix).
    assert text(root, "sqs:Error/sqs:Message") == (
        "The specified queue does not exist for this wsdl version."
    )
    assert text(root, "sqs:RequestId")

    status, root = query(server, {"Action": "NoSuchAction"})
    assert status == 400
    assert text(root, "sqs:Error/sqs:Code") == "InvalidAction"

    url = create(server, "query-errors")
    status, root = query(
        server, {"Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "abc"}
    )
    assert status == 400
    assert text(root, "sqs:Error/sqs:Code") == "InvalidParameterValue"


def test_queue_addressed_by_path_and_get_requests(server: ServerProcess) -> None:
    url = create(server, "query-by-path")
    path = urllib.parse.urlsplit(url).path
    status, root = query(server, {"Action": "SendMessage", "MessageBody": "by path"}, path=path)
    assert status == 200
    assert text(root, "sqs:SendMessageResult/sqs:MessageId")

    answer = http(
        server.url
        + "/?"
        + urllib.parse.urlencode({"Action": "ListQueues", "QueueNamePrefix": "query-by"}),
        method="GET",
    )
    assert answer.status == 200
    urls = [
        e.text for e in ET.fromstring(answer.body).findall("sqs:ListQueuesResult/sqs:QueueUrl", NS)
    ]
    assert urls == [url]
    assert queue_attribute(server, url, "ApproximateNumberOfMessages") == "1"


@pytest.fixture
def botocore_query(server: ServerProcess, tmp_path: Path) -> tuple[Any, list[Any]]:
    """A botocore client on the Query protocol, and the request bodies it sent."""
    client = query_client(server.url, tmp_path / "models")
    sent: list[Any] = []
    client.meta.events.register(
        "before-send.sqs.*", lambda request, **_: sent.append(_as_bytes(request.body))
    )
    return client, sent


def _as_bytes(body: bytes | str | None) -> bytes:
    return body.encode() if isinstance(body, str) else body or b""


def test_botocore_forced_to_the_query_protocol(botocore_query: tuple[Any, list[Any]]) -> None:
    client, sent = botocore_query
    url = client.create_queue(
        QueueName="botocore-query", Attributes={"DelaySeconds": "0"}, tags={"team": "data"}
    )["QueueUrl"]
    assert sent[-1].startswith(b"Action=CreateQueue&")

    attributes = {
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff\x10"},
        "label": {"DataType": "String", "StringValue": "naïve"},
    }
    result = client.send_message(QueueUrl=url, MessageBody="q1", MessageAttributes=attributes)
    assert b"MessageAttribute.1.Name=" in sent[-1]
    assert result["MD5OfMessageAttributes"] == attributes_md5(
        {"blob": ("Binary", b"\x00\xff\x10"), "label": ("String", "naïve")}
    )
    batch = client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "q2"}, {"Id": "b", "MessageBody": "q3"}]
    )
    assert b"SendMessageBatchRequestEntry.2.Id=b" in sent[-1]
    assert sorted(e["Id"] for e in batch["Successful"]) == ["a", "b"]

    counts = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "3"
    assert client.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "data"}
    assert url in client.list_queues(QueueNamePrefix="botocore-q")["QueueUrls"]

    messages = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )
    by_body = {m["Body"]: m for m in messages["Messages"]}
    assert sorted(by_body) == ["q1", "q2", "q3"]
    assert by_body["q1"]["MessageAttributes"] == attributes
    assert by_body["q1"]["Attributes"]["ApproximateReceiveCount"] == "1"
    deleted = client.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(by_body.values())
        ],
    )
    assert len(deleted["Successful"]) == 3

    with pytest.raises(client.exceptions.QueueDoesNotExist) as caught:
        client.get_queue_url(QueueName="botocore-query-missing")
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
