"""Where one send, receive and delete of the embedded engine spend their time.

Run as ``python bench/engine_budget.py [--count N] [--dir DIR] [--json PATH]``.

One thread sends ``N`` messages one at a time, then receives and deletes them
one at a time, through the boto3-shaped in-process client (``trainmq.client``)
with ``durability="full"``, on a warm queue.  Timers wrapped around the layers
of the stack split every call into phases, so that the phases of one call add
up to its total:

- SQS layer: parsing, validation and response shapes (the client call, less
  the engine call), MD5s excluded;
- MD5s: the digests of body and attributes;
- SQL: the engine's statements (``messages.send``/``claim``/``delete``);
- BEGIN: the ``BEGIN IMMEDIATE`` that takes SQLite's write lock;
- commit and fsync: the ``COMMIT`` (writing the WAL, then its fsync where the
  promise needs one: sends and deletes, not receive claims);
- group committer: the rest of the engine call (queueing, the leader's
  bookkeeping, switching ``synchronous``).

The timers cost about a microsecond a phase, which the SQL and commit figures
include.  Thread hand-offs are measured apart: one wake-up of a blocked thread
by another, as the group committer's leader wakes each caller whose operation
rode in its commit, through a lock (this engine) and through an Event (what
it used before).  Figures are medians per call; ``valgrind --tool=callgrind``
counts instructions where a repeatable figure is needed (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trainmq
from trainmq.queue import messaging
from trainmq.queue.sqlite import messages

BODY = json.dumps({"doc": "d-000000", "text": "lorem ipsum " * 7})
QUEUE = "budget"
PHASES = ("sqs_layer", "md5", "sql", "begin", "commit", "committer", "total")
LABELS = {
    "sqs_layer": "SQS layer: parsing, validation, response",
    "md5": "MD5s",
    "sql": "SQL statements",
    "begin": "BEGIN IMMEDIATE",
    "commit": "COMMIT: WAL write + fsync",
    "committer": "group committer",
    "total": "total",
}


class Clock:
    """Seconds spent in each phase (and in the engine's methods) since the last ``take``."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys((*PHASES, "engine"), 0.0)

    def wrap(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[phase] += time.perf_counter() - start

        return timed

    def take(self) -> dict[str, float]:
        taken, self.spent = self.spent, dict.fromkeys((*PHASES, "engine"), 0.0)
        return taken


class TimedConnection:
    """The engine's writer connection, timing its BEGIN and COMMIT statements."""

    def __init__(self, conn: Any, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    def execute(self, sql: str, *args: Any) -> Any:
        phase = {"BEGIN IMMEDIATE": "begin", "COMMIT": "commit"}.get(sql)
        if phase is None:
            return self._conn.execute(sql, *args)
        start = time.perf_counter()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self._clock.spent[phase] += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


_ENGINE_METHODS = ("send_messages", "receive_messages", "delete_messages")


@contextmanager
def instrumented(backend: Any, clock: Clock) -> Iterator[None]:
    """Timers around the engine's methods, the MD5s, the engine's SQL and its BEGIN and
    COMMIT, for the duration of the block."""
    committer = backend._database.committer
    patched = [
        (module, name, getattr(module, name), "md5" if name.startswith("md5") else "sql")
        for module, names in (
            (messaging, ("md5_of_body", "md5_of_bytes", "md5_of_attributes")),
            (messages, ("send", "claim", "delete")),
        )
        for name in names
        if hasattr(module, name)
    ]
    connection = committer._conn
    try:
        for module, name, fn, phase in patched:
            setattr(module, name, clock.wrap(phase, fn))
        for name in _ENGINE_METHODS:
            setattr(backend, name, clock.wrap("engine", getattr(backend, name)))
        committer._conn = TimedConnection(connection, clock)
        yield
    finally:
        committer._conn = connection
        for name in _ENGINE_METHODS:
            delattr(backend, name)
        for module, name, fn, _ in patched:
            setattr(module, name, fn)


def phases_of(call: Callable[[], Any], clock: Clock) -> tuple[dict[str, float], Any]:
    """The seconds of each phase of one call, and what it returned."""
    clock.take()
    start = time.perf_counter()
    result = call()
    total = time.perf_counter() - start
    phases = clock.take()
    inside = phases["sql"] + phases["begin"] + phases["commit"]
    phases["committer"] = phases["engine"] - inside
    phases["sqs_layer"] = total - phases["engine"] - phases["md5"]
    phases["total"] = total
    return phases, result


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {phase: statistics.median(s[phase] for s in samples) * 1e6 for phase in PHASES}


def budget(directory: Path, count: int) -> dict[str, Any]:
    client: Any = trainmq.client(str(directory / "queues.db"), durability="full")
    try:
        url = client.create_queue(QueueName=QUEUE)["QueueUrl"]
        entries = [{"Id": str(i), "MessageBody": BODY} for i in range(10)]
        for _ in range(300):  # a warm queue: the WAL at its working size, pages cached
            client.send_message_batch(QueueUrl=url, Entries=entries)
        clock = Clock()
        samples: dict[str, list[dict[str, float]]] = {"send": [], "receive": [], "delete": []}
        with instrumented(client.service.backend, clock):
            for _ in range(count):
                phases, _ = phases_of(
                    lambda: client.send_message(QueueUrl=url, MessageBody=BODY), clock
                )
                samples["send"].append(phases)
            for _ in range(count):  # received and deleted in turn, as a consumer does
                phases, handle = phases_of(
                    lambda: client.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"],
                    clock,
                )
                samples["receive"].append(phases)
                phases, _ = phases_of(
                    lambda h=handle: client.delete_message(QueueUrl=url, ReceiptHandle=h), clock
                )
                samples["delete"].append(phases)
        figures: dict[str, Any] = {op: medians(values) for op, values in samples.items()}
    finally:
        client.close()
    figures["hand_off_lock"] = hand_off(count * 10, lock=True)
    figures["hand_off_event"] = hand_off(count * 10, lock=False)
    return figures


def hand_off(count: int, *, lock: bool) -> float:
    """µs for one thread to wake another that is blocked (a lock, or an Event)."""
    if lock:
        ping, pong = threading.Lock(), threading.Lock()
        ping.acquire()
        pong.acquire()
        wake_ping, wait_ping = ping.release, ping.acquire
        wake_pong, wait_pong = pong.release, pong.acquire
    else:
        events = [threading.Event(), threading.Event()]

        def waiter(index: int) -> Callable[[], None]:
            def wait() -> None:
                events[index].wait()
                events[index] = threading.Event()

            return wait

        wake_ping, wait_ping = (lambda: events[0].set()), waiter(0)
        wake_pong, wait_pong = (lambda: events[1].set()), waiter(1)

    def partner() -> None:
        for _ in range(count):
            wait_ping()
            wake_pong()

    thread = threading.Thread(target=partner)
    thread.start()
    start = time.perf_counter()
    for _ in range(count):
        wake_ping()
        wait_pong()
    elapsed = time.perf_counter() - start
    thread.join()
    return elapsed / (2 * count) * 1e6


def report(figures: dict[str, Any]) -> str:
    lines = [f"{'µs per call (median)':42s} {'send':>8s} {'receive':>8s} {'delete':>8s}"]
    for phase in PHASES:
        cells = [f"{figures[op][phase]:8.1f}" for op in ("send", "receive", "delete")]
        lines.append(f"{LABELS[phase]:42s} " + " ".join(cells))
    lines.append(
        f"thread hand-off, one wake-up: {figures['hand_off_lock']:.1f} µs through a lock,"
        f" {figures['hand_off_event']:.1f} µs through an Event"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="calls of each operation")
    parser.add_argument("--dir", type=Path, default=Path(".trainmq") / "bench")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        figures = budget(directory, args.count)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
