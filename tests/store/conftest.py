"""Fixtures for the blob-store suite: every test runs on each store.

* ``local`` -- :class:`~trainmq.store.LocalStore` in a fresh directory;
* ``s3`` -- :class:`~trainmq.store.S3Store` against moto's S3 server (one server
  for the session, reset before each test, a fresh bucket per test), under a
  key prefix, with the smallest multipart threshold S3 allows (large blobs
  take the multipart path) and small list pages (listings paginate).
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trainmq.store import BlobStore, LocalStore, S3Store
from trainmq.store.s3 import MIN_PART_SIZE

STORES = ["local", "s3"]
REGION = "us-east-1"
S3_PREFIX = "data"
#: Small pages, so that listing a few hundred keys takes several pages.
LIST_PAGE_SIZE = 50


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Moto:
    """moto's server, for S3 and SQS."""

    endpoint: str

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint)

    def new_bucket(self) -> str:
        bucket = f"trainmq-{uuid.uuid4().hex[:12]}"
        self.client("s3").create_bucket(Bucket=bucket)
        return bucket


@pytest.fixture(scope="session")
def moto_session() -> Iterator[Moto]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto(moto_session: Moto) -> Moto:
    moto_session.reset()
    return moto_session


def s3_store(moto: Moto, bucket: str, prefix: str = S3_PREFIX) -> S3Store:
    return S3Store(
        bucket,
        prefix,
        client=moto.client("s3"),
        multipart_threshold=MIN_PART_SIZE,
        part_size=MIN_PART_SIZE,
        list_page_size=LIST_PAGE_SIZE,
    )


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    moto: Moto = request.getfixturevalue("moto")
    return s3_store(moto, moto.new_bucket())
