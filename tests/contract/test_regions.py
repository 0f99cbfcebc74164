"""Queues belong to a region: the same name in two regions is two queues.

AWS: a queue's URL and ARN name its region (``https://sqs.eu-west-1.amazonaws.com/
<account>/<name>``, ``arn:aws:sqs:eu-west-1:<account>:<name>``), and each region
has its own namespace.  ``trainmq serve`` keeps today's URLs for its own region
(us-east-1 here) and puts another region in the path (``/queue/<region>/...``)
or takes it from a ``sqs.<region>.localhost`` host.  The region comes from the
request's signature, or for an unsigned request from its URL.
"""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

import trainmq
from tests.server.conftest import http

from .conftest import REGION, Backend, TrainmqServer, _make_backend
from .wire import _Param

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
OTHER = "eu-west-1"


@pytest.fixture(params=["server", "remote", "moto"])
def regional(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Backend, str]:
    """A backend whose home region is us-east-1, and its HTTP endpoint."""
    backend = _make_backend(request, tmp_path, real_time=False)
    name = "moto_server" if request.param == "moto" else "trainmq_server"
    server: Any = request.getfixturevalue(name)
    return backend, server.endpoint


def _client(backend: Backend, endpoint: str, region: str) -> Any:
    """A client of the same endpoint signing for ``region``."""
    if backend.name == "remote":
        client = trainmq.client(f"{endpoint}?region={region}")
        return client
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_same_name_in_two_regions_is_two_queues(regional: tuple[Backend, str]) -> None:
    backend, endpoint = regional
    home = _client(backend, endpoint, REGION)
    other = _client(backend, endpoint, OTHER)
    home_url = home.create_queue(QueueName="orders")["QueueUrl"]
    other_url = other.create_queue(QueueName="orders")["QueueUrl"]
    if backend.name == "server":  # the remote client builds URLs of its own
        assert home_url == f"{endpoint}/000000000000/orders"  # today's form
        assert other_url == f"{endpoint}/queue/{OTHER}/000000000000/orders"
    arns = [
        c.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for c, u in ((home, home_url), (other, other_url))
    ]
    assert arns[0].split(":")[3] == REGION and arns[1].split(":")[3] == OTHER
    home.send_message(QueueUrl=home_url, MessageBody="home")
    other.send_message(QueueUrl=other_url, MessageBody="other")
    assert [m["Body"] for m in home.receive_message(QueueUrl=home_url)["Messages"]] == ["home"]
    assert [m["Body"] for m in other.receive_message(QueueUrl=other_url)["Messages"]] == ["other"]
    assert home.get_queue_url(QueueName="orders")["QueueUrl"] == home_url
    assert other.get_queue_url(QueueName="orders")["QueueUrl"] == other_url
    other.create_queue(QueueName="only-there")
    assert home.list_queues().get("QueueUrls") == [home_url]
    assert sorted(other.list_queues()["QueueUrls"]) == sorted(
        [other_url, other.get_queue_url(QueueName="only-there")["QueueUrl"]]
    )
    other.delete_queue(QueueUrl=other_url)
    assert home.get_queue_url(QueueName="orders")["QueueUrl"] == home_url


def _form(url: str, params: dict[str, str], host: str | None = None) -> tuple[int, ET.Element]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if host is not None:
        headers["Host"] = host
    answer = http(url, urllib.parse.urlencode(params).encode(), headers)
    return answer.status, ET.fromstring(answer.body)


def test_unsigned_requests_take_the_region_from_the_url(
    trainmq_server: TrainmqServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Open mode: an unsigned Query request addresses the region its URL names, by path
    or by a ``sqs.<region>.localhost`` host; today's URLs stay the home region's."""
    _make_backend(_Param(request, "server"), tmp_path, real_time=False)  # type: ignore[arg-type]
    base = trainmq_server.endpoint
    port = base.rsplit(":", 1)[1]
    status, created = _form(f"{base}/queue/{OTHER}/", {"Action": "CreateQueue", "QueueName": "q"})
    assert status == 200
    regional_url = created.findtext(".//sqs:QueueUrl", None, NS)
    assert regional_url == f"{base}/queue/{OTHER}/000000000000/q"
    status, _ = _form(regional_url, {"Action": "SendMessage", "MessageBody": "by path"})
    assert status == 200
    host = f"sqs.{OTHER}.localhost:{port}"
    by_host = f"http://{host}/000000000000/q"
    status, received = _form(f"{base}/", {"Action": "ReceiveMessage", "QueueUrl": by_host})
    assert status == 200
    assert received.findtext(".//sqs:Body", None, NS) == "by path"
    status, urls = _form(f"{base}/", {"Action": "GetQueueUrl", "QueueName": "q"}, host=host)
    assert urls.findtext(".//sqs:QueueUrl", None, NS) == by_host
    status, missing = _form(f"{base}/", {"Action": "GetQueueUrl", "QueueName": "q"})
    assert status == 400  # the home region has no queue q
    assert missing.findtext("sqs:Error/sqs:Code", None, NS) == (
        "AWS.SimpleQueueService.NonExistentQueue"
    )
