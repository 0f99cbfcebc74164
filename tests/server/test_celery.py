"""Celery with kombu's SQS transport, brokered by a real ``trainmq serve``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import celery_tasks
from .conftest import StartServer

REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS = 100
DEADLINE = 90.0


def start_worker(broker_url: str, queue: str, output: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        celery_tasks.BROKER_ENV: broker_url,
        celery_tasks.QUEUE_ENV: queue,
        celery_tasks.OUTPUT_ENV: str(output),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.server.celery_tasks",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-Q",
        queue,
    ]
    with log.open("wb") as handle:
        return subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def recorded(output: Path) -> list[int]:
    if not output.exists():
        return []
    return [int(line) for line in output.read_text("utf-8").splitlines() if line]


def test_celery_worker_runs_tasks_through_the_server(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    broker_url = f"sqs://celery-key:celery-secret@127.0.0.1:{server.port}"
    queue = "celery-training"
    output = tmp_path / "done.txt"
    worker = start_worker(broker_url, queue, output, tmp_path / "worker.log")
    try:
        producer = celery_tasks.make_app(broker_url, queue)
        for number in range(TASKS):
            producer.send_task("trainmq_test.record", args=[number])
        deadline = time.monotonic() + DEADLINE
        while len(recorded(output)) < TASKS and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text("utf-8", "replace")
            time.sleep(0.2)  # poll interval of a bounded wait for the worker's results
        assert sorted(recorded(output)) == list(range(TASKS)), (tmp_path / "worker.log").read_text(
            "utf-8", "replace"
        )[-3000:]
    finally:
        stop_worker(worker)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text("utf-8", "replace")[-3000:]

    client = server.client()
    url = client.get_queue_url(QueueName=queue)["QueueUrl"]
    counts = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
