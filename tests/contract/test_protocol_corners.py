"""The corners of SQS's two wire protocols, as AWS answers them.

Each test quotes what AWS returns (responses recorded from AWS by other
projects' suites, AWS's documentation and its service model) and runs on every
backend where the behaviour can be seen: the embedded engine, ``trainmq serve``
over the JSON and Query protocols, trainmq's remote client, and moto.
"""

from __future__ import annotations

import json
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Response, http

from .conftest import Backend
from .wire import WIRE_BACKENDS, Endpoint, endpoint_for, wire_backend

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
JSON = "application/x-amz-json-1.0"
FORM = "application/x-www-form-urlencoded"
#: A credential scope naming SQS: moto's server routes a request by it (trainmq runs open).
ROUTE = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0"
}


@pytest.fixture(params=WIRE_BACKENDS)
def sqs_wire(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return wire_backend(request, tmp_path)


@pytest.fixture(params=["server", "moto"])
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Endpoint:
    return endpoint_for(request, tmp_path)


def _json_call(url: str, action: str, params: dict[str, Any]) -> Response:
    headers = {**ROUTE, "Content-Type": JSON, "X-Amz-Target": f"AmazonSQS.{action}"}
    return http(url + "/", json.dumps(params).encode(), headers)


def _query_call(url: str, params: dict[str, str], method: str = "POST", **headers: str) -> Response:
    form = urllib.parse.urlencode(params)
    if method == "GET":
        return http(f"{url}?{form}", None, {**ROUTE, **headers}, method="GET")
    return http(url, form.encode(), {**ROUTE, "Content-Type": FORM, **headers})


# -- 19: JSON error types are AWS's, so SDKs raise the modelled class ------------------------
def test_a_missing_queue_raises_the_modelled_exception(sqs_wire: Backend) -> None:
    """AWS: ``__type`` com.amazonaws.sqs#QueueDoesNotExist, header
    ``AWS.SimpleQueueService.NonExistentQueue;Sender``: boto3 raises
    ``QueueDoesNotExist`` and shows the Query code as ``Error.Code``."""
    with pytest.raises(sqs_wire.client.exceptions.QueueDoesNotExist) as caught:
        sqs_wire.client.get_queue_url(QueueName="never-created")
    error = caught.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    if not sqs_wire.name.endswith("query"):  # only JSON carries the shape name
        assert error["QueryErrorCode"] == "QueueDoesNotExist"


def test_an_unmodelled_error_names_the_service_framework_type(sqs_wire: Backend) -> None:
    """AWS: an invalid value is ``com.amazon.coral.service#InvalidParameterValueException``
    with header ``InvalidParameterValue;Sender``; a missing FIFO group id is
    ``…#MissingRequiredParameterException`` with ``MissingParameter;Sender``."""
    sqs_wire.xfail_on("moto", "moto answers com.amazonaws.sqs#<query code>")
    url = sqs_wire.queue()
    with sqs_wire.raises("InvalidParameterValue") as invalid:
        sqs_wire.client.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    fifo = sqs_wire.fifo_queue(ContentBasedDeduplication="true")
    with sqs_wire.raises("MissingParameter") as missing:
        sqs_wire.client.send_message(QueueUrl=fifo, MessageBody="x")
    for caught, shape in (
        (invalid, "InvalidParameterValueException"),
        (missing, "MissingRequiredParameterException"),
    ):
        assert caught.exception is not None
        error: dict[str, Any] = caught.exception.response["Error"]  # type: ignore[attr-defined]
        assert error["Type"] == "Sender"
        if not sqs_wire.name.endswith("query"):
            assert error["QueryErrorCode"] == shape


def test_json_error_wire_form(endpoint: Endpoint) -> None:
    endpoint.xfail_on("moto", "moto answers com.amazonaws.sqs#InvalidParameterValue")
    url = _json_call(endpoint.url, "CreateQueue", {"QueueName": "q"}).body
    queue = json.loads(url)["QueueUrl"]
    answer = _json_call(
        endpoint.url, "SendMessage", {"QueueUrl": queue, "MessageBody": "x", "DelaySeconds": 901}
    )
    assert answer.status == 400
    assert json.loads(answer.body)["__type"] == (
        "com.amazon.coral.service#InvalidParameterValueException"
    )
    assert answer.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    missing = _json_call(endpoint.url, "GetQueueUrl", {"QueueName": "absent"})
    assert json.loads(missing.body)["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert missing.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"


# -- 20: every response carries x-amzn-RequestId ----------------------------------------------
def test_every_response_carries_a_request_id(endpoint: Endpoint) -> None:
    """boto3 reads ``ResponseMetadata.RequestId`` from ``x-amzn-RequestId``; the Query
    document's ``RequestId`` is the same id."""
    created = _json_call(endpoint.url, "CreateQueue", {"QueueName": "ids"})
    failed = _json_call(endpoint.url, "GetQueueUrl", {"QueueName": "absent"})
    listed = _query_call(endpoint.url, {"Action": "ListQueues"})
    refused = _query_call(endpoint.url, {"Action": "GetQueueUrl", "QueueName": "absent"})
    ids = []
    for answer in (created, failed, listed, refused):
        request_id = answer.headers.get("x-amzn-requestid", "")
        assert request_id, f"no x-amzn-RequestId on {answer.status} {answer.body!r}"
        ids.append(request_id)
    assert len(set(ids)) == len(ids)
    assert ET.fromstring(listed.body).findtext("sqs:ResponseMetadata/sqs:RequestId", None, NS) == (
        listed.headers["x-amzn-requestid"]
    )
    assert ET.fromstring(refused.body).findtext("sqs:RequestId", None, NS) == (
        refused.headers["x-amzn-requestid"]
    )


def test_boto3_sees_the_request_id(sqs_wire: Backend) -> None:
    if sqs_wire.name in ("sqlite", "remote"):
        pytest.skip("no HTTP response: the embedded engine and the remote client's results")
    first = sqs_wire.client.list_queues()["ResponseMetadata"]["RequestId"]
    second = sqs_wire.client.list_queues()["ResponseMetadata"]["RequestId"]
    assert first and second and first != second


# -- 21: empty lists are left out ---------------------------------------------------------------
def test_empty_lists_are_left_out(sqs_wire: Backend) -> None:
    """AWS: a batch with no failures has no ``Failed``; no messages, no ``Messages``."""
    sqs_wire.xfail_on("moto", "moto's JSON answers carry empty lists")
    assert "QueueUrls" not in sqs_wire.client.list_queues()
    url = sqs_wire.queue()
    sent = sqs_wire.client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "one"}]
    )
    assert [entry["Id"] for entry in sent["Successful"]] == ["a"]
    assert "Failed" not in sent
    message = sqs_wire.receive_one(url)
    deleted = sqs_wire.client.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": "d", "ReceiptHandle": message["ReceiptHandle"]}]
    )
    assert "Failed" not in deleted
    assert "Messages" not in sqs_wire.client.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_json_wire_form_has_no_empty_lists(endpoint: Endpoint) -> None:
    endpoint.xfail_on("moto", "moto answers with empty lists")
    queue = json.loads(_json_call(endpoint.url, "CreateQueue", {"QueueName": "e"}).body)
    entries = [{"Id": "a", "MessageBody": "one"}]
    sent = json.loads(
        _json_call(endpoint.url, "SendMessageBatch", {**queue, "Entries": entries}).body
    )
    assert "Failed" not in sent and len(sent["Successful"]) == 1
    assert json.loads(_json_call(endpoint.url, "ReceiveMessage", {**queue}).body) != {}
    assert json.loads(_json_call(endpoint.url, "ReceiveMessage", {**queue}).body) == {}


