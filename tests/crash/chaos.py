"""The long crash run behind ``make chaos``: thousands of SIGKILLs and power losses.

``python -m tests.crash.chaos [--kills N] [--power-states M] [--directory DIR]``

Runs the crash scenarios (``scenarios.py``) round after round until at least
``--kills`` processes were SIGKILLed, checks at least ``--power-states`` rebuilt
power-loss states of several recorded workloads (``power.py``), kills a
database's creation at every file operation, and runs the ``durability="normal"``
control, which must lose something.  Prints one table; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.crash import fstrace, power, scenarios
from tests.crash.harness import REPO_ROOT

ROUNDS_PER_RUN = 12
OPERATIONS = 150
STATES_PER_RECORDING = 250


def kill_runs(directory: Path, kills: int, rng: random.Random) -> list[scenarios.Outcome]:
    totals = {s.name: scenarios.Outcome(s) for s in scenarios.SCENARIOS}
    n = 0
    while sum(o.kills for o in totals.values()) < kills:
        scenario = scenarios.SCENARIOS[n % len(scenarios.SCENARIOS)]
        outcome = scenarios.run(
            scenario, directory / f"kill-{n}", ROUNDS_PER_RUN, rng.randrange(2**32)
        )
        total = totals[scenario.name]
        total.rounds += outcome.rounds
        total.kills += outcome.kills
        total.dead_lettered += outcome.dead_lettered
        total.violations += outcome.violations
        total.history.attempted |= {f"{n}/{b}" for b in outcome.history.attempted}
        total.history.acked |= {f"{n}/{k}": v for k, v in outcome.history.acked.items()}
        total.history.deliveries += outcome.history.deliveries
        print(f"  run {n}: {outcome.row()}", flush=True)
        n += 1
    return list(totals.values())


def power_runs(
    directory: Path,
    states: int,
    durability: str,
    rng: random.Random,
    durable_receives: bool = False,
) -> power.PowerReport:
    shim = fstrace.build_shim(directory)
    total = power.PowerReport()
    n = 0
    while total.states < states:
        run = directory / f"power-{durability}-{durable_receives}-{n}"
        seed = rng.randrange(2**32)
        log = power.record(run, shim, durability, OPERATIONS, seed, durable_receives)
        count = min(STATES_PER_RECORDING, states - total.states)
        report = power.check_states(
            log, run / "traced", run / "states", count, seed, check_receives=durable_receives
        )
        total.states += report.states
        total.policies += report.policies
        total.acked_sends += report.acked_sends
        total.violations += report.violations
        n += 1
    return total


def creation_kills(directory: Path) -> dict[str, object]:
    shim = fstrace.build_shim(directory)
    folder = directory / "creation"
    folder.mkdir()
    env = dict(os.environ, LD_PRELOAD=str(shim), TMQ_TRACE_DIR=str(folder))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.crash.fsworkload", "creation", str(folder)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    )
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--power-states", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(2**32))
    parser.add_argument("--directory", type=Path)
    args = parser.parse_args()
    directory = args.directory or Path(tempfile.mkdtemp(prefix="trainmq-chaos-"))
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    started = time.monotonic()
    print(f"seed {args.seed}, files in {directory}", flush=True)
    creation = creation_kills(directory)
    full = power_runs(directory, args.power_states, "full", rng)
    served = power_runs(directory, args.power_states // 2, "full", rng, durable_receives=True)
    control = power_runs(directory, max(100, args.power_states // 10), "normal", rng)
    kills = kill_runs(directory, args.kills, rng)
    print(f"\nSIGKILL scenarios ({time.monotonic() - started:.0f} s in all)")
    print(scenarios.HEADER)
    for outcome in kills:
        print(outcome.row())
    print(f"{'total':<40} {sum(o.rounds for o in kills):>6} {sum(o.kills for o in kills):>6}")
    print(f"\n{'power loss':<40} {'states':>6} {'acked sends checked':>20} {'violations':>10}")
    rows = [
        ("durability=full", full),
        ("full, receives fsynced (as serve)", served),
        ("durability=normal (control: must lose)", control),
    ]
    for label, report in rows:
        print(
            f"{label:<40} {report.states:>6} {report.acked_sends:>20} {len(report.violations):>10}"
        )
    failures = [str(f) for f in creation["failures"]]  # type: ignore[attr-defined]
    points = creation["points"]
    print(f"\ncreation killed at each of {points} file operations: {len(failures)} failures")
    problems = [v for o in kills for v in o.violations] + full.violations + served.violations
    problems += failures
    for problem in problems[:50]:
        print("VIOLATION", problem)
    if control.lost() == 0:
        print("CONTROL FAILED: durability=normal lost nothing; the harness sees no losses")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
