"""Idle benchmark: what a waiting `trainmq worker` and `trainmq serve` cost, how fast they wake.

Run as ``python bench/worker_idle.py [--quick] [--json PATH] [--dir DIR]``;
``measure_idle(quick)`` returns the same figures to other benchmarks.

**Worker.** A real ``trainmq worker`` (no-op handler, batch 10, concurrency 2)
on an embedded database.  Idle CPU: user + system time of the worker and its
handler processes, read from ``/proc``, over 10 s (``--quick``: 3 s) with an
empty queue, as % of one core.  Pickup latency: this process (another process
than the worker) sends one message at a time, 50 ms apart; from just before
the send to the start of the handler, p50/p99.

**Server.** A real ``trainmq serve`` on the same kind of database, one client
long-polling it over HTTP.  Idle CPU: the server process over the same span.
Wake-up latency: this process sends into the database directly (a commit by
another process than the server); from just before the send to the long
poll's answer arriving at the client, p50/p99.

Targets (issue: "idle worker"): p50 pickup <= 5 ms with < 2 % of a core used
while idle; the server's figures are judged against the same bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
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
# ``bench/http.py`` would shadow the standard library's ``http``: this folder goes last.
sys.path[:] = [str(REPO / "src"), *(p for p in sys.path if Path(p or ".").resolve() != HERE),
               str(HERE)]

import http.client  # noqa: E402

import trainmq  # noqa: E402
from trainmq.queue.sqlite import wakeup  # noqa: E402

TARGET_P50_MS = 5.0
TARGET_CPU_PERCENT = 2.0
GAP = 0.05  # seconds between sends: the consumer is back in its wait before each
UDP_ENV = "TRAINMQ_IDLE_UDP"
HANDLER = f'''
import json, os, socket, time
_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_port = int(os.environ["{UDP_ENV}"])

def handle(event, context):
    started = time.time()
    for record in event["Records"]:
        sent = json.loads(record["body"])["t"]
        _socket.sendto(json.dumps([sent, started]).encode(), ("127.0.0.1", _port))
'''


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and every live descendant, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew, tree = bool(more), tree | more
    return sum(times.get(pid, 0.0) for pid in tree)


def idle_cpu_percent(pid: int, seconds: float) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def sample_latency(send_one: Callable[[float], None], arrived: queue.Queue[float],
                   samples: int) -> list[float]:
    """Send ``samples`` messages one at a time; seconds from each send to its arrival."""
    latencies = []
    for _ in range(samples):
        time.sleep(GAP)
        sent = time.time()
        send_one(sent)
        latencies.append(arrived.get(timeout=30) - sent)
    return latencies


def measure_worker(workdir: Path, quick: bool) -> dict[str, Any]:
    db = workdir / "worker.db"
    (workdir / "idle_handler.py").write_text(HANDLER)
    reports = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    reports.bind(("127.0.0.1", 0))
    started: queue.Queue[float] = queue.Queue()

    def read_reports() -> None:
        while True:
            _sent, start = json.loads(reports.recv(4096))
            started.put(start)

    threading.Thread(target=read_reports, daemon=True).start()
    sqs = trainmq.client(str(db))
    url = sqs.create_queue(QueueName="idle", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINMQ_")}
    env[UDP_ENV] = str(reports.getsockname()[1])
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), str(REPO / "src")])
    worker = subprocess.Popen(
        [sys.executable, "-m", "trainmq", "worker", "idle_handler:handle", "--queue", "idle",
         "--db", str(db), "--batch-size", "10", "--concurrency", "2", "--timeout", "10",
         "--no-dlq", "--log-level", "error"], env=env, cwd=workdir)

    def send(sent: float) -> None:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"t": sent}))

    try:
        send(time.time())
        started.get(timeout=60)  # warm: the worker and its handler processes are up
        time.sleep(1.0)  # let start-up work settle before measuring idleness
        cpu = idle_cpu_percent(worker.pid, 3.0 if quick else 10.0)
        latencies = sample_latency(send, started, 30 if quick else 200)
    finally:
        stop(worker)
        sqs.close()
        reports.close()
    return {"idle_cpu_percent": cpu, **{f"pickup_{k}": v for k, v in
                                        percentiles(latencies).items()}}


class LongPoller:
    """One client long-polling ``trainmq serve`` over HTTP, forever, on a thread."""

    def __init__(self, port: int, url: str) -> None:
        self.arrived: queue.Queue[float] = queue.Queue()
        self._port, self._url = port, url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        body = json.dumps({"QueueUrl": self._url, "WaitTimeSeconds": 20,
                           "MaxNumberOfMessages": 10}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": "AmazonSQS.ReceiveMessage"}
        while not self._stop.is_set():
            try:
                connection.request("POST", "/", body, headers)
                answer = json.loads(connection.getresponse().read() or b"{}")
            except OSError:
                return  # the server stopped
            for _ in answer.get("Messages", []):
                self.arrived.put(time.time())

    def stop(self) -> None:
        self._stop.set()


def measure_server(workdir: Path, quick: bool) -> dict[str, Any]:
    db = workdir / "serve.db"
    sqs = trainmq.client(str(db))
    url = sqs.create_queue(QueueName="idle", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "trainmq", "serve", "--db", str(db), "--port", str(port),
         "--no-console", "--log-level", "warning"],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")}, cwd=workdir)
    poller = None
    try:
        _wait_for_health(port)
        served_url = f"http://127.0.0.1:{port}/000000000000/idle"
        poller = LongPoller(port, served_url)
        time.sleep(1.0)  # the poll is waiting
        cpu = idle_cpu_percent(server.pid, 3.0 if quick else 10.0)
        latencies = sample_latency(
            lambda sent: sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"t": sent})),
            poller.arrived, 20 if quick else 200)
    finally:
        if poller is not None:
            poller.stop()
        stop(server)
        sqs.close()
    return {"idle_cpu_percent": cpu, **{f"wake_{k}": v for k, v in
                                        percentiles(latencies).items()}}


def _wait_for_health(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("trainmq serve did not answer /health") from None
        time.sleep(0.05)


def measure_idle(quick: bool, directory: Path | None = None) -> dict[str, Any]:
    """Every figure of this benchmark, with its target judged."""
    workdir = Path(tempfile.mkdtemp(prefix="idle-", dir=directory)).resolve()
    watch = wakeup.open_watch(workdir / "worker.db")
    mode = "inotify" if watch is not None else "data_version poll"
    if watch is not None:
        watch.close()
    try:
        figures = {"worker": measure_worker(workdir, quick),
                   "serve": measure_server(workdir, quick)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    bounds = {
        "worker_pickup_p50_ms": (figures["worker"]["pickup_p50_ms"], TARGET_P50_MS),
        "worker_idle_cpu_percent": (figures["worker"]["idle_cpu_percent"], TARGET_CPU_PERCENT),
        "serve_wake_p50_ms": (figures["serve"]["wake_p50_ms"], TARGET_P50_MS),
        "serve_idle_cpu_percent": (figures["serve"]["idle_cpu_percent"], TARGET_CPU_PERCENT),
    }
    targets = {name: {"value": value, "target": bound, "met": value <= bound}
               for name, (value, bound) in bounds.items()}
    return {"figures": figures, "targets": targets,
            "conditions": {"cores": os.cpu_count(), "load_average": os.getloadavg(),
                           "wake_mode": mode, "quick": quick}}


def report(result: dict[str, Any]) -> str:
    lines = ["| figure | measured | target | |", "|---|---|---|---|"]
    units = {"ms": "ms", "percent": "% of a core"}
    for name, judged in result["targets"].items():
        unit = units["ms"] if name.endswith("_ms") else units["percent"]
        lines.append(f"| {name} | {judged['value']:.2f} {unit} | <= {judged['target']:g} {unit} "
                     f"| {'met' if judged['met'] else 'MISSED'} |")
    w, s = result["figures"]["worker"], result["figures"]["serve"]
    lines.append(f"\nworker pickup p99 {w['pickup_p99_ms']:.2f} ms; serve wake-up p99 "
                 f"{s['wake_p99_ms']:.2f} ms; cross-process wake-ups by "
                 f"{result['conditions']['wake_mode']}; load average "
                 f"{result['conditions']['load_average'][0]:.2f} on "
                 f"{result['conditions']['cores']} cores")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s idle spans, fewer samples")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dir", type=Path, default=Path(".trainmq/bench"), help="scratch dir")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    result = measure_idle(args.quick, args.dir)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