# -- 22: carriage returns survive the Query protocol's XML -------------------------------------
def test_carriage_returns_survive(sqs_wire: Backend) -> None:
    """AWS escapes ``\\r`` as ``&#xD;``; an XML parser turns a raw one into ``\\n``."""
    url = sqs_wire.queue()
    body = '"&quot;&quot;\r\nline\rend\r'
    sqs_wire.client.send_message(QueueUrl=url, MessageBody=body)
    assert sqs_wire.receive_one(url)["Body"] == body


# -- 23: an empty list parameter is no filter ---------------------------------------------------
def test_empty_message_attribute_names(sqs_wire: Backend) -> None:
    """botocore sends ``MessageAttributeNames=`` for ``[]``; AWS answers without attributes."""
    url = sqs_wire.queue()
    attributes = {"colour": {"DataType": "String", "StringValue": "red"}}
    sqs_wire.client.send_message(QueueUrl=url, MessageBody="m", MessageAttributes=attributes)
    message = sqs_wire.receive_one(url, MessageAttributeNames=[], AttributeNames=[])
    assert message["Body"] == "m"
    assert "MessageAttributes" not in message


def test_empty_list_on_the_wire(endpoint: Endpoint) -> None:
    queue = json.loads(_json_call(endpoint.url, "CreateQueue", {"QueueName": "w"}).body)
    _json_call(endpoint.url, "SendMessage", {**queue, "MessageBody": "m"})
    answer = _query_call(
        endpoint.url, {"Action": "ReceiveMessage", **queue, "MessageAttributeNames": ""}
    )
    assert answer.status == 200, answer.body
    assert ET.fromstring(answer.body).findtext(".//sqs:Message/sqs:Body", None, NS) == "m"


