"""Worker benchmark: ``trainmq worker`` against Celery (RabbitMQ broker, acks_late).

Run as ``python bench/worker.py [--quick] [--json PATH] [--dir DIR]``.

End to end, no-op handler, concurrency 2 on both sides: a producer thread
sends N messages (trainmq: SendMessageBatch of 10 into the embedded database
with full durability; Celery: one publish per task) while the worker consumes
them; the clock stops when every message was handled and, for trainmq,
deleted.  Throughput is measured at batch size 1 and 10 (Celery has no
batches: it runs once).  Idle latency: one message at a time, 50 ms apart,
from just before the send call to the start of the handler, p50/p99.
Celery needs RabbitMQ on 127.0.0.1:5672 (guest/guest); without it the bench
fails with a clear message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# ``bench/http.py`` would shadow the standard library's ``http``: this folder goes last on
# sys.path, and the worker processes run in a scratch folder holding only worker_tasks.py.
sys.path[:] = [str(REPO / "src"), *(p for p in sys.path if Path(p or ".").resolve() != HERE),
               str(HERE)]

import trainmq  # noqa: E402
from worker_tasks import BROKER, QUEUE, UDP_ENV  # noqa: E402

CONCURRENCY = 2
TARGETS = {"batch10_messages_per_s": 5000.0, "idle_p50_ms": 5.0}


class Reports:
    """Datagrams from the handlers: completion counts and latencies."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.count = 0
        self.latencies: list[float] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            report = json.loads(self.sock.recv(4096))
            with self.changed:
                self.count += report["count"]
                self.latencies.append(report["start"] - report["sent"])
                self.changed.notify_all()

    def reset(self) -> None:
        with self.changed:
            self.count, self.latencies = 0, []

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"only {self.count} of {count} messages were handled")
                self.changed.wait(left)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def environment(reports: Reports, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINMQ_")}
    env[UDP_ENV] = str(reports.port)
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), str(REPO / "src")])
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def trainmq_run(workdir: Path, reports: Reports, batch: int, count: int) -> dict[str, Any]:
    db = workdir / f"queues-{batch}.db"
    sqs = trainmq.client(str(db))
    url = sqs.create_queue(QueueName="bench", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "trainmq", "worker", "worker_tasks:handle", "--queue", "bench",
         "--db", str(db), "--batch-size", str(batch), "--concurrency", str(CONCURRENCY),
         "--timeout", "10", "--no-dlq", "--log-level", "error"],
        env=environment(reports, workdir), cwd=workdir,
    )
    try:
        reports.reset()
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"t": time.time()}))
        reports.wait(1, 60)  # warm: the worker and its handler processes are up
        latency = idle_latency(reports, lambda: sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps({"t": time.time()})), count // 40)
        reports.reset()
        started = time.monotonic()

        def produce() -> None:
            for first in range(0, count, 10):
                entries = [{"Id": str(i), "MessageBody": json.dumps({"t": time.time()})}
                           for i in range(min(10, count - first))]
                sqs.send_message_batch(QueueUrl=url, Entries=entries)

        threading.Thread(target=produce, daemon=True).start()
        reports.wait(count, 300)
        while True:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            if attrs["ApproximateNumberOfMessages"] == attrs[
                    "ApproximateNumberOfMessagesNotVisible"] == "0":
                break
            time.sleep(0.002)
        elapsed = time.monotonic() - started
    finally:
        stop(worker)
        sqs.close()
    return {"messages_per_s": count / elapsed, "messages": count, **latency}


def idle_latency(reports: Reports, send_one: Any, samples: int) -> dict[str, float]:
    reports.reset()
    for number in range(1, samples + 1):
        time.sleep(0.05)  # idle: the consumer is waiting in its poll
        send_one()
        reports.wait(number, 30)
    return {f"idle_{k}": v for k, v in percentiles(reports.latencies).items()}


def celery_run(workdir: Path, reports: Reports, count: int) -> dict[str, Any]:
    from worker_tasks import app, noop

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        connection.default_channel.queue_purge(QUEUE) if _queue_exists(connection) else None
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker_tasks", "worker", "--pool", "prefork",
         "--concurrency", str(CONCURRENCY), "-Q", QUEUE, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "error"],
        env=environment(reports, workdir), cwd=workdir, stdout=subprocess.DEVNULL,
    )
    try:
        reports.reset()
        noop.delay(time.time())
        reports.wait(1, 60)
        latency = idle_latency(reports, lambda: noop.delay(time.time()), count // 40)
        reports.reset()
        started = time.monotonic()

        def produce() -> None:
            for _ in range(count):
                noop.delay(time.time())

        threading.Thread(target=produce, daemon=True).start()
        reports.wait(count, 300)
        elapsed = time.monotonic() - started
    finally:
        stop(worker)
    return {"messages_per_s": count / elapsed, "messages": count, **latency}


def _queue_exists(connection: Any) -> bool:
    try:
        connection.default_channel.queue_declare(QUEUE, passive=True)
    except Exception:
        return False
    return True


def check_rabbitmq() -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        raise SystemExit(
            f"RabbitMQ is not reachable at {BROKER} ({exc}): the Celery comparison needs it; "
            "start rabbitmq-server and run again"
        ) from None


def report(result: dict[str, Any]) -> str:
    f = result["figures"]
    rows = [
        "| system | batch size | messages/s | idle p50 (ms) | idle p99 (ms) |",
        "|---|---|---|---|---|",
    ]
    for batch in ("1", "10"):
        run = f["trainmq"][f"batch_{batch}"]
        rows.append(f"| trainmq worker | {batch} | {run['messages_per_s']:,.0f} | "
                    f"{run['idle_p50_ms']:.2f} | {run['idle_p99_ms']:.2f} |")
    c = f["celery"]
    rows.append(f"| Celery + RabbitMQ (acks_late) | 1 (prefetch 4) | {c['messages_per_s']:,.0f} | "
                f"{c['idle_p50_ms']:.2f} | {c['idle_p99_ms']:.2f} |")
    lines = [*rows, "", "targets:"]
    for name, judged in result["targets"].items():
        lines.append(f"  {name}: {judged['value']:.2f} vs target {judged['target']:.2f}"
                     f" -> {'met' if judged['met'] else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (< 60 s in all)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dir", type=Path, default=Path(".trainmq/bench"), help="database dir")
    args = parser.parse_args(argv)
    check_rabbitmq()
    count = 2000 if args.quick else 20000
    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="worker-", dir=args.dir)).resolve()
    shutil.copy(HERE / "worker_tasks.py", workdir)
    reports = Reports()
    try:
        figures = {
            "trainmq": {f"batch_{b}": trainmq_run(workdir, reports, b, count) for b in (1, 10)},
            "celery": celery_run(workdir, reports, count),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    t = figures["trainmq"]
    targets = {
        "batch10_messages_per_s": (t["batch_10"]["messages_per_s"], 5000.0, True),
        "batch1_vs_celery": (t["batch_1"]["messages_per_s"] / figures["celery"]["messages_per_s"],
                             1.0, True),
        "idle_p50_ms": (t["batch_10"]["idle_p50_ms"], 5.0, False),
    }
    result = {
        "figures": figures,
        "targets": {n: {"value": v, "target": g, "met": v >= g if up else v <= g}
                    for n, (v, g, up) in targets.items()},
        "settings": {"concurrency": CONCURRENCY, "messages": count, "cores": os.cpu_count(),
                     "durability": "full"},
    }
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
