"""Which region a request addresses; client-chosen region names never reach a file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import trainmq
from trainmq.errors import InvalidParameterValue
from trainmq.queue.client import open_service
from trainmq.queue.regions import Regions
from trainmq.server.addressing import queue_path_parts, region_endpoint, request_region

HOME = "us-east-1"


def _scope(path: str = "/", query: bytes = b"") -> dict[str, Any]:
    return {"path": path, "query_string": query}


def _signed(region: str) -> dict[str, str]:
    return {
        "host": "127.0.0.1:9324",
        "authorization": f"AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/sqs/aws4_request, "
        "SignedHeaders=host, Signature=00",
    }


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("http://127.0.0.1:9324/000000000000/q", HOME),  # today's form: the home region
        ("http://127.0.0.1:9324/queue/eu-west-1/000000000000/q", "eu-west-1"),
        ("http://sqs.ap-southeast-2.localhost:9324/000000000000/q", "ap-southeast-2"),
        ("https://sqs.us-gov-west-1.amazonaws.com/000000000000/q", "us-gov-west-1"),
        ("http://127.0.0.1:9324/queue/../000000000000/q", HOME),
        ("http://sqs.x..y.localhost/000000000000/q", HOME),
        ("http://[/000000000000/q", HOME),  # not a URL at all
    ],
)
def test_the_queue_url_decides(url: str, region: str) -> None:
    # Whatever the signature says, a queue URL names one queue.
    assert request_region(_scope(), _signed("eu-central-1"), {"QueueUrl": url}, HOME) == region


def test_arns_and_task_handles_decide() -> None:
    arn = "arn:aws:sqs:eu-north-1:000000000000:dlq"
    assert request_region(_scope(), _signed(HOME), {"SourceArn": arn}, HOME) == "eu-north-1"


def test_without_a_queue_the_signature_decides_then_the_url() -> None:
    assert request_region(_scope(), _signed("eu-west-3"), {"QueueName": "q"}, HOME) == "eu-west-3"
    unsigned = {"host": "127.0.0.1:9324"}
    path = _scope("/queue/sa-east-1/")
    assert request_region(path, unsigned, {"QueueName": "q"}, HOME) == "sa-east-1"
    credential = b"AKID%2F20260101%2Fca-central-1%2Fsqs%2Faws4_request"
    presigned = _scope(query=b"X-Amz-Credential=" + credential)
    assert request_region(presigned, unsigned, {}, HOME) == "ca-central-1"
    assert request_region(_scope(), unsigned, {}, HOME) == HOME
    assert request_region(_scope(), {"host": "["}, {}, HOME) == HOME


@pytest.mark.parametrize("bad", ["../../etc", "eu-west-1/..", "EU-WEST-1", "", "a" * 300])
def test_malformed_regions_are_the_home_region(bad: str) -> None:
    assert request_region(_scope(), _signed(bad), {"QueueName": "q"}, HOME) == HOME


def test_region_endpoints_and_queue_paths() -> None:
    assert region_endpoint("http", "h:1", HOME, HOME) == "http://h:1"
    assert region_endpoint("http", "h:1", "eu-west-1", HOME) == "http://h:1/queue/eu-west-1"
    host = "sqs.eu-west-1.localhost:1"
    assert region_endpoint("http", host, "eu-west-1", HOME) == f"http://{host}"
    assert queue_path_parts("/000000000000/q") == ["000000000000", "q"]
    assert queue_path_parts("/queue/eu-west-1/000000000000/q") is not None
    assert queue_path_parts("/queue/eu-west-1") is None  # the region's service endpoint
    assert queue_path_parts("/a/b/c") is None


def test_regions_open_a_database_beside_the_home_one(tmp_path: Path) -> None:
    home = open_service(tmp_path / "queues.db")
    regions = Regions(limit=1)
    try:
        other = regions.service(home, "eu-west-1")
        assert regions.service(home, "eu-west-1") is other
        assert regions.service(home, HOME) is home
        assert regions.service(home, "../x") is home
        other.dispatch("CreateQueue", {"QueueName": "q"})
        assert (tmp_path / "queues.eu-west-1.db").exists()
        assert home.dispatch("ListQueues", {}) == {}
        with pytest.raises(InvalidParameterValue, match="at most 1 regions"):
            regions.service(home, "eu-west-2")
    finally:
        regions.close()
        home.backend.close()
    with trainmq.client(tmp_path / "queues.eu-west-1.db", region="eu-west-1") as client:
        assert client.list_queues()["QueueUrls"][0].endswith("/q")
