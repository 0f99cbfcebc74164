"""trainmq on PostgreSQL against the SQLite engine, procrastinate, pgqueuer and a floor.

    python bench/postgres.py [--messages N] [--quick] [--json out.json] [--dir DIR]

Workload, the same for every system: send one message at a time; send batches
of 10; receive + delete one at a time; receive + delete batches of 10; four
concurrent consumers doing receive + delete one at a time.  For procrastinate
and pgqueuer a send is ``defer``/``enqueue`` and a receive + delete is their
worker's fetch + complete.  The floor is a hand-written ``SKIP LOCKED`` queue
(one statement per operation): what PostgreSQL itself costs on this machine.

The server is ``TRAINMQ_BENCH_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each run uses fresh schemas
and drops them.  The table ends with the issue's targets and whether they hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from postgres_systems import BATCH, TrainmqQueue, async_opener, drop_schema, sync_opener

SERVER = os.environ.get("TRAINMQ_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SYNC_SYSTEMS = ("trainmq-postgres", "trainmq-sqlite", "floor")
ASYNC_SYSTEMS = ("procrastinate", "pgqueuer")
SCENARIOS = ("send_1", "send_batch_10", "receive_delete_1", "receive_delete_batch_10",
             "consumers_4")
CONSUMERS = 4


def _bodies(n: int) -> list[str]:
    return [json.dumps({"n": i, "pad": "x" * 100}) for i in range(n)]


def _sync_scenario(open_queue: Callable[[str, bool], Any], scenario: str, n: int) -> float:
    """Messages per second of one scenario on a fresh queue."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    queue = open_queue(schema, True)
    extra: list[Any] = []
    try:
        bodies = _bodies(n)
        if scenario.startswith(("receive", "consumers")):
            for start in range(0, n, BATCH):
                queue.send_batch(bodies[start : start + BATCH])
        started = time.perf_counter()
        if scenario == "send_1":
            for body in bodies:
                queue.send(body)
        elif scenario == "send_batch_10":
            for start in range(0, n, BATCH):
                queue.send_batch(bodies[start : start + BATCH])
        elif scenario == "consumers_4":
            # trainmq: one client for the four threads, as `trainmq worker --concurrency 4`
            # runs; the floor: a connection per consumer.
            shared = queue if isinstance(queue, TrainmqQueue) else None
            extra = [shared or open_queue(schema, False) for _ in range(CONSUMERS)]
            _threads([lambda q=q: _drain(q.receive_delete) for q in extra])
        else:
            step = queue.receive_delete if scenario == "receive_delete_1" else (
                queue.receive_delete_batch
            )
            _drain(step)
        elapsed = time.perf_counter() - started
    finally:
        for other in extra:
            if other is not queue:
                other.close()
        queue.close()
        drop_schema(SERVER, schema)
    return n / elapsed


def _drain(step: Callable[[], int]) -> None:
    while step() > 0:
        pass


def _threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


async def _async_scenario(name: str, scenario: str, n: int) -> float | None:
    open_queue = async_opener(name, SERVER)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    queue = await open_queue(schema, True)
    extra: list[Any] = []
    try:
        bodies = _bodies(n)
        if scenario.startswith(("receive", "consumers")):
            for start in range(0, n, BATCH):
                await queue.send_batch(bodies[start : start + BATCH])
        if scenario == "receive_delete_batch_10" and await queue.receive_delete_batch() < 0:
            return None
        started = time.perf_counter()
        if scenario == "send_1":
            for body in bodies:
                await queue.send(body)
        elif scenario == "send_batch_10":
            for start in range(0, n, BATCH):
                await queue.send_batch(bodies[start : start + BATCH])
        elif scenario == "consumers_4":
            extra = [await open_queue(schema, False) for _ in range(CONSUMERS)]
            await asyncio.gather(*(_drain_async(q.receive_delete) for q in extra))
        else:
            step = queue.receive_delete if scenario == "receive_delete_1" else (
                queue.receive_delete_batch
            )
            await _drain_async(step)
        elapsed = time.perf_counter() - started
    finally:
        for other in extra:
            await other.close()
        await queue.close()
        drop_schema(SERVER, schema)
    return n / elapsed


async def _drain_async(step: Callable[[], Any]) -> None:
    while await step() > 0:
        pass


def measure(n: int, workdir: Path) -> dict[str, dict[str, float | None]]:
    results: dict[str, dict[str, float | None]] = {}
    for name in SYNC_SYSTEMS:
        opener = sync_opener(name, SERVER, workdir)
        results[name] = {s: _sync_scenario(opener, s, n) for s in SCENARIOS}
    for name in ASYNC_SYSTEMS:
        results[name] = {s: asyncio.run(_async_scenario(name, s, n)) for s in SCENARIOS}
    return results


def targets(results: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    """The issue's targets: each a ratio trainmq must reach, and what it reached."""
    ours = results["trainmq-postgres"]

    def best_peer(scenario: str) -> float:
        return max(results[p][scenario] or 0.0 for p in ASYNC_SYSTEMS)

    checks = [
        ("batched sends >= 1.5x the better peer's batch enqueue", "send_batch_10",
         best_peer("send_batch_10"), 1.5),
        ("receive+delete, 4 consumers >= 1.5x the better peer's fetch+complete", "consumers_4",
         best_peer("consumers_4"), 1.5),
        ("single send within 1.5x of the floor", "send_1", results["floor"]["send_1"], 1 / 1.5),
        ("single receive+delete within 1.5x of the floor", "receive_delete_1",
         results["floor"]["receive_delete_1"], 1 / 1.5),
    ]
    report = []
    for label, scenario, reference, factor in checks:
        value = ours[scenario] or 0.0
        ratio = value / reference if reference else float("inf")
        report.append(
            {"target": label, "scenario": scenario, "ratio": ratio, "needed": factor,
             "met": ratio >= factor}
        )
    return report


def print_table(results: dict[str, dict[str, float | None]], checks: list[dict[str, Any]],
                n: int) -> None:
    names = list(results)
    print(f"messages per second, {n} messages per scenario (higher is better)")
    print(f"{'scenario':<26}" + "".join(f"{name:>18}" for name in names))
    for scenario in SCENARIOS:
        cells = []
        for name in names:
            value = results[name][scenario]
            cells.append(f"{'n/a':>18}" if value is None else f"{value:>18,.0f}")
        print(f"{scenario:<26}" + "".join(cells))
    print()
    for check in checks:
        verdict = "met" if check["met"] else "NOT met"
        print(f"{check['target']:<72} {check['ratio']:6.2f}x (needs {check['needed']:.2f}x)"
              f"  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="a few messages: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--dir", type=Path, help="folder for the SQLite engine's files")
    args = parser.parse_args()
    n = 40 if args.quick else args.messages
    with tempfile.TemporaryDirectory(prefix="trainmq-bench-pg-") as scratch:
        results = measure(n, args.dir or Path(scratch))
    checks = targets(results)
    print_table(results, checks, n)
    if args.json:
        args.json.write_text(json.dumps({"messages": n, "results": results, "targets": checks}))


if __name__ == "__main__":
    main()
