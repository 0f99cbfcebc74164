"""Real ``trainmq worker`` processes for the tests, and helpers to watch them.

``start_worker(handler, queue, *flags)`` runs ``python -m trainmq worker`` in
its own process group (so a test can SIGKILL the worker *and* its handler
processes), waits until it logs that it started, and stops it with SIGTERM at
the end of the test.  Handlers write one JSON line per record to a log file
(``HandlerLog``); every wait is a bounded poll.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import trainmq
from tests.worker.handlers import LOG_ENV

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)  # poll interval of a bounded wait
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class HandlerLog:
    """The JSON lines the test handlers wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def numbers(self) -> list[Any]:
        return [e.get("n") for e in self.entries()]


class WorkerProcess:
    """One ``trainmq worker`` subprocess."""

    def __init__(self, args: list[str], env: dict[str, str], output: Path) -> None:
        self.output_path = output
        self._output = output.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trainmq", "worker", *args],
            cwd=REPO,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.output_path.read_text("utf-8", "replace")

    def wait_started(self) -> WorkerProcess:
        def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.output()}")
            return "worker started" in self.output()

        wait_for(started, START_TIMEOUT, "the worker to start")
        return self

    def terminate(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL the worker and every handler process it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if not self._output.closed:
            self._output.close()


class Env:
    """Per-test setting: the database, the handler log, and how to start workers."""

    def __init__(self, tmp_path: Path, backend: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "queues.db"
        self.backend = backend
        self.log = HandlerLog(tmp_path / "handler.jsonl")
        self.workers: list[WorkerProcess] = []

    def client(self) -> trainmq.LocalClient:
        return trainmq.client(self.backend if self.backend else str(self.db))

    def address_flags(self) -> list[str]:
        return ["--backend", self.backend] if self.backend else ["--db", str(self.db)]

    def start(self, handler: str, queue: str, *flags: str, ready: bool = True) -> WorkerProcess:
        # This tree's package first: the venv's editable install may point at another checkout.
        path = os.pathsep.join([str(REPO / "src"), str(REPO)])
        env = {**os.environ, LOG_ENV: str(self.log.path), "PYTHONPATH": path}
        args = [f"tests.worker.handlers:{handler}", "--queue", queue, *self.address_flags()]
        output = self.tmp_path / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess([*args, *flags], env, output)
        self.workers.append(worker)
        return worker.wait_started() if ready else worker

    def close(self) -> None:
        for worker in self.workers:
            worker.terminate()


def make_queue(
    client: Any,
    name: str,
    *,
    visibility: int = 30,
    max_receives: int | None = 3,
    fifo: bool = False,
) -> str:
    """Create ``name`` (and ``name-dlq`` when ``max_receives`` is set); returns its URL."""
    suffix = ".fifo" if fifo else ""
    base = name.removesuffix(".fifo")
    attributes = {"VisibilityTimeout": str(visibility)}
    if fifo:
        attributes |= {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    if max_receives is not None:
        dlq_attrs = {"FifoQueue": "true"} if fifo else {}
        dlq = client.create_queue(QueueName=f"{base}-dlq{suffix}", Attributes=dlq_attrs)
        arn = client.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": max_receives}
        )
    return str(client.create_queue(QueueName=f"{base}{suffix}", Attributes=attributes)["QueueUrl"])


def send(client: Any, url: str, bodies: list[dict[str, Any]], **extra: Any) -> list[str]:
    """Send JSON bodies in batches of 10; returns the message ids in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body), **extra}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        result = client.send_message_batch(QueueUrl=url, Entries=entries)
        assert not result.get("Failed"), result
        ordered = sorted(result["Successful"], key=lambda e: int(e["Id"]))
        ids += [e["MessageId"] for e in ordered]
    return ids


def counts(client: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def drain(client: Any, url: str) -> list[dict[str, Any]]:
    """Every visible message of a queue (received with a short visibility, not deleted)."""
    found: dict[str, dict[str, Any]] = {}
    while True:
        batch = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return list(found.values())
        found.update({m["MessageId"]: m for m in batch})


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """Workers on the embedded backend."""
    setting = Env(tmp_path)
    try:
        yield setting
    finally:
        setting.close()


@pytest.fixture(params=["embedded", "serve"])
def any_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """Workers on the embedded backend, then on a real ``trainmq serve`` over HTTP."""
    if request.param == "embedded":
        setting = Env(tmp_path)
        try:
            yield setting
        finally:
            setting.close()
        return
    from tests.server.conftest import ServerProcess

    server = ServerProcess(tmp_path / "served.db", tmp_path / "server.log").wait_ready()
    setting = Env(tmp_path, backend=server.url)
    try:
        yield setting
    finally:
        setting.close()
        server.stop()
