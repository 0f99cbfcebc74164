"""Power-loss checks: run a workload under the shim, then rebuild and check disk states.

For each state (a crash point and a policy for the writes after the last fsync,
see ``fstrace``) the database is reopened with trainmq and must be intact, and,
judged only by what the workload had written to its ``acks`` file before the
crash point:

- every acknowledged send is present, unless a delete of it had been issued;
- no message whose delete was acknowledged is present;
- every message present was at least issued (nothing invented);
- with ``check_receives`` (for a workload run with durable receives, as
  ``trainmq serve`` runs), no acknowledged receive is undone: a message still
  present has at least the receive count that receive returned, so its holder's
  receipt handle still owns it.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import trainmq
from tests.crash import fstrace
from tests.crash.harness import REPO_ROOT


@dataclass
class PowerReport:
    states: int = 0
    policies: Counter[str] = field(default_factory=Counter)
    acked_sends: int = 0
    violations: list[str] = field(default_factory=list)

    def lost(self) -> int:
        return sum(1 for v in self.violations if v.startswith("lost"))

    def undone_receives(self) -> int:
        return sum(1 for v in self.violations if v.startswith("undone receive"))


def record(
    directory: Path,
    shim: Path,
    durability: str,
    operations: int,
    seed: int,
    durable_receives: bool = False,
) -> Path:
    """Run the power workload under the shim in ``directory/traced``; the log's path."""
    traced = directory / "traced"
    traced.mkdir(parents=True)
    log = directory / "trace.log"
    env = dict(os.environ, LD_PRELOAD=str(shim), TMQ_TRACE_DIR=str(traced), TMQ_TRACE_LOG=str(log))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.crash.fsworkload", "power", str(traced)]
    command += ["--durability", durability, "--operations", str(operations), "--seed", str(seed)]
    command += ["--durable-receives"] if durable_receives else []
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, timeout=600)
    return log


def _marks(ops: list[fstrace.Op], k: int, traced: Path) -> dict[str, dict[str, int]]:
    """What the workload had written to its ``acks`` file by operation ``k``."""
    acks = str(traced / "acks")
    marks: dict[str, dict[str, int]] = {kind: {} for kind in "sSdDR"}
    fds: set[int] = set()
    for op in ops[:k]:
        if op.kind == fstrace.OPEN:
            (fds.add if op.path == acks else fds.discard)(op.fd)
        elif op.kind == fstrace.CLOSE:
            fds.discard(op.fd)
        elif op.kind == fstrace.WRITE and op.fd in fds:
            for line in op.data.decode().splitlines():
                kind, body, *count = line.split(" ")
                marks[kind][body] = max(marks[kind].get(body, 0), int(count[0]) if count else 0)
    return marks


def _bodies(path: Path) -> dict[str, int]:
    """Every message's body and receive count, after trainmq opened (and recovered) the file."""
    with trainmq.client(path) as client:
        client.list_queues()
    conn = sqlite3.connect(path)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise AssertionError("integrity check failed")
        return dict(conn.execute("SELECT body, receive_count FROM messages").fetchall())
    finally:
        conn.close()


def check_states(
    log: Path,
    traced: Path,
    scratch: Path,
    states: int,
    seed: int,
    check_receives: bool = False,
) -> PowerReport:
    ops = fstrace.read_trace(log)
    rng = random.Random(seed)
    report = PowerReport()
    for n, k in enumerate(fstrace.crash_points(ops, states, rng)):
        policy = fstrace.POLICIES[n % len(fstrace.POLICIES)]
        into = scratch / f"state-{n}"
        into.mkdir(parents=True)
        written = fstrace.disk_after(ops, k, policy, rng, traced, into)
        marks = _marks(ops, k, traced)
        report.states += 1
        report.policies[policy] += 1
        report.acked_sends += len(marks["S"])
        where = f"state {n} (crash after op {k} of {len(ops)}, {policy})"
        if "queues.db" not in written:
            if marks["S"] or marks["D"]:
                report.violations.append(f"lost the database: {where}")
            shutil.rmtree(into)
            continue
        try:
            present = _bodies(into / "queues.db")
        except Exception as exc:
            report.violations.append(f"unopenable: {where}: {type(exc).__name__}: {exc}")
            continue
        for body in sorted(marks["S"].keys() - marks["d"].keys() - present.keys()):
            report.violations.append(f"lost acknowledged send {body}: {where}")
        for body in sorted(marks["D"].keys() & present.keys()):
            report.violations.append(f"undone acknowledged delete {body}: {where}")
        for body in sorted(present.keys() - marks["s"].keys()):
            report.violations.append(f"invented {body}: {where}")
        for body, count in sorted(marks["R"].items()) if check_receives else ():
            if body in present and present[body] < count:
                report.violations.append(f"undone receive {body} #{count}: {where}")
        shutil.rmtree(into)
    return report
