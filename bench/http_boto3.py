"""boto3 load: several client processes, each one loop of one SQS call at a time.

This is how applications meet an SQS endpoint, so it measures the endpoint
together with boto3's own cost (request building, signing, parsing). The
processes start once and serve every measurement; a barrier starts each
measurement in all of them at the same moment.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

BATCH = 10
BARRIER_SECONDS = 120.0


@dataclass(frozen=True)
class Job:
    """One measurement as one worker sees it."""

    endpoint: str
    queue_url: str
    workload: str  # "send", "send_batch", "receive_delete" or "prefill"
    body: str
    seconds: float
    max_ops: int  # per worker


@dataclass
class Outcome:
    """What the workers did in one measurement, summed over them."""

    ops: int = 0
    messages: int = 0
    seconds: float = 0.0  # the longest worker's time
    latencies: list[float] = field(default_factory=list)  # seconds, one per op
    drained: bool = False  # a worker found the queue empty
    capped: bool = False  # a worker stopped at the time cap, its operations not all done


def _make_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _step(client: Any, job: Job) -> Callable[[], int]:
    """One operation of the job's workload; returns messages handled (0: queue empty)."""
    url, body = job.queue_url, job.body
    entries = [{"Id": str(i), "MessageBody": body} for i in range(BATCH)]

    def send() -> int:
        client.send_message(QueueUrl=url, MessageBody=body)
        return 1

    def send_batch() -> int:
        response = client.send_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"batch entries failed: {response['Failed']}")
        return BATCH

    def receive_delete() -> int:
        response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        if not messages:
            return 0
        client.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return 1

    steps = {"send": send, "send_batch": send_batch, "prefill": send_batch}
    return steps.get(job.workload, receive_delete)


def _measure(step: Callable[[], int], job: Job) -> Outcome:
    outcome = Outcome()
    start = time.perf_counter()
    deadline = start + job.seconds
    while outcome.ops < job.max_ops:
        began = time.perf_counter()
        handled = step()
        ended = time.perf_counter()
        if handled == 0:
            outcome.drained = True
            break
        outcome.ops += 1
        outcome.messages += handled
        outcome.latencies.append(ended - began)
        if ended >= deadline and outcome.ops < job.max_ops:
            outcome.capped = True
            break
    outcome.seconds = time.perf_counter() - start
    return outcome


def _worker(conn: Connection, barrier: Any) -> None:
    """A client process: runs jobs from ``conn`` until it receives None."""
    clients: dict[str, Any] = {}
    while True:
        job: Job | None = conn.recv()
        if job is None:
            return
        try:
            client = clients.get(job.endpoint)
            if client is None:
                client = clients[job.endpoint] = _make_client(job.endpoint)
            client.get_queue_attributes(QueueUrl=job.queue_url, AttributeNames=["QueueArn"])
            step = _step(client, job)
            barrier.wait(BARRIER_SECONDS)
            conn.send(("ok", _measure(step, job)))
        except BaseException:
            barrier.abort()
            conn.send(("error", traceback.format_exc()))


class BotoPool:
    """``processes`` boto3 client processes, started once (spawned: no inherited state)."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._barrier = context.Barrier(processes + 1)
        self._conns: list[Connection] = []
        self._processes = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, self._barrier), daemon=True)
            process.start()
            self._conns.append(parent)
            self._processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def run(self, job: Job, on_start: Callable[[], None] | None = None) -> Outcome:
        """Runs ``job`` in every process at once; ``on_start`` is called as they start."""
        for conn in self._conns:
            conn.send(job)
        # A worker that failed before the start breaks the barrier; its error is in the replies.
        with contextlib.suppress(threading.BrokenBarrierError):
            self._barrier.wait(BARRIER_SECONDS)
        if on_start is not None:
            on_start()
        replies = [conn.recv() for conn in self._conns]
        self._barrier.reset()
        errors = [detail for status, detail in replies if status == "error"]
        if errors:
            raise RuntimeError(f"a boto3 client process failed:\n{errors[0]}")
        total = Outcome()
        for _, outcome in replies:
            total.ops += outcome.ops
            total.messages += outcome.messages
            total.seconds = max(total.seconds, outcome.seconds)
            total.latencies.extend(outcome.latencies)
            total.drained = total.drained or outcome.drained
            total.capped = total.capped or outcome.capped
        return total

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
