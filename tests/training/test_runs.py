"""The run registry: a duplicated TrainRequest attaches to its run, never starts another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trainmq.store import open_store
from trainmq.training.runs import RunRegistry


def test_first_claim_starts_and_later_ones_attach(tmp_path: Path) -> None:
    registry = RunRegistry(open_store(tmp_path))
    first = registry.claim("r-1", "train/r-1", '{"a": 1}', 100.0, "worker-a")
    second = registry.claim("r-1-dup", "train/r-1", '{"a": 1}', 200.0, "worker-b")
    assert (first.outcome, first.attempt) == ("started", 1)
    assert (second.outcome, second.attempt) == ("attached", 2)
    assert second.run == first.run  # the duplicate sees the original run, not its own id
    assert [a["worker"] for a in registry.attempts("train/r-1")] == ["worker-a", "worker-b"]
    assert registry.exists("train/r-1") and not registry.exists("train/r-2")


def test_keys_with_any_characters_are_safe(tmp_path: Path) -> None:
    registry = RunRegistry(open_store(tmp_path))
    claim = registry.claim("r", "../../etc/passwd?x=1", "{}", 0.0, "w")
    assert claim.outcome == "started"
    assert all(p.is_relative_to(tmp_path) for p in tmp_path.rglob("*"))


def test_racing_processes_start_exactly_one_run(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.training.claimer", root, f"w{i}"],
            stdout=subprocess.PIPE, text=True,
        )
        for i in range(6)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    outcomes = sorted(o[0] for o in outputs)
    assert outcomes == ["attached"] * 5 + ["started"]
    assert sorted(int(o[2]) for o in outputs) == [1, 2, 3, 4, 5, 6]  # every attempt numbered once
