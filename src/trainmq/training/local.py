"""The whole pipeline on one machine: an embedded queue database, a local store, and
real ``trainmq worker`` processes per stage.  ``trainmq demo``, the end-to-end
tests and the pipeline benchmark drive it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..queue import LocalClient, open_service
from ..store import BlobStore, open_store
from .messages import TrainingEvent, _Message
from .pipeline import DEFAULT_LAYOUT, STAGES, Layout, create_queues

__all__ = ["LocalPipeline", "WorkerDied", "WorkerProcess", "WorkerStats"]

_BATCH = re.compile(r"batch queue=(\S+) .*?outcome=(\S+) .*?receive_counts=\[([\d, ]*)\]")

#: Worker options per stage: batches of one; training may run for hours (heartbeats).
#: 150 s: six times it is the 900 s visibility timeout of those queues, as AWS advises.
STAGE_OPTIONS: dict[str, list[str]] = {
    "prepare": ["--timeout", "150"],
    # A trainer that reports no progress for 15 minutes is hung: kill it, retry the run.
    "train": ["--timeout", "43200", "--long-running", "--progress-timeout", "900"],
    "evaluate": ["--timeout", "150"],
}


class WorkerDied(RuntimeError):
    """A stage's worker process exited on its own."""


@dataclass
class WorkerProcess:
    """One ``trainmq worker`` process (in its own process group, with its handler children)."""

    stage: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ended: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the worker and its handler processes: a crash, not a shutdown."""
        self.ended = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (graceful: running handlers finish, unstarted messages are released)."""
        self.ended = True
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass


@dataclass
class WorkerStats:
    """What the workers' logs say they did."""

    batches: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    redeliveries: int = 0


class LocalPipeline:
    """Queues in ``root/queues.db``, the store in ``root/store``, logs in ``root/logs``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        layout: Layout = DEFAULT_LAYOUT,
        train_visibility: int = 30,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = self.root / "queues.db"
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.layout = layout
        self.client = LocalClient(open_service(self.db))
        self.store: BlobStore = open_store(self.root / "store")
        self.urls = create_queues(self.client, layout, visibility={"train": train_visibility})
        self.extra_env = dict(env or {})
        self.workers: list[WorkerProcess] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("TRAINMQ_BACKEND", None)
        env.update(
            TRAINMQ_DB=str(self.db),
            TRAINMQ_STORE=str(self.root / "store"),
            TRAINMQ_EVENTS_QUEUE=self.layout.events,
            TRAINMQ_EVALUATE_QUEUE=self.layout.queue("evaluate"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start_worker(
        self, stage: str, concurrency: int = 1, *, handler: str | None = None
    ) -> WorkerProcess:
        """Start a worker for ``stage``'s queue running ``handler`` (default: the stage's own,
        ``trainmq.training.handlers:<stage>``)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        number = sum(1 for w in self.workers if w.stage == stage) + 1
        log_path = self.logs / f"{stage}-{number}.log"
        command = [
            sys.executable,
            "-m",
            "trainmq",
            "worker",
            handler or f"trainmq.training.handlers:{stage}",
            "--queue",
            self.layout.queue(stage),
            "--db",
            str(self.db),
            "--batch-size",
            "1",
            "--concurrency",
            str(concurrency),
            *STAGE_OPTIONS[stage],
        ]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        worker = WorkerProcess(stage, process, log_path)
        self.workers.append(worker)
        return worker

    def running(self, stage: str) -> list[WorkerProcess]:
        return [w for w in self.workers if w.stage == stage and w.process.poll() is None]

    def check_workers(self) -> None:
        """Raise ``WorkerDied`` if a worker exited that was neither killed nor stopped."""
        for worker in self.workers:
            code = worker.process.poll()
            if code is not None and not worker.ended:
                try:
                    lines = worker.log_path.read_text(errors="replace").strip().splitlines()
                except OSError:
                    lines = []
                last = lines[-1] if lines else "(no output)"
                raise WorkerDied(
                    f"the {worker.stage} worker exited with status {code}: {last} "
                    f"(log: {worker.log_path})"
                )

    def send(self, stage: str, message: _Message) -> str:
        url = self.urls[self.layout.queue(stage)]
        return str(
            self.client.send_message(QueueUrl=url, MessageBody=message.to_json())["MessageId"]
        )

    def events(self, wait: int = 1) -> list[TrainingEvent]:
        """Take the published events off the events queue (oldest first)."""
        url = self.urls[self.layout.events]
        response = self.client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        )
        messages = response.get("Messages", [])
        if messages:
            self.client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        found = [TrainingEvent.model_validate_json(m["Body"]) for m in messages]
        return sorted(found, key=lambda e: e.at or 0.0)

    def depth(self, queue: str) -> int:
        """Messages in ``queue``: visible, in flight and delayed."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.urls[queue], AttributeNames=["All"]
        )["Attributes"]
        return sum(
            int(attributes[name])
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )

    def idle(self) -> bool:
        """Every stage queue is empty (nothing waiting, nothing in flight)."""
        return all(self.depth(self.layout.queue(stage)) == 0 for stage in STAGES)

    def dead_letters(self) -> dict[str, int]:
        return {stage: self.depth(self.layout.dlq(stage)) for stage in STAGES}

    def dead_letter_messages(self, stage: str) -> list[dict[str, Any]]:
        """Peek at a DLQ's messages (received with visibility 0, so they stay)."""
        response = self.client.receive_message(
            QueueUrl=self.urls[self.layout.dlq(stage)],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def worker_stats(self) -> WorkerStats:
        stats = WorkerStats()
        for worker in self.workers:
            try:
                text = worker.log_path.read_text(errors="replace")
            except OSError:
                continue
            for queue, outcome, counts in _BATCH.findall(text):
                stats.batches[f"{queue}:{outcome}"] += 1
                numbers = [int(c) for c in counts.split(",") if c.strip()]
                stats.messages += len(numbers)
                stats.redeliveries += sum(max(0, n - 1) for n in numbers)
        return stats

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.client.close()

    def __enter__(self) -> LocalPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
