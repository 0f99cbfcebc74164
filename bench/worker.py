"""Worker benchmark: ``trainmq worker`` against Celery (RabbitMQ broker, acks_late).

Run as ``python bench/worker.py [--quick] [--json PATH] [--dir DIR]``.

No-op handler, concurrency 2 on both sides, three phases per system:

- **drain**: N messages are queued before the worker starts (trainmq:
  SendMessageBatch of 10 into the embedded database with full durability;
  Celery: one publish per task); the clock runs from the first handler start
  until every message was handled and, for trainmq, deleted.  This is the
  worker's own throughput.
- **idle latency**: one message at a time, 50 ms apart, from just before the
  send call to the start of the handler, p50/p99.
- **end to end**: a producer thread in this process sends N more while the
  worker consumes them (the producer's sends and their fsyncs share the cores).

trainmq runs at batch size 1 and 10 (Celery has no batches: it runs once).
Every figure is printed with its ratio to Celery, and each target with "met"
or "missed".  Celery needs RabbitMQ on 127.0.0.1:5672 (guest/guest); without
it the bench fails with a clear message.
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
from collections.abc import Callable
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
#: name: (what is judged, target, whether higher is better)
TARGETS = {
    "batch10_messages_per_s": ("trainmq batch 10, drain, messages/s", 5000.0, True),
    "batch1_vs_celery": ("trainmq batch 1 drain / Celery drain", 1.5, True),
    "idle_p50_ms": ("trainmq batch 10, idle p50 latency, ms", 5.0, False),
}


class Reports:
    """Datagrams from the handlers: completion counts and latencies."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.count = 0
        self.first: float | None = None  # when the first report since reset() came
        self.latencies: list[float] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            report = json.loads(self.sock.recv(4096))
            with self.changed:
                if self.first is None:
                    self.first = time.monotonic()
                self.count += report["count"]
                self.latencies.append(report["start"] - report["sent"])
                self.changed.notify_all()

    def reset(self) -> None:
        with self.changed:
            self.count, self.latencies, self.first = 0, [], None

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"only {self.count} of {count} messages were handled")
                self.changed.wait(left)

    def rate_since_first(self, count: int) -> float:
        """Messages per second from the first report until now."""
        assert self.first is not None
        return count / (time.monotonic() - self.first)


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


def phases(reports: Reports, count: int, send_all: Callable[[], None], send_one: Callable[[], None],
           settled: Callable[[], None], start: Callable[[], subprocess.Popen[bytes]]
           ) -> dict[str, Any]:
    """Drain, idle latency and end to end, on one worker process that ``start`` starts."""
    send_all()  # the drain phase's backlog, queued before the worker starts
    reports.reset()
    worker = start()
    try:
        reports.wait(count, 300)
        settled()
        drain = reports.rate_since_first(count)
        latency = idle_latency(reports, send_one, count // 40)
        reports.reset()
        started = time.monotonic()
        threading.Thread(target=send_all, daemon=True).start()
        reports.wait(count, 300)
        settled()
        elapsed = time.monotonic() - started
    finally:
        stop(worker)
    return {"drain_messages_per_s": drain, "messages_per_s": count / elapsed,
            "messages": count, **latency}


def trainmq_run(workdir: Path, reports: Reports, batch: int, count: int) -> dict[str, Any]:
    db = workdir / f"queues-{batch}.db"
    sqs = trainmq.client(str(db))
    url = sqs.create_queue(QueueName="bench", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]

    def send_all() -> None:
        for first in range(0, count, 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps({"t": time.time()})}
                       for i in range(min(10, count - first))]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def send_one() -> None:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"t": time.time()}))

    def deleted() -> None:
        while True:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            if attrs["ApproximateNumberOfMessages"] == attrs[
                    "ApproximateNumberOfMessagesNotVisible"] == "0":
                return
            time.sleep(0.002)  # poll interval of the end-of-phase check

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "trainmq", "worker", "worker_tasks:handle", "--queue", "bench",
             "--db", str(db), "--batch-size", str(batch), "--concurrency", str(CONCURRENCY),
             "--timeout", "10", "--no-dlq", "--log-level", "error"],
            env=environment(reports, workdir), cwd=workdir,
        )

    try:
        return phases(reports, count, send_all, send_one, deleted, start)
    finally:
        sqs.close()


def idle_latency(reports: Reports, send_one: Callable[[], None], samples: int
                 ) -> dict[str, float]:
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

    def send_all() -> None:
        for _ in range(count):
            noop.delay(time.time())

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker_tasks", "worker", "--pool", "prefork",
             "--concurrency", str(CONCURRENCY), "-Q", QUEUE, "--without-gossip",
             "--without-mingle", "--without-heartbeat", "--loglevel", "error"],
            env=environment(reports, workdir), cwd=workdir, stdout=subprocess.DEVNULL,
        )

    # acks_late: a task is acknowledged once it ran; the report comes from inside it.
    return phases(reports, count, send_all, lambda: noop.delay(time.time()), lambda: None, start)


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


def judge(figures: dict[str, Any]) -> dict[str, Any]:
    t, c = figures["trainmq"], figures["celery"]
    values = {
        "batch10_messages_per_s": t["batch_10"]["drain_messages_per_s"],
        "batch1_vs_celery": t["batch_1"]["drain_messages_per_s"] / c["drain_messages_per_s"],
        "idle_p50_ms": t["batch_10"]["idle_p50_ms"],
    }
    return {
        name: {"what": what, "value": values[name], "target": target, "higher_is_better": up,
               "met": values[name] >= target if up else values[name] <= target}
        for name, (what, target, up) in TARGETS.items()
    }


def report(result: dict[str, Any]) -> str:
    f = result["figures"]
    celery = f["celery"]
    rows = [
        "| system | batch size | drain msg/s | x Celery | end to end msg/s | x Celery "
        "| idle p50 (ms) | idle p99 (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    runs = [(f"trainmq worker | {b}", f["trainmq"][f"batch_{b}"]) for b in ("1", "10")]
    runs.append(("Celery + RabbitMQ (acks_late) | 1 (prefetch 4)", celery))
    for name, run in runs:
        drain, flow = run["drain_messages_per_s"], run["messages_per_s"]
        rows.append(
            f"| {name} | {drain:,.0f} | {drain / celery['drain_messages_per_s']:.2f} | "
            f"{flow:,.0f} | {flow / celery['messages_per_s']:.2f} | "
            f"{run['idle_p50_ms']:.2f} | {run['idle_p99_ms']:.2f} |"
        )
    lines = [*rows, "", "targets:"]
    for name, judged in result["targets"].items():
        sign = ">=" if judged["higher_is_better"] else "<="
        lines.append(f"  {name} ({judged['what']}): {judged['value']:,.2f}, target {sign} "
                     f"{judged['target']:,.2f} -> {'met' if judged['met'] else 'missed'}")
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
    result = {
        "figures": figures,
        "targets": judge(figures),
        "settings": {"concurrency": CONCURRENCY, "messages": count, "cores": os.cpu_count(),
                     "durability": "full", "load_average": os.getloadavg()},
    }
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
