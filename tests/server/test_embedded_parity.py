"""Code written for boto3 runs unchanged on ``trainmq.client()``.

Each snippet below is ordinary boto3 code. It runs twice: against
``boto3.client("sqs", endpoint_url=<trainmq serve>)`` and against the embedded
``trainmq.client()`` on a database of its own, and the two results must be equal
(queue URLs, message ids, receipt handles and request ids differ by nature and
are replaced by placeholders).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import trainmq

from .conftest import StartServer

VOLATILE = {
    "MessageId",
    "ReceiptHandle",
    "SentTimestamp",
    "ApproximateFirstReceiveTimestamp",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
}
# How the transport went (the test client never retries), not what the service answered.
TRANSPORT = {"HTTPHeaders", "RetryAttempts", "MaxAttemptsReached", "RequestId"}


def normalize(value: Any, base: str) -> Any:
    """``value`` with the endpoint replaced by ``<base>`` and volatile fields by their type."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in TRANSPORT:
                continue
            out[key] = f"<{type(item).__name__}>" if key in VOLATILE else normalize(item, base)
        return out
    if isinstance(value, list):
        return [normalize(item, base) for item in value]
    if isinstance(value, str):
        return value.replace(base, "<base>").replace(":000000000000:", ":ACCOUNT:")
    return value


def lifecycle(sqs: Any) -> Any:
    url = sqs.create_queue(QueueName="parity-jobs", Attributes={"VisibilityTimeout": "40"})[
        "QueueUrl"
    ]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"shard": 1}),
        MessageAttributes={"n": {"DataType": "Number", "StringValue": "7"}},
    )
    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    deleted = sqs.delete_message(
        QueueUrl=url, ReceiptHandle=received["Messages"][0]["ReceiptHandle"]
    )
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return [sent, received, deleted, attributes]


def client_errors(sqs: Any) -> Any:
    caught = []
    try:
        sqs.get_queue_url(QueueName="parity-missing")
    except ClientError as exc:
        caught.append(exc.response["Error"])
    try:
        sqs.get_queue_url(QueueName="parity-missing")
    except sqs.exceptions.QueueDoesNotExist as exc:
        caught.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    url = sqs.create_queue(QueueName="parity-errors")["QueueUrl"]
    try:
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    except ClientError as exc:
        caught.append((exc.response["Error"]["Code"], type(exc).__name__))
    return caught


def paginate_queues(sqs: Any) -> Any:
    for index in range(5):
        sqs.create_queue(QueueName=f"parity-page-{index}")
    paginator = sqs.get_paginator("list_queues")
    pages = [
        sorted(page.get("QueueUrls", []))
        for page in paginator.paginate(
            QueueNamePrefix="parity-page", PaginationConfig={"PageSize": 2}
        )
    ]
    full = paginator.paginate(QueueNamePrefix="parity-page").build_full_result()
    return [len(pages), sorted(url for page in pages for url in page), sorted(full["QueueUrls"])]


def paginate_with_max_items(sqs: Any) -> Any:
    for index in range(5):
        sqs.create_queue(QueueName=f"parity-max-{index}")
    paginator = sqs.get_paginator("list_queues")
    results = []
    for max_items in (3, 4):  # inside a page, and at a page's end
        config = {"PageSize": 2, "MaxItems": max_items}
        first = paginator.paginate(QueueNamePrefix="parity-max", PaginationConfig=config)
        head = first.build_full_result()
        rest = paginator.paginate(
            QueueNamePrefix="parity-max",
            PaginationConfig={"PageSize": 2, "StartingToken": head["NextToken"]},
        ).build_full_result()
        results.append([head["QueueUrls"], rest["QueueUrls"], "NextToken" in rest])
    return results


def paginate_dead_letter_sources(sqs: Any) -> Any:
    dlq = sqs.create_queue(QueueName="parity-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    for index in range(3):
        sqs.create_queue(QueueName=f"parity-src-{index}", Attributes={"RedrivePolicy": policy})
    paginator = sqs.get_paginator("list_dead_letter_source_queues")
    urls = [
        url
        for page in paginator.paginate(QueueUrl=dlq, PaginationConfig={"PageSize": 1})
        for url in page["queueUrls"]
    ]
    return [sqs.can_paginate("list_queues"), sorted(urls)]


SNIPPETS: list[Callable[[Any], Any]] = [
    lifecycle,
    client_errors,
    paginate_queues,
    paginate_with_max_items,
    paginate_dead_letter_sources,
]


@pytest.fixture(scope="module")
def remote(start_module_server: StartServer) -> Iterator[tuple[Any, str]]:
    server = start_module_server()
    yield server.client(), server.url


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    path = tmp_path_factory.mktemp("embedded") / "queues.db"
    with trainmq.client(path, endpoint="http://embedded.test:9324") as sqs:
        yield sqs, "http://embedded.test:9324"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda snippet: snippet.__name__)
def test_boto3_snippet_gives_the_same_result_on_both(
    snippet: Callable[[Any], Any], remote: tuple[Any, str], embedded: tuple[Any, str]
) -> None:
    expected = normalize(snippet(remote[0]), remote[1])
    actual = normalize(snippet(embedded[0]), embedded[1])
    assert actual == expected


def test_embedded_errors_are_client_errors_with_boto3_wording(tmp_path: Path) -> None:
    with trainmq.client(tmp_path / "queues.db") as sqs, pytest.raises(ClientError) as caught:
        sqs.get_queue_url(QueueName="absent")
    assert isinstance(caught.value, trainmq.errors.QueueDoesNotExist)
    assert str(caught.value) == (
        "An error occurred (AWS.SimpleQueueService.NonExistentQueue) when calling the "
        "GetQueueUrl operation: The specified queue does not exist."
    )
    assert caught.value.operation_name == "GetQueueUrl"


def test_embedded_responses_carry_response_metadata(tmp_path: Path) -> None:
    with trainmq.client(tmp_path / "queues.db") as sqs:
        first = sqs.list_queues()["ResponseMetadata"]
        second = sqs.create_queue(QueueName="meta")["ResponseMetadata"]
    assert first["HTTPStatusCode"] == second["HTTPStatusCode"] == 200
    assert first["RequestId"] and first["RequestId"] != second["RequestId"]
