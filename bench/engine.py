"""Engine benchmark: trainmq's SQLite engine against persist-queue and litequeue.

Run as ``python bench/engine.py [--quick] [--json PATH] [--dir DIR]``.

Every queue runs on the same disk, in a fresh database per measurement, with
the durability trainmq promises by default: SQLite in WAL mode with
``synchronous=FULL``, so a send or delete returns only after its fsync
(trainmq ``durability="full"``; the peers fsync every commit, their receives
too, where trainmq's receive claims skip it, as its durability contract allows).
Each measurement first runs its operation untimed (a warm-up: the first few
hundred commits of a new database grow its WAL file, which costs every queue
extra once per file, not on a long-lived queue), then stops after a fixed
number of calls or a fixed time, whichever comes first. The figures are
messages per second. The systems of a scenario hold their queues open at
once and run in turns of 50 calls, with a turn of raw write+fsyncs among them:
on a shared machine the disk's speed drifts by an order of magnitude within
seconds, and short turns let every system, and the fsync probe, see the same
drift, so that the ratios within a scenario hold.

Beside them the run prints the limits it measured: the disk's raw write+fsync
rate (one thread committing one message at a time cannot beat it without
skipping the fsync) and "SQLite alone", trainmq's own statements and fsyncs on
its own schema with no Python around them (``engine_systems.SqliteFloor``).
Each target is a ratio within this run: to the better peer, to the fsync rate,
or to trainmq's own single-thread figure, and is printed as met or missed.

The databases go in a temporary folder under ``./.trainmq/bench`` (``--dir``
to change it), never in a RAM-backed file system where fsync costs nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from disk import file_system_type, fsync_rate
from engine_systems import BATCH, SQLITE_FLOOR, SYSTEMS, TRAINMQ, System

BODY = json.dumps({"doc": "d-000000", "text": "lorem ipsum " * 7})
THREADS = 8
RAM_FILE_SYSTEMS = {"tmpfs", "ramfs"}


@dataclass(frozen=True)
class Budget:
    calls: int  # per measurement
    seconds: float  # per measurement
    warmup: int  # untimed calls before each measurement, on the same database
    slice_calls: int  # the calls of one system in a row before the next system's turn
    latency_samples: int
    depths: tuple[int, ...]
    peer_max_depth: int  # the peers have no bulk put: loading a million takes minutes


FULL = Budget(3_000, 3.0, 1_000, 50, 1_000, (1_000, 100_000, 1_000_000), 100_000)
QUICK = Budget(300, 0.5, 300, 50, 200, (1_000, 10_000), 10_000)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str


@dataclass(frozen=True)
class Target:
    """trainmq's figure for ``key`` at least ``ratio`` times the figure it is compared with.

    ``against``: "peer" (the better peer's figure for the same scenario), "fsync" (the
    raw fsync rate of the run) or a scenario key (trainmq's own figure for it).
    """

    key: str
    against: str
    ratio: float


SCENARIOS = (
    Scenario("a_send_1_thread", "(a) send, 1 thread, 1 at a time"),
    Scenario("b_send_8_threads", f"(b) send, {THREADS} threads, 1 at a time"),
    Scenario("c_send_batch_10", f"(c) send, batches of {BATCH}"),
    Scenario("d_receive_delete_1", "(d) receive + delete, 1 at a time"),
    Scenario("d_receive_delete_batch_10", f"(d) receive + delete, batches of {BATCH}"),
)
TARGETS = (
    Target("a_send_1_thread", "peer", 1.5),
    Target("a_send_1_thread", "fsync", 0.6),
    Target("b_send_8_threads", "a_send_1_thread", 4.0),
    Target("c_send_batch_10", "fsync", 8.0),
    Target("d_receive_delete_1", "peer", 2.0),
    Target("d_receive_delete_batch_10", "fsync", 5.0),
)
LATENCY_TARGET_RATIO = 2.0
SINGLE = "trainmq, 1 thread"  # measured among (b)'s turns, for (b)'s target
FLOOR = SQLITE_FLOOR.name


# --- timing ------------------------------------------------------------------


def run_slice(call: Callable[[], int], calls: int, threads: int) -> tuple[int, float]:
    """Messages handled and seconds taken by ``calls`` calls, spread over ``threads``."""
    if threads == 1:
        messages, start = 0, time.perf_counter()
        for _ in range(calls):
            handled = call()
            if handled == 0:
                raise RuntimeError("the queue ran out of messages")
            messages += handled
        return messages, time.perf_counter() - start
    tickets = itertools.count()
    handled = [0] * threads
    errors: list[BaseException] = []
    ready = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        ready.wait()
        try:
            while next(tickets) < calls:
                handled[index] += call()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    ready.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(handled), elapsed


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


# --- measurements --------------------------------------------------------------


def fresh_dir(root: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=root))


class Session:
    """One system's open queue for one scenario, on its own fresh database, warmed up."""

    def __init__(
        self, system: System, key: str, root: Path, budget: Budget, name: str | None = None
    ) -> None:
        self.name = name or system.name
        self.directory = fresh_dir(root)
        self.threads = THREADS if key == "b_send_8_threads" else 1
        if key.startswith("d_"):
            per_call = BATCH if key.endswith("batch_10") else 1
            system.load(self.directory, (budget.warmup + budget.calls) * per_call, BODY)
        opener = system.open_shared if self.threads > 1 else system.open
        self.queue = opener(self.directory)
        bodies = [BODY] * BATCH
        self.call: Callable[[], int] = {
            "a_send_1_thread": lambda: self.queue.send(BODY),
            "b_send_8_threads": lambda: self.queue.send(BODY),
            "c_send_batch_10": lambda: self.queue.send_batch(bodies),
            "d_receive_delete_1": self.queue.receive_delete,
            "d_receive_delete_batch_10": self.queue.receive_delete_batch,
        }[key]
        run_slice(self.call, budget.warmup, 1)
        self.messages, self.seconds = 0, 0.0

    def run(self, calls: int) -> None:
        messages, seconds = run_slice(self.call, calls, self.threads)
        self.messages += messages
        self.seconds += seconds

    def close(self) -> None:
        try:
            self.queue.close()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class FsyncProbe:
    """The raw write+fsync rate, measured in the same slices as the systems."""

    name = "raw fsync"

    def __init__(self, root: Path) -> None:
        self.path = root / "fsync.probe"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self.messages, self.seconds = 0, 0.0

    def run(self, calls: int) -> None:
        start = time.perf_counter()
        for count in range(calls):
            os.pwrite(self.fd, count.to_bytes(8, "little") * 64, 0)
            os.fsync(self.fd)
        self.seconds += time.perf_counter() - start
        self.messages += calls

    def close(self) -> None:
        os.close(self.fd)
        self.path.unlink()


def interleaved(
    systems: list[System], key: str, root: Path, budget: Budget
) -> tuple[dict[str, float], float]:
    """Messages per second of each system in one scenario, and the raw fsync rate.

    Every system holds its queue open at once; the calls run in short slices, one
    system after another (the order turning each round), with a slice of raw fsyncs
    among them, so that all of them share whatever else the machine and its disk do.
    """
    sessions: list[Any] = [FsyncProbe(root)]
    try:
        for system in systems:
            sessions.append(Session(system, key, root, budget))
        if key == "b_send_8_threads" and TRAINMQ in systems:
            # its target is a ratio to trainmq's single thread: measured in the same turns
            sessions.append(Session(TRAINMQ, "a_send_1_thread", root, budget, SINGLE))
        slices = max(1, budget.calls // budget.slice_calls)
        deadline = time.perf_counter() + budget.seconds * len(sessions)
        for round_ in range(slices):
            turn = round_ % len(sessions)
            for session in sessions[turn:] + sessions[:turn]:
                session.run(budget.slice_calls)
            if time.perf_counter() >= deadline:
                break
        rates = {session.name: session.messages / session.seconds for session in sessions}
    finally:
        for session in sessions:
            session.close()
    return rates, rates.pop(FsyncProbe.name)


def latency(system: System, root: Path, depth: int, budget: Budget) -> dict[str, float]:
    """p50/p99 of receiving one message, and of receiving and deleting it, at ``depth``.

    The queue is filled without fsync (trainmq: ``send_message_batch`` through a
    ``durability="normal"`` client), closed, and reopened with full durability.
    After each timed receive + delete one message is sent (untimed), so the
    depth stays the same throughout.
    """
    directory = fresh_dir(root)
    try:
        system.load(directory, depth, BODY)
        queue = system.open(directory)
        receive_ms: list[float] = []
        cycle_ms: list[float] = []
        deadline = time.perf_counter() + budget.seconds
        try:
            while len(receive_ms) < budget.latency_samples and time.perf_counter() < deadline:
                start = time.perf_counter()
                token = queue.receive_one()
                received = time.perf_counter()
                if token is None:
                    raise RuntimeError(f"{system.name} received nothing with {depth} queued")
                queue.delete(token)
                done = time.perf_counter()
                queue.send(BODY)
                receive_ms.append((received - start) * 1000)
                cycle_ms.append((done - start) * 1000)
        finally:
            queue.close()
        return {
            "receive_p50": percentile(receive_ms, 50),
            "receive_p99": percentile(receive_ms, 99),
            "receive_delete_p50": percentile(cycle_ms, 50),
            "receive_delete_p99": percentile(cycle_ms, 99),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def collect(systems: list[System], root: Path, budget: Budget, say: Callable[[str], None]) -> dict:
    results: dict[str, Any] = {"throughput": {}, "not_applicable": {}, "settings": {}}
    for system in systems:
        directory = fresh_dir(root)
        try:
            system.open(directory).close()
            results["settings"][system.name] = system.settings(directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    measured = [*systems, SQLITE_FLOOR] if TRAINMQ in systems else systems
    results["fsync_probes"] = []
    for scenario in SCENARIOS:
        running = []
        for system in measured:
            reason = system.not_applicable.get(scenario.key)
            if reason is None:
                running.append(system)
            elif system is not SQLITE_FLOOR:
                results["not_applicable"].setdefault(scenario.key, {})[system.name] = reason
        say(f"  {scenario.label}: {', '.join(system.name for system in running)}")
        rates, fsync = interleaved(running, scenario.key, root, budget)
        results["fsync_probes"].append(fsync)
        results.setdefault("fsync_per_s_by_scenario", {})[scenario.key] = fsync
        if FLOOR in rates:
            results.setdefault("limits", {}).setdefault(FLOOR, {})[scenario.key] = rates.pop(FLOOR)
        if SINGLE in rates:
            results.setdefault("same_turns", {})[scenario.key] = {SINGLE: rates.pop(SINGLE)}
        results["throughput"][scenario.key] = rates
    results["latency_ms"] = {}
    for system in systems:
        measured = results["latency_ms"].setdefault(system.name, {})
        for depth in budget.depths:
            if system is not TRAINMQ and depth > budget.peer_max_depth:
                continue
            say(f"  (e) receive latency: {system.name} with {depth:,} queued")
            measured[str(depth)] = latency(system, root, depth, budget)
    return results


# --- report ------------------------------------------------------------------


def fsync_per_s(results: dict) -> float:
    """The disk's raw fsync rate for the ratios: the median of every probe of the run."""
    probes = [results["fsync_per_s"], results["fsync_per_s_after"]]
    probes += results.get("fsync_probes", [])
    return float(statistics.median(probes))


def scenario_fsync(results: dict, key: str) -> float:
    """The raw fsync rate measured interleaved with ``key``'s systems (else the run's)."""
    return float(results.get("fsync_per_s_by_scenario", {}).get(key) or fsync_per_s(results))


def best_peer(results: dict, key: str) -> tuple[str, float] | None:
    figures = results["throughput"][key]
    peers = [(figures[name], name) for name in figures if name != "trainmq"]
    if not peers:
        return None
    figure, name = max(peers)
    return name, figure


def check(results: dict, target: Target) -> dict[str, Any] | None:
    """One target's verdict, or None when what it compares with was not measured."""
    mine = results["throughput"][target.key].get("trainmq")
    if target.against == "peer":
        peer = best_peer(results, target.key)
        if peer is None:
            return None
        against, base = f"the better peer ({peer[0]})", peer[1]
    elif target.against == "fsync":
        against, base = "the raw fsync rate", scenario_fsync(results, target.key)
    else:
        against = "trainmq's own (a), in the same turns"
        base = results.get("same_turns", {}).get(target.key, {}).get(SINGLE)
    if mine is None or not base:
        return None
    ratio = mine / base
    return {
        "against": against,
        "ratio": ratio,
        "target": target.ratio,
        "met": ratio >= target.ratio,
    }


def targets(results: dict, budget: Budget) -> dict[str, Any]:
    met: dict[str, Any] = {}
    for target in TARGETS:
        verdict = check(results, target)
        if verdict is not None:
            entry = met.setdefault(target.key, {"checks": []})
            entry["checks"].append(verdict)
            entry["met"] = all(item["met"] for item in entry["checks"])
    by_depth = results.get("latency_ms", {}).get("trainmq")
    if by_depth:
        low, high = str(budget.depths[0]), str(budget.depths[-1])
        ratio = by_depth[high]["receive_p50"] / by_depth[low]["receive_p50"]
        met["e_latency_p50_ratio"] = {
            "depths": [int(low), int(high)],
            "ratio": ratio,
            "target": LATENCY_TARGET_RATIO,
            "met": ratio <= LATENCY_TARGET_RATIO,
        }
    return met


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 1 else f"{value:.2g}x"


def throughput_table(results: dict, names: list[str]) -> str:
    peers = [name for name in names if name != "trainmq"]
    has_trainmq = "trainmq" in names
    header = ["msg/s", "fsync/s"]
    header += ["trainmq", "x fsync", "SQLite alone", "ratio"] if has_trainmq else []
    for peer in peers:
        header += [peer] + (["ratio"] if has_trainmq else [])
    limits = results.get("limits", {}).get(FLOOR, {})
    rows = [header]
    for scenario in SCENARIOS:
        figures = results["throughput"][scenario.key]
        rate = scenario_fsync(results, scenario.key)
        row = [scenario.label, f"{rate:,.0f}"]
        mine = figures.get("trainmq")
        if has_trainmq:
            limit = limits.get(scenario.key)
            row += [f"{mine:,.0f}", ratio(mine / rate)]
            row += ["n/a", "n/a"] if limit is None else [f"{limit:,.0f}", ratio(mine / limit)]
        for peer in peers:
            theirs = figures.get(peer)
            row.append("n/a" if theirs is None else f"{theirs:,.0f}")
            if has_trainmq:
                row.append("n/a" if theirs is None else ratio(mine / theirs))
        rows.append(row)
    return table(rows)


def targets_table(met: dict) -> str:
    labels = {scenario.key: scenario.label for scenario in SCENARIOS}
    rows = [["target (trainmq's figure over ...)", "ratio", "target", "verdict"]]
    for key, entry in met.items():
        for item in entry.get("checks", []):
            rows.append(
                [
                    f"{labels[key]} / {item['against']}",
                    ratio(item["ratio"]),
                    f">= {item['target']:g}x",
                    "met" if item["met"] else "missed",
                ]
            )
    return table(rows)


def latency_table(results: dict, met: dict) -> str:
    rows = [["ms", "receive p50", "receive p99", "recv+delete p50", "recv+delete p99"]]
    for name, by_depth in results["latency_ms"].items():
        for depth, figures in by_depth.items():
            rows.append(
                [f"{name}, {int(depth):,} queued"]
                + [f"{figures[k]:.3f}" for k in ("receive_p50", "receive_p99")]
                + [f"{figures[k]:.3f}" for k in ("receive_delete_p50", "receive_delete_p99")]
            )
    lines = [table(rows)]
    check = met.get("e_latency_p50_ratio")
    if check:
        low, high = check["depths"]
        verdict = "met" if check["met"] else "missed"
        lines.append(
            f"trainmq receive p50 at {high:,} / at {low:,}: {check['ratio']:.2f}x"
            f" (target <= {check['target']:.0f}x) {verdict}"
        )
    return "\n".join(lines)


def describe(settings: Any) -> str:
    """``{"journal_mode": "wal", "synchronous": "FULL"}`` as ``wal/FULL``, nested."""
    if isinstance(settings, list):
        return ", ".join(describe(item) for item in settings)
    if isinstance(settings, dict) and set(settings) == {"journal_mode", "synchronous"}:
        return f"{settings['journal_mode']}/{settings['synchronous']}"
    if isinstance(settings, dict):
        return "; ".join(f"{key}: {describe(value)}" for key, value in settings.items())
    return str(settings)


def notes(results: dict) -> list[str]:
    lines = ["durability (journal_mode/synchronous read back from each connection):"]
    for name, settings in results["settings"].items():
        lines.append(f"  {name}: {describe(settings)}")
    lines += [
        "  persist-queue: SQLiteAckQueue, JSON serializer, multithreading=True (two connections)"
        " in (b); it sets journal_mode=WAL and leaves synchronous at SQLite's build default",
        "  litequeue: LiteQueue, one instance shared by the threads in (b); it sets"
        " synchronous=NORMAL, which in WAL mode skips the fsync on commit",
        "  queues for (d) were filled without fsync, then reopened with the settings above",
        "  trainmq fsyncs sends, deletes and visibility changes; its receive claims commit"
        " without fsync (a lost claim only makes a message visible again early), while the"
        " peers fsync every get/pop: in (d) they pay two fsyncs per message, trainmq one",
    ]
    for key, reasons in results["not_applicable"].items():
        for name, reason in reasons.items():
            lines.append(f"n/a {key} {name}: {reason}")
    rate = max(results["fsync_per_s"], results["fsync_per_s_after"])
    for name, figure in results["throughput"]["a_send_1_thread"].items():
        if figure > 1.1 * rate:
            lines.append(
                f"WARNING: {name} sent {figure:,.0f}/s from one thread, above the disk's"
                f" {rate:,.0f} fsync/s: its commits may not reach the disk"
            )
    return lines


def report(results: dict, budget: Budget) -> str:
    met = results["targets"]
    names = results["systems"]
    probes = results["fsync_probes"] or [results["fsync_per_s"]]
    parts = [
        "trainmq engine benchmark"
        f" ({'quick' if results['quick'] else 'full'}: up to {budget.calls:,} calls"
        f" or {budget.seconds:g} s per system after {budget.warmup:,} untimed, fresh database"
        f" each; systems interleaved in slices of {budget.slice_calls} calls)",
        f"disk: {results['file_system']}, raw write+fsync in one thread:"
        f" {results['fsync_per_s']:,.0f}/s before, {results['fsync_per_s_after']:,.0f}/s after,"
        f" {min(probes):,.0f}-{max(probes):,.0f}/s interleaved with the scenarios (their"
        f" median: {fsync_per_s(results):,.0f}/s); each ratio to fsync uses its own scenario's",
        "",
        throughput_table(results, names),
        "",
    ]
    if "trainmq" in names:
        parts += [
            "SQLite alone: trainmq's statements, transactions and fsyncs on its schema, with"
            " no Python around them (the limit of the design on this disk)",
            "",
            targets_table(met),
            "",
        ]
        single = results.get("same_turns", {}).get("b_send_8_threads", {}).get(SINGLE)
        if single:
            parts[-1:-1] = [
                f"(b)'s target compares it with trainmq sending from 1 thread in the same"
                f" turns: {single:,.0f}/s"
            ]
    if results["latency_ms"]:
        parts += [
            "(e) receive latency with messages queued. Loaded without fsync (trainmq:"
            ' send_message_batch through a durability="normal" client), then reopened with'
            ' durability="full" / synchronous=FULL; one message sent back (untimed) after'
            f" each sample to keep the depth. Peers up to {budget.peer_max_depth:,} queued.",
            latency_table(results, met),
            "",
        ]
    parts += notes(results)
    if results["file_system"] in RAM_FILE_SYSTEMS:
        parts.append("WARNING: the databases are on a RAM file system; fsync costs nothing there")
    parts.append(f"total time: {results['seconds']:.0f} s")
    return "\n".join(parts)


# --- command line --------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (< 60 s in all)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".trainmq") / "bench",
        help="where the temporary databases go (default ./.trainmq/bench; not tmpfs)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of: {', '.join(SYSTEMS)}",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    names = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = [name for name in names if name not in SYSTEMS]
    if unknown or not names:
        print(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    root = fresh_dir(args.dir)
    started = time.perf_counter()
    try:
        file_system = file_system_type(root)
        if file_system in RAM_FILE_SYSTEMS:
            print(f"WARNING: {root} is on {file_system}; fsync is free there, use --dir")
        print("measuring the disk's fsync rate", file=sys.stderr)
        rate = fsync_rate(root)
        systems = [SYSTEMS[name] for name in names]
        results = collect(systems, root, budget, lambda line: print(line, file=sys.stderr))
        rate_after = fsync_rate(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results.update(
        quick=args.quick,
        systems=names,
        file_system=file_system,
        fsync_per_s=rate,
        fsync_per_s_after=rate_after,
        seconds=time.perf_counter() - started,
    )
    results["targets"] = targets(results, budget)
    print(report(results, budget))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
