"""Bad requests get a 4xx in AWS's error shape, never a 500, and the server keeps serving."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from .conftest import Response, ServerProcess, http

JSON = "application/x-amz-json-1.0"
FORM = "application/x-www-form-urlencoded"
OVER_LIMIT = 3 * 1024 * 1024 + 1024
QUEUE = "bad-input"


def json_request(server: ServerProcess, target: str, body: bytes | Iterator[bytes]) -> Response:
    return http(server.url + "/", body, {"Content-Type": JSON, "X-Amz-Target": target})


def assert_json_error(answer: Response, code: str | None = None) -> str:
    """A 4xx whose body and header carry the error as the JSON protocol does."""
    assert 400 <= answer.status < 500, answer
    error = json.loads(answer.body)
    assert error["__type"].startswith(("com.amazonaws.sqs#", "com.amazon.coral.service#"))
    assert isinstance(error["message"], str)
    query_code, fault = answer.headers["x-amzn-query-error"].split(";")
    assert fault == "Sender"
    if code is not None:
        assert query_code == code
    return query_code


def assert_xml_error(answer: Response, code: str | None = None) -> str:
    assert 400 <= answer.status < 500, answer
    ns = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
    found = ET.fromstring(answer.body).find("sqs:Error/sqs:Code", ns)
    assert found is not None and found.text
    if code is not None:
        assert found.text == code
    return found.text


@pytest.fixture
def queue_url(server: ServerProcess) -> Iterator[str]:
    client = server.client()
    url = client.create_queue(QueueName=QUEUE)["QueueUrl"]
    yield url
    # The server still serves ordinary requests after each bad one.
    client.send_message(QueueUrl=url, MessageBody="still serving")
    message = client.receive_message(QueueUrl=url)["Messages"][0]
    assert message["Body"] == "still serving"
    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert server.healthy()


BAD_JSON = {
    "truncated": ("AmazonSQS.CreateQueue", b'{"QueueName": ', "SerializationException"),
    "not an object": ("AmazonSQS.ListQueues", b"[1, 2, 3]", "SerializationException"),
    "invalid utf-8": (
        "AmazonSQS.CreateQueue",
        b'{"QueueName": "\xff\xfe"}',
        "SerializationException",
    ),
    "max messages text": (
        "AmazonSQS.ReceiveMessage",
        b'{"QueueUrl": "{url}", "MaxNumberOfMessages": "abc"}',
        "InvalidParameterValue",
    ),
    "entries string": (
        "AmazonSQS.SendMessageBatch",
        b'{"QueueUrl": "{url}", "Entries": "abc"}',
        "InvalidParameterValue",
    ),
    "entries of numbers": (
        "AmazonSQS.SendMessageBatch",
        b'{"QueueUrl": "{url}", "Entries": [1, 2]}',
        None,
    ),
    "empty batch": (
        "AmazonSQS.SendMessageBatch",
        b'{"QueueUrl": "{url}", "Entries": []}',
        "AWS.SimpleQueueService.EmptyBatchRequest",
    ),
    "empty delete batch": (
        "AmazonSQS.DeleteMessageBatch",
        b'{"QueueUrl": "{url}", "Entries": []}',
        "AWS.SimpleQueueService.EmptyBatchRequest",
    ),
    "body object": (
        "AmazonSQS.SendMessage",
        b'{"QueueUrl": "{url}", "MessageBody": {"a": 1}}',
        "InvalidParameterValue",
    ),
    "lone surrogate": (
        "AmazonSQS.SendMessage",
        b'{"QueueUrl": "{url}", "MessageBody": "\\udc80"}',
        "InvalidMessageContents",
    ),
    "huge number": (
        "AmazonSQS.SendMessage",
        b'{"QueueUrl": "{url}", "MessageBody": "x", "DelaySeconds": 1e400}',
        "InvalidParameterValue",
    ),
    "queue url number": ("AmazonSQS.GetQueueAttributes", b'{"QueueUrl": 5}', None),
    "attributes list": (
        "AmazonSQS.CreateQueue",
        b'{"QueueName": "x", "Attributes": [1]}',
        "InvalidParameterValue",
    ),
    "unknown action": ("AmazonSQS.Nope", b"{}", "InvalidAction"),
    "foreign service": ("AmazonSNS.Publish", b"{}", "InvalidAction"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_json_requests(server: ServerProcess, queue_url: str, case: str) -> None:
    target, body, code = BAD_JSON[case]
    answer = json_request(server, target, body.replace(b"{url}", queue_url.encode()))
    assert_json_error(answer, code)


BAD_QUERY = {
    "unknown action": (b"Action=Nope", "InvalidAction"),
    "no action": (b"QueueName=x", "InvalidAction"),
    "invalid utf-8": (b"Action=CreateQueue&QueueName=\xff\xfe", "InvalidParameterValue"),
    "max messages text": (
        b"Action=ReceiveMessage&QueueUrl={url}&MaxNumberOfMessages=abc",
        "InvalidParameterValue",
    ),
    "empty batch": (b"Action=SendMessageBatch&QueueUrl={url}", None),
    "binary not base64": (
        b"Action=SendMessage&QueueUrl={url}&MessageBody=x"
        b"&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=Binary"
        b"&MessageAttribute.1.Value.BinaryValue=%%%",
        "InvalidParameterValue",
    ),
}


@pytest.mark.parametrize("case", list(BAD_QUERY))
def test_bad_query_requests(server: ServerProcess, queue_url: str, case: str) -> None:
    body, code = BAD_QUERY[case]
    answer = http(
        server.url + "/", body.replace(b"{url}", queue_url.encode()), {"Content-Type": FORM}
    )
    assert_xml_error(answer, code)


def exchange(server: ServerProcess, head: str, body: bytes = b"") -> Response:
    """Send raw bytes, then read one response (the server may answer before the body ends)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = {}
        while line := reader.readline().strip():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return Response(status, headers, reader.read(int(headers["content-length"])))