# -- 24: a Query client that accepts only JSON --------------------------------------------------
def test_query_get_with_accept_json(endpoint: Endpoint) -> None:
    endpoint.xfail_on("moto", "moto answers with its JSON 1.0 protocol form")
    queue = json.loads(_json_call(endpoint.url, "CreateQueue", {"QueueName": "j"}).body)
    answer = _query_call(
        endpoint.url, {"Action": "ListQueues"}, method="GET", Accept="application/json"
    )
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    document = json.loads(answer.body)["ListQueuesResponse"]
    assert queue["QueueUrl"] in json.dumps(document["ListQueuesResult"])
    assert document["ResponseMetadata"]["RequestId"] == answer.headers["x-amzn-requestid"]


# -- 25: the Query protocol's wording for a missing queue ---------------------------------------
def test_missing_queue_wording_per_protocol(sqs_wire: Backend) -> None:
    """AWS over Query: "…does not exist for this wsdl version."; over JSON without the suffix."""
    with sqs_wire.raises("AWS.SimpleQueueService.NonExistentQueue") as caught:
        sqs_wire.client.get_queue_url(QueueName="absent")
    if sqs_wire.name.endswith("query"):
        assert caught.message == "The specified queue does not exist for this wsdl version."
    else:
        assert caught.message == "The specified queue does not exist."


# -- 26: empty results and the queue URL as an endpoint -----------------------------------------
def test_empty_query_result_is_an_empty_element(endpoint: Endpoint) -> None:
    queue = json.loads(_json_call(endpoint.url, "CreateQueue", {"QueueName": "r"}).body)
    answer = _query_call(endpoint.url, {"Action": "ReceiveMessage", **queue})
    assert answer.status == 200
    result = ET.fromstring(answer.body).find("sqs:ReceiveMessageResult", NS)
    assert result is not None and len(result) == 0
    assert b"<ReceiveMessageResult/>" in answer.body


def test_queue_url_as_endpoint(endpoint: Endpoint) -> None:
    """AWS: a GET of a queue URL with no Action is 404 ``<UnknownOperationException/>``;
    CreateQueue or ListQueues sent there is 400 ``InvalidAction``."""
    endpoint.xfail_on("moto", "moto answers the bare GET with an empty 404")
    queue = json.loads(_json_call(endpoint.url, "CreateQueue", {"QueueName": "u"}).body)
    url = queue["QueueUrl"]
    bare = http(url, None, ROUTE, method="GET")
    assert (bare.status, bare.body) == (404, b"<UnknownOperationException/>")
    for action in ("CreateQueue", "ListQueues"):
        answer = _query_call(url, {"Action": action, "QueueName": "other"})
        assert answer.status == 400
        root = ET.fromstring(answer.body)
        assert root.findtext("sqs:Error/sqs:Code", None, NS) == "InvalidAction"
        assert root.findtext("sqs:Error/sqs:Message", None, NS) == (
            f"The action {action} is not valid for this endpoint."
        )
    # The queue's own actions still work at its URL.
    sent = _query_call(url, {"Action": "SendMessage", "MessageBody": "at the url"})
    assert sent.status == 200, sent.body
