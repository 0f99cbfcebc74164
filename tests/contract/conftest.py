"""Fixtures for the SQS contract suite: one behaviour, every backend.

The suite encodes what the AWS SQS documentation promises. Each test takes the
``sqs`` fixture, which runs it once per backend:

* ``sqlite`` -- trainmq's embedded engine on a fresh database, driven by a
  :class:`~trainmq.clock.FakeClock` so time moves only when a test says so;
* ``server`` -- ``trainmq serve``'s app over real HTTP, driven by boto3, with the
  same fake clock (each test swaps in a fresh database);
* ``remote`` -- ``trainmq.client("http://...")``: trainmq's own SQS client backend
  (``trainmq.queue.sqs``) talking to that server;
* ``moto`` -- moto's SQS server, an independent implementation, on real time;
* ``postgres`` -- the PostgreSQL backend in a fresh schema, on the fake clock.

Tests that jump minutes or hours ahead take ``sqs_clock`` instead, which only
runs on backends with a fake clock. A case where moto departs from AWS is
marked xfail for moto alone (``sqs.xfail_on("moto", reason)``); the sqlite
engine is never excused.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ["sqlite", "server", "remote", "moto", "postgres"]
FAKE_TIME_BACKENDS = ["sqlite", "server", "remote", "postgres"]
REGION = "us-east-1"


@dataclass
class SQSError:
    """What a failed call raised, for assertions beyond the code."""

    code: str = ""
    message: str = ""
    exception: BaseException | None = None


@dataclass
class Backend:
    """One SQS implementation under test, with helpers every test shares."""

    name: str
    client: Any
    fake_time: bool
    now: Callable[[], float]
    _advance: Callable[[float], Any]
    _request: pytest.FixtureRequest
    _names_issued: int = 0

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: instantly on a fake clock, in real time otherwise."""
        self._advance(seconds)

    def xfail_on(self, backend: str, reason: str) -> None:
        """Mark the running test as an expected failure on ``backend`` only."""
        if self.name == backend:
            self._request.applymarker(pytest.mark.xfail(reason=reason, strict=False))

    @contextlib.contextmanager
    def raises(self, *codes: str) -> Iterator[SQSError]:
        """Expect the block to fail with one of the given SQS error codes."""
        caught = SQSError()
        try:
            yield caught
        except Exception as exc:
            response = getattr(exc, "response", None)
            if not isinstance(response, dict) or "Error" not in response:
                raise
            caught.code = response["Error"].get("Code", "")
            caught.message = response["Error"].get("Message", "")
            caught.exception = exc
        else:
            pytest.fail(f"expected an SQS error {codes}, but the call succeeded")
        assert caught.code in codes, f"expected {codes}, got {caught.code}: {caught.message}"

    def unique(self, prefix: str = "q") -> str:
        """A queue name not used before in this test."""
        self._names_issued += 1
        return f"{prefix}-{self._names_issued}"

    def queue(self, name: str | None = None, **attributes: Any) -> str:
        """Create a standard queue and return its URL."""
        response = self.client.create_queue(
            QueueName=name or self.unique(),
            Attributes={key: str(value) for key, value in attributes.items()},
        )
        return str(response["QueueUrl"])

    def fifo_queue(self, name: str | None = None, **attributes: Any) -> str:
        """Create a FIFO queue and return its URL."""
        attributes.setdefault("FifoQueue", "true")
        return self.queue(name or self.unique("f") + ".fifo", **attributes)

    def attributes(self, url: str, *names: str) -> dict[str, str]:
        response = self.client.get_queue_attributes(
            QueueUrl=url, AttributeNames=list(names) or ["All"]
        )
        return dict(response.get("Attributes", {}))

    def arn(self, url: str) -> str:
        return self.attributes(url, "QueueArn")["QueueArn"]

    def receive(self, url: str, **params: Any) -> list[dict[str, Any]]:
        """One ReceiveMessage call; the messages it returned (maybe none)."""
        params.setdefault("MaxNumberOfMessages", 10)
        response = self.client.receive_message(QueueUrl=url, **params)
        return list(response.get("Messages", []))

    def receive_one(self, url: str, **params: Any) -> dict[str, Any]:
        messages = self.receive(url, MaxNumberOfMessages=1, **params)
        assert len(messages) == 1, f"expected one message, got {messages}"
        return messages[0]

    def count(self, url: str, name: str = "ApproximateNumberOfMessages") -> int:
        return int(self.attributes(url, name)[name])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    endpoint: str
    client: Any

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server and one client for the session; each test resets the server."""
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    try:
        yield MotoServer(endpoint, client)
    finally:
        server.stop()


def _moto_backend(request: pytest.FixtureRequest) -> Backend:
    server: MotoServer = request.getfixturevalue("moto_server")
    server.reset()
    return Backend(
        name="moto",
        client=server.client,
        fake_time=False,
        now=time.time,
        _advance=time.sleep,
        _request=request,
    )


def _sqlite_backend(request: pytest.FixtureRequest, path: Path, real_time: bool) -> Backend:
    import trainmq
    from trainmq.clock import FakeClock, SystemClock

    if real_time:
        clock: Any = SystemClock()
        advance: Callable[[float], Any] = time.sleep
    else:
        clock = FakeClock()
        advance = clock.advance
    client = trainmq.client(str(path), clock=clock)
    request.addfinalizer(client.close)
    return Backend(
        name="sqlite",
        client=client,
        fake_time=not real_time,
        now=clock.now,
        _advance=advance,
        _request=request,
    )


@dataclass
class TrainmqServer:
    """``trainmq serve``'s ASGI app under uvicorn in a thread, for the whole session.

    Each test gives it a fresh database (and clock) by swapping the app's service,
    so the suite runs over real HTTP with the same fake time as the embedded runs.
    """

    endpoint: str
    app: Any
    client: Any


@pytest.fixture(scope="session")
def trainmq_server() -> Iterator[TrainmqServer]:
    import threading

    import boto3
    import uvicorn
    from botocore.config import Config

    from trainmq.server.app import SQSApp

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    import tempfile

    from trainmq.queue.client import open_service

    scratch = tempfile.mkdtemp(prefix="trainmq-contract-")
    app = SQSApp(open_service(Path(scratch) / "initial.db", endpoint=endpoint))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "trainmq server did not start"
        time.sleep(0.01)
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    try:
        yield TrainmqServer(endpoint, app, client)
    finally:
        server.should_exit = True
        app.release_waiters()
        thread.join(timeout=30)
        app.regions.close()
        app.service.backend.close()


def _server_backend(
    request: pytest.FixtureRequest, path: Path, real_time: bool, remote: bool
) -> Backend:
    import trainmq
    from trainmq.clock import FakeClock, SystemClock
    from trainmq.queue.client import open_service

    server: TrainmqServer = request.getfixturevalue("trainmq_server")
    clock: Any = SystemClock() if real_time else FakeClock()
    advance: Callable[[float], Any] = time.sleep if real_time else clock.advance
    previous = server.app.service
    server.app.service = open_service(path, clock=clock, endpoint=server.endpoint)
    previous.backend.close()
    client = trainmq.client(server.endpoint) if remote else server.client
    if remote:
        request.addfinalizer(client.close)
    return Backend(
        name="remote" if remote else "server",
        client=client,
        fake_time=not real_time,
        now=clock.now,
        _advance=advance,
        _request=request,
    )


def _postgres_backend(request: pytest.FixtureRequest, real_time: bool) -> Backend:
    import trainmq
    from tests.postgres.support import fresh_schema
    from trainmq.clock import FakeClock, SystemClock

    schema = fresh_schema()
    address = schema.__enter__()
    request.addfinalizer(lambda: schema.__exit__(None, None, None))
    clock: Any = SystemClock() if real_time else FakeClock()
    client = trainmq.client(address, clock=clock)
    request.addfinalizer(client.close)
    return Backend(
        name="postgres",
        client=client,
        fake_time=not real_time,
        now=clock.now,
        _advance=time.sleep if real_time else clock.advance,
        _request=request,
    )


def _make_backend(request: pytest.FixtureRequest, tmp_path: Path, real_time: bool) -> Backend:
    if request.param == "moto":
        return _moto_backend(request)
    if request.param == "postgres":
        return _postgres_backend(request, real_time)
    if request.param in ("server", "remote"):
        return _server_backend(
            request, tmp_path / "queues.db", real_time, remote=request.param == "remote"
        )
    return _sqlite_backend(request, tmp_path / "queues.db", real_time)


@pytest.fixture(params=BACKENDS)
def sqs(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every backend; time moves only through ``sqs.advance``."""
    return _make_backend(request, tmp_path, real_time=False)


@pytest.fixture(params=FAKE_TIME_BACKENDS)
def sqs_clock(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Backends whose clock a test can move by minutes or hours at no cost."""
    return _make_backend(request, tmp_path, real_time=False)


@pytest.fixture(params=BACKENDS)
def sqs_realtime(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every backend on the real clock, for behaviour across threads in real time."""
    return _make_backend(request, tmp_path, real_time=True)