def test_oversized_json_body_declared_by_content_length(
    server: ServerProcess, queue_url: str
) -> None:
    head = (
        f"POST / HTTP/1.1\nHost: 127.0.0.1:{server.port}\nContent-Type: {JSON}\n"
        f"X-Amz-Target: AmazonSQS.SendMessage\nContent-Length: {OVER_LIMIT}\n"
    )
    answer = exchange(server, head, b'{"QueueUrl": "' + queue_url.encode())
    assert answer.status == 413
    assert_json_error(answer, "RequestEntityTooLarge")


def test_oversized_chunked_json_body(server: ServerProcess, queue_url: str) -> None:
    head = (
        f"POST / HTTP/1.1\nHost: 127.0.0.1:{server.port}\nContent-Type: {JSON}\n"
        "X-Amz-Target: AmazonSQS.SendMessage\nTransfer-Encoding: chunked\n"
    )
    chunk = b"x" * 65536
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(OVER_LIMIT // len(chunk) + 1)
    )
    answer = exchange(server, head, body)  # no last chunk: the server must stop reading by itself
    assert answer.status == 413
    assert_json_error(answer, "RequestEntityTooLarge")


def test_oversized_query_body(server: ServerProcess, queue_url: str) -> None:
    head = (
        f"POST / HTTP/1.1\nHost: 127.0.0.1:{server.port}\nContent-Type: {FORM}\n"
        f"Content-Length: {OVER_LIMIT}\n"
    )
    answer = exchange(server, head, b"Action=SendMessage&MessageBody=")
    assert answer.status == 413
    assert_xml_error(answer, "RequestEntityTooLarge")


def test_message_over_one_mebibyte_inside_the_limit(server: ServerProcess, queue_url: str) -> None:
    body = json.dumps({"QueueUrl": queue_url, "MessageBody": "x" * (1024 * 1024 + 1)}).encode()
    answer = json_request(server, "AmazonSQS.SendMessage", body)
    assert_json_error(answer, "InvalidParameterValue")


def test_unknown_paths_and_methods(server: ServerProcess, queue_url: str) -> None:
    # (GET / without a query string is the landing page: tests/server/test_first_contact.py)
    for method, path in [("DELETE", "/"), ("PUT", "/metrics"), ("GET", "/nope")]:
        answer = http(server.url + path, None, {}, method=method)
        assert 400 <= answer.status < 500, (method, path, answer)
