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
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    outcomes = sorted(o[0] for o in outputs)
    assert outcomes == ["attached"] * 5 + ["started"]
    assert sorted(int(o[2]) for o in outputs) == [1, 2, 3, 4, 5, 6]  # every attempt numbered once


def test_a_live_attempt_keeps_the_run_and_a_stale_one_is_taken_over(tmp_path: Path) -> None:
    registry = RunRegistry(open_store(tmp_path))
    registry.register("r", "k", "{}", 0.0)
    assert registry.acquire("k", 10.0, "a", stale_after=30) == 1
    registry.beat("k", 1, 35.0)
    assert registry.acquire("k", 50.0, "b", stale_after=30) is None  # alive at 35: attached
    assert registry.acquire("k", 66.0, "b", stale_after=30) == 2  # silent for 31 s: taken over
    assert [a["worker"] for a in registry.attempts("k")] == ["a", "b"]
    assert registry.attempts("k")[0]["alive_at"] == 35.0


def test_racing_takeovers_get_one_attempt_each_number(tmp_path: Path) -> None:
    registry = RunRegistry(open_store(tmp_path))
    registry.register("r", "k", "{}", 0.0)
    registry.acquire("k", 0.0, "a", stale_after=5)
    # Both see attempt 1 stale and go for number 2: exactly one gets it.
    assert registry._take("k", 2, 100.0, "b") is True
    assert registry._take("k", 2, 100.0, "c") is False


def test_the_first_result_wins_and_events_come_back_in_order(tmp_path: Path) -> None:
    from trainmq.training.messages import TrainingEvent

    registry = RunRegistry(open_store(tmp_path))
    registry.register("r-9", "k", '{"kind": "train"}', 1.0)
    assert registry.complete("k", {"steps": 10}) == {"steps": 10}
    assert registry.complete("k", {"steps": 99}) == {"steps": 10}
    for seq, (event, at) in enumerate([("started", 1.0), ("progress", 2.0), ("completed", 4.0)], 1):
        registry.record_event("k", seq, TrainingEvent(run_id="r-9", event=event, at=at))  # type: ignore[arg-type]
    registry.record_event(
        "k", 1, TrainingEvent(run_id="r-9", event="attached", at=3.0), writer="dup"
    )
    assert [e.event for e in registry.events("k")] == [
        "started",
        "progress",
        "attached",
        "completed",
    ]
    assert registry.find("r-9") == registry.get("k") and registry.find("nope") is None
    assert [r.run_id for r in registry.list_runs()] == ["r-9"]
    assert registry.get("k").request == '{"kind": "train"}'
