"""The no-op work of ``bench/worker.py``: a trainmq handler and a Celery task doing the same.

Each reports to the benchmark with one UDP datagram (to ``TRAINMQ_BENCH_UDP``)
carrying how many messages it handled, the send time of the first one and
when the handler started, so the bench can count completions and measure
send -> handler start latency without touching the systems it measures.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from celery import Celery

UDP_ENV = "TRAINMQ_BENCH_UDP"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
QUEUE = "trainmq-bench"

_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _report(count: int, sent: float) -> None:
    started = time.time()
    message = json.dumps({"count": count, "sent": sent, "start": started}).encode()
    _socket.sendto(message, ("127.0.0.1", int(os.environ[UDP_ENV])))


def handle(event: dict[str, Any], context: Any) -> None:
    """The trainmq (Lambda-style) handler: does nothing but report."""
    records = event["Records"]
    _report(len(records), json.loads(records[0]["body"])["t"])


app = Celery("trainmq_bench", broker=os.environ.get("TRAINMQ_BENCH_BROKER", BROKER))
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="trainmq_bench.noop")
def noop(sent: float) -> None:
    """The Celery task: does nothing but report."""
    _report(1, sent)
