"""Where one send, receive and delete of the embedded engine spend their time.

Run as ``python bench/engine_budget.py [--count N] [--dir DIR] [--json PATH]``.

Each phase is timed on its own, in one thread, on a warm database (a queue
that has already taken a few thousand messages), and subtracted from the
layer above it:

- total: the boto3-shaped in-process client (``trainmq.client``) with
  ``durability="full"``, as an application calls it;
- commit/fsync: total minus the same call with ``durability="normal"`` (the
  commit's fsync; a receive's claim has none);
- SQS layer (parsing, validation, response shapes): the client call minus the
  engine's own call (``SqliteBackend.send_messages`` and so on), MD5s excluded;
- MD5s: the body digest (the messages here have no attributes);
- SQL: the engine's statements alone (``messages.send``/``claim``/``delete``)
  inside one open transaction that is rolled back at the end;
- transaction: ``BEGIN IMMEDIATE`` and a ``COMMIT`` that writes the WAL but
  does not fsync;
- group committer: an empty operation through it, less an empty transaction;
- thread hand-off: one wake-up of a waiting caller by the group's leader,
  timed as a ping-pong between two threads (each concurrent send that rides in
  another caller's commit costs one).

Each figure is the fastest of a few repeats (the one least disturbed by other
work on the machine); they still move by 10-20 % from run to run, and
``valgrind --tool=callgrind`` (instruction counts) is the repeatable check
(see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trainmq
from trainmq.queue.md5 import md5_of_body
from trainmq.queue.model import ReceiveRequest
from trainmq.queue.sqlite import messages

BODY = json.dumps({"doc": "d-000000", "text": "lorem ipsum " * 7})
QUEUE = "budget"
REPEATS = 7


def per_call(run: Callable[[int], None], count: int) -> float:
    """Median µs per call of ``run(count)`` over a few repeats."""
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(count)
        samples.append((time.perf_counter() - start) / count * 1e6)
    return min(samples)


class Setup:
    """One client (and its service, engine and writer connection) on a warm queue."""

    def __init__(self, directory: Path, durability: str, backlog: int) -> None:
        self.client: Any = trainmq.client(str(directory / "queues.db"), durability=durability)
        self.url = self.client.create_queue(QueueName=QUEUE)["QueueUrl"]
        self.service = self.client.service
        self.backend = self.service.backend
        self.conn = self.backend._database.committer._conn
        entries = [{"Id": str(i), "MessageBody": BODY} for i in range(10)]
        for _ in range(backlog // 10):
            self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
        self.message = self.service._new_message({"MessageBody": BODY}, self.record())

    def record(self) -> Any:
        return self.service.cached_queue(QUEUE)

    def send(self, count: int) -> None:
        for _ in range(count):
            self.client.send_message(QueueUrl=self.url, MessageBody=BODY)

    def engine_send(self, count: int) -> None:
        for _ in range(count):
            self.backend.send_messages(QUEUE, [self.message])

    def receive(self, count: int) -> list[str]:
        handles = []
        for _ in range(count):
            found = self.client.receive_message(QueueUrl=self.url)["Messages"]
            handles.append(found[0]["ReceiptHandle"])
        return handles

    def delete(self, handles: list[str]) -> None:
        for handle in handles:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=handle)

    def close(self) -> None:
        self.client.close()


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def split(
    count: int, receive: Callable[[], list[str]], delete: Callable[[list[str]], None]
) -> tuple[float, float]:
    """µs per receive and per delete of ``count`` messages, each timed on its own."""
    receives, deletes = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        handles = receive()
        received = time.perf_counter()
        delete(handles)
        receives.append((received - start) / count * 1e6)
        deletes.append((time.perf_counter() - received) / count * 1e6)
    return min(receives), min(deletes)


def in_transaction(setup: Setup, count: int) -> dict[str, float]:
    """µs per statement group of send, claim and delete, in one rolled-back transaction."""
    conn, now = setup.conn, int(time.time() * 1000)
    request = ReceiveRequest(1, 0, None, None)
    figures: dict[str, list[float]] = {"send": [], "receive": [], "delete": []}
    clock = time.perf_counter
    for _ in range(REPEATS):
        spent = {"send": 0.0, "receive": 0.0, "delete": 0.0}
        conn.execute("BEGIN IMMEDIATE")
        try:
            for _ in range(count):
                start = clock()
                messages.send(conn, QUEUE, [setup.message], now)
                sent = clock()
                claimed = messages.claim(conn, QUEUE, request, now, setup.backend.arn)
                received = clock()
                messages.delete(conn, QUEUE, [claimed[0].receipt_handle], now)
                spent["send"] += sent - start
                spent["receive"] += received - sent
                spent["delete"] += clock() - received
        finally:
            conn.execute("ROLLBACK")
        for key, seconds in spent.items():
            figures[key].append(seconds / count * 1e6)
    return {key: min(values) for key, values in figures.items()}


def committer_cost(setup: Setup, count: int) -> float:
    """µs the group committer adds to a lone caller: an empty operation through it,
    less an empty transaction on the bare connection."""
    committer, conn = setup.backend._database.committer, setup.conn

    def through(n: int) -> None:
        for _ in range(n):
            committer.submit(lambda c: None)

    def bare(n: int) -> None:
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("COMMIT")

    return per_call(through, count) - per_call(bare, count)


def hand_off(count: int) -> float:
    """µs for one thread to wake another blocked on a lock (what a group's follower costs)."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def partner() -> None:
        for _ in range(count):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=partner)
    thread.start()
    start = time.perf_counter()
    for _ in range(count):
        ping.release()
        pong.acquire()
    elapsed = time.perf_counter() - start
    thread.join()
    return elapsed / (2 * count) * 1e6


