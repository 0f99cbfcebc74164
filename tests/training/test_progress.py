"""A worker watches handlers that report progress: a hung one is killed and its message
retried; a stopping worker preempts them (SIGTERM: checkpoint and return) within a grace
period instead of waiting out the function timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.worker.conftest import wait_for
from trainmq.queue import LocalClient, open_service
from trainmq.worker import Worker, WorkerConfig

from .progress_handlers import LOG_ENV


def _entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _worker(tmp_path: Path, handler: str, **options: Any) -> tuple[Worker, LocalClient, str]:
    db = tmp_path / "queues.db"
    client = LocalClient(open_service(db))
    url = client.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "3"})["QueueUrl"]
    config = WorkerConfig(
        handler=f"tests.training.progress_handlers:{handler}",
        queue="jobs",
        backend=str(db),
        batch_size=1,
        timeout=3600,
        long_running=True,
        allow_no_dlq=True,
        wait_seconds=1,
        **options,
    )
    return Worker(config), client, url


def test_a_handler_that_stops_making_progress_is_killed_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    worker, client, url = _worker(tmp_path, "stall", progress_timeout=2)
    worker.start()
    try:
        client.send_message(QueueUrl=url, MessageBody="job")
        # Without the watch, the heartbeats would keep the message hidden for the hour.
        wait_for(lambda: [e for e in _entries(log) if e["receive"] == 2], 60, "the retry")
    finally:
        worker.stop(timeout=10)
        client.close()
    first, second = _entries(log)[:2]
    assert first["pid"] != second["pid"]  # the stalled process was killed, not reused


def test_stopping_a_worker_preempts_a_progress_reporting_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    worker, client, url = _worker(tmp_path, "preemptible", progress_timeout=30, preempt_grace=20)
    worker.start()
    try:
        client.send_message(QueueUrl=url, MessageBody="job")
        wait_for(lambda: _entries(log), 30, "the handler to start and report progress")
        started = time.monotonic()
        worker.stop()  # the function timeout is an hour: only preemption ends it this soon
        assert time.monotonic() - started < 15
        assert {"preempted": True} in _entries(log)
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        counts = attributes["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "0"
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"  # acknowledged
    finally:
        client.close()
