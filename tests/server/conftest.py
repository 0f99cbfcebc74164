"""Running ``trainmq serve`` as a real process, and talking to it.

Every test here speaks HTTP to a real server subprocess: that is the point of
the folder. ``ServerProcess`` starts one on a free loopback port, waits for
``GET /health`` with a deadline, and stops it with SIGTERM (SIGKILL only when
SIGTERM is not honoured in time). Its stdout and stderr go to a file, so tests
can read what the server printed.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

ADMIN = ("AKIDADMIN", "admin-secret-7c1f9e")
PRODUCER = ("AKIDPRODUCER", "producer-secret-41d2b8")
CREDENTIALS_TOML = f"""
[[keys]]
name = "admin"
access_key_id = "{ADMIN[0]}"
secret_access_key = "{ADMIN[1]}"
grants = [ {{ actions = ["*"], queues = ["*"] }} ]

[[keys]]
name = "producer"
access_key_id = "{PRODUCER[0]}"
secret_access_key = "{PRODUCER[1]}"
grants = [
  {{ actions = ["SendMessage", "SendMessageBatch", "GetQueueUrl"], queues = ["train-*"] }},
]
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


def http(
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    timeout: float = 10.0,
) -> Response:
    """One HTTP request; 4xx and 5xx answers are returned, not raised."""
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(
                answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
            )
    except urllib.error.HTTPError as error:
        with error:
            return Response(
                error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
            )


class ServerProcess:
    """One ``trainmq serve`` subprocess on 127.0.0.1."""

    def __init__(self, db: Path, log: Path, *args: str, port: int | None = None) -> None:
        if "--workers" not in args:  # one process unless a test asks (test_workers.py does)
            args = (*args, "--workers", "1")
        self.db = db
        self.port = port or free_port()
        self.log_path = log
        command = [
            sys.executable,
            "-m",
            "trainmq",
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(db),
            *args,
        ]
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            answer = http(self.url + "/health", timeout=timeout)
        except OSError:
            return False
        return answer.status == 200

    def wait_ready(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode} before it was ready:\n"
                    + self.output()
                )
            if self.healthy(timeout=1.0):
                return self
            time.sleep(0.05)  # poll interval of a bounded readiness loop
        self.kill()
        raise RuntimeError(f"server not ready within {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait; SIGKILL if it is still running after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        self._log.close()

    def client(self, key: tuple[str, str] = ("x", "x"), **config: Any) -> Any:
        return sqs_client(self.url, key, **config)


def sqs_client(url: str, key: tuple[str, str] = ("x", "x"), **config: Any) -> Any:
    """A boto3 SQS client for ``url`` that never retries (a retry would hide an error)."""
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "read_timeout": 30}
    options.update(config)
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(**options),
    )


StartServer = Callable[..., ServerProcess]


@contextlib.contextmanager
def _servers(directory: Path) -> Iterator[StartServer]:
    started: list[ServerProcess] = []
    counter = [0]

    def start(
        *args: str, db: Path | None = None, port: int | None = None, ready: bool = True
    ) -> ServerProcess:
        counter[0] += 1
        server = ServerProcess(
            db or directory / "queues.db",
            directory / f"server-{counter[0]}.log",
            *args,
            port=port,
        )
        started.append(server)
        return server.wait_ready() if ready else server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers for one test: ``start(*cli_args, db=..., port=..., ready=True)``."""
    with _servers(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Start servers that live until the end of the module."""
    with _servers(tmp_path_factory.mktemp("module-servers")) as start:
        yield start


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server without credentials shared by the tests (each uses queue names of its own)."""
    with _servers(tmp_path_factory.mktemp("server")) as start:
        yield start()


@pytest.fixture(scope="session")
def credentials_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("credentials") / "credentials.toml"
    path.write_text(CREDENTIALS_TOML, "utf-8")
    return path


@pytest.fixture(scope="session")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, credentials_file: Path
) -> Iterator[ServerProcess]:
    """One server started with ``--credentials`` (keys ADMIN and PRODUCER), logging verbosely."""
    with _servers(tmp_path_factory.mktemp("auth-server")) as start:
        yield start("--credentials", str(credentials_file), "--log-level", "debug")