def budget(root: Path, count: int) -> dict[str, Any]:
    full = Setup(Path(tempfile.mkdtemp(dir=root)), "full", 4 * count * REPEATS)
    normal = Setup(Path(tempfile.mkdtemp(dir=root)), "normal", 4 * count * REPEATS)
    request = ReceiveRequest(1, 0, None, None)
    engine = normal.backend

    def engine_receive() -> list[str]:
        return [engine.receive_messages(QUEUE, request)[0].receipt_handle for _ in range(count)]

    def engine_delete(handles: list[str]) -> None:
        for handle in handles:
            engine.delete_messages(QUEUE, [handle])

    try:
        totals = {
            "send": {
                "full": per_call(full.send, count),
                "normal": per_call(normal.send, count),
                "engine": per_call(normal.engine_send, count),
            }
        }
        for setup, label in ((full, "full"), (normal, "normal")):
            received, deleted = split(count, lambda s=setup: s.receive(count), setup.delete)
            totals.setdefault("receive", {})[label] = received
            totals.setdefault("delete", {})[label] = deleted
        totals["receive"]["engine"], totals["delete"]["engine"] = split(
            count, engine_receive, engine_delete
        )
        sql = in_transaction(normal, count)
        committer = committer_cost(normal, count)
        md5 = per_call(lambda n: [md5_of_body(BODY) for _ in range(n)], count)
    finally:
        full.close()
        normal.close()
    figures: dict[str, Any] = {}
    for op, measured in totals.items():
        digests = md5 if op == "send" else 0.0
        figures[op] = {
            "sqs_layer": measured["normal"] - measured["engine"] - digests,
            "md5": digests,
            "sql": sql[op],
            "transaction": measured["engine"] - sql[op] - committer,
            "committer": committer,
            "fsync": measured["full"] - measured["normal"],
            "total": measured["full"],
        }
    figures["hand_off"] = hand_off(count * 10)
    return figures


ROWS = (
    ("sqs_layer", "SQS layer: parsing, validation, response"),
    ("md5", "MD5s"),
    ("sql", "SQL statements"),
    ("transaction", "BEGIN + COMMIT (WAL write, no fsync)"),
    ("committer", "group committer bookkeeping"),
    ("fsync", "commit fsync"),
    ("total", "total (client, durability=full)"),
)


def report(figures: dict[str, Any]) -> str:
    lines = [f"{'µs per operation':42s} {'send':>8s} {'receive':>8s} {'delete':>8s}"]
    for key, label in ROWS:
        cells = [f"{figures[op][key]:8.1f}" for op in ("send", "receive", "delete")]
        lines.append(f"{label:42s} " + " ".join(cells))
    lines.append(f"thread hand-off (one wake-up of a waiting caller): {figures['hand_off']:.1f} µs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="operations per sample")
    parser.add_argument("--dir", type=Path, default=Path(".trainmq") / "bench")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        figures = budget(root, args.count)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
