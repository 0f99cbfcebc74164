"""`bench/pipeline.py --quick` runs prepare on real workers and both training loops, and
reports every figure.

Performance is measured by the benchmark, not tested: nothing here compares a
figure with a target, only that each one was measured and reported.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.bench.quick import is_positive_number, run_quick


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return run_quick("pipeline.py", tmp_path_factory.mktemp("pipeline-bench"))


@pytest.fixture(scope="module")
def figures(run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return dict(run[0]["figures"])


def test_the_in_process_peer_is_measured(figures: dict[str, Any]) -> None:
    peer = figures["prepare"]["in_process"]
    for name in ("tokens", "tokenizer_s", "tokenize_s", "seconds", "tokens_per_s",
                 "tokens_per_s_without_tokenizer"):
        assert is_positive_number(peer[name]), name
    assert peer["seconds"] == pytest.approx(peer["tokenizer_s"] + peer["tokenize_s"])
    assert peer["tokens_per_s"] == pytest.approx(peer["tokens"] / peer["seconds"])


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("state", ["cold", "warm"])
def test_prepare_on_worker_processes_is_measured(
    figures: dict[str, Any], workers: int, state: str
) -> None:
    measured = figures["prepare"][f"workers_{workers}"][state]
    assert measured["workers"] == workers
    for name in ("tokens", "seconds", "tokens_per_s", "worker_start_s"):
        assert is_positive_number(measured[name]), name
    assert measured["tokens_per_s"] == pytest.approx(measured["tokens"] / measured["seconds"])
    # every run prepared the same dataset
    assert measured["tokens"] == figures["prepare"]["in_process"]["tokens"]
    assert measured["inputs"] == figures["prepare"]["in_process"]["inputs"] >= 2


def test_worker_scaling_is_reported(figures: dict[str, Any]) -> None:
    for state in ("cold", "warm"):
        assert is_positive_number(figures["prepare"][f"scaling_2_vs_1_{state}"])


@pytest.mark.parametrize("kind", ["bare", "durable"])
def test_training_throughput_is_measured(figures: dict[str, Any], kind: str) -> None:
    measured = figures["training"][kind]
    for name in ("seconds", "step_ms", "tokens_per_s"):
        assert is_positive_number(measured[name]), name
    assert measured["runs_s"] and all(is_positive_number(s) for s in measured["runs_s"])


def test_the_bare_loop_trains_what_the_trainer_trains(figures: dict[str, Any]) -> None:
    training = figures["training"]
    assert training["same_weights"] is True
    assert is_positive_number(training["durable_vs_bare"])


def test_durability_is_measured_and_really_happened(figures: dict[str, Any]) -> None:
    training, durable = figures["training"], figures["training"]["durable"]
    assert durable["checkpoints"] >= 2  # one mid-run in --quick, and the last step
    assert durable["events_published"] >= 2  # reached the events queue
    assert is_positive_number(durable["trainer_durability_s"])
    assert is_positive_number(training["durability_percent_measured"])
    # the wall-time difference may come out negative on a busy machine: only finite
    assert math.isfinite(training["durability_percent_wall"])


def test_checkpoint_cost_is_measured(run: tuple[dict[str, Any], str]) -> None:
    (measured,) = run[0]["figures"]["checkpoints"].values()  # --quick: one tiny model
    for name in ("step_s", "blocked_s", "write_s", "sync_save_s", "overhead_percent"):
        assert is_positive_number(measured[name]), name
    assert measured["checkpoint_bytes"] > 4 * measured["parameters"]  # weights and moments
    assert measured["overhead_percent"] == pytest.approx(
        100 * measured["blocked_s"] / (measured["interval_steps"] * measured["step_s"])
    )
    judged = run[0]["targets"]["checkpoint_overhead_percent"]
    assert judged["target"] == 3.5 and isinstance(judged["met"], bool)
    assert "blocked s" in run[1]


def test_the_target_is_judged(run: tuple[dict[str, Any], str]) -> None:
    judged = run[0]["targets"]["durability_percent"]
    assert judged["target"] == 5.0
    assert isinstance(judged["met"], bool)
    assert judged["value"] == run[0]["figures"]["training"]["durability_percent_measured"]


def test_report_prints_every_section(run: tuple[dict[str, Any], str]) -> None:
    report = run[1]
    for text in ("prepare(), one process (peer)", "1 worker process", "2 worker processes",
                 "bare PyTorch loop (peer)", "durable (train_request)", "tokens/s",
                 "measured directly", "durable minus bare", "CPU cores", "target"):
        assert text in report, text


def test_the_builtin_models_checkpoint_share_is_measured(run: tuple[dict[str, Any], str]) -> None:
    training = run[0]["figures"]["training"]
    assert is_positive_number(training["durable"]["checkpoint_blocked_s"])
    assert training["checkpoint_blocked_percent"] == pytest.approx(
        100 * training["durable"]["checkpoint_blocked_s"] / training["bare"]["seconds"]
    )
    judged = run[0]["targets"]["builtin_checkpoint_overhead_percent"]
    assert judged["target"] == 3.5 and judged["value"] == training["checkpoint_blocked_percent"]


def test_the_ddp_example_is_measured_launched_killed_and_resumed(
    run: tuple[dict[str, Any], str],
) -> None:
    ddp = run[0]["figures"]["ddp"]
    assert ddp["ranks"] == 2 and ddp["checkpoints_per_run"] >= 1
    for name in ("step_ms", "blocked_per_checkpoint_s", "overhead_percent", "startup_s"):
        assert is_positive_number(ddp[name]), name
    assert math.isfinite(ddp["wall_overhead_percent"])  # may be negative on a busy machine
    killed = ddp["killed"]
    assert killed["resumed_from_step"] == ddp["interval_steps"]  # the checkpoint before the kill
    assert killed["steps"] >= 3 * ddp["interval_steps"]  # the relaunch ran to the end
    for name in ("kill_to_failed_s", "relaunch_to_first_step_s", "kill_to_resumed_step_s"):
        assert is_positive_number(killed[name]), name
    assert killed["kill_to_resumed_step_s"] == pytest.approx(
        killed["kill_to_failed_s"] + killed["relaunch_to_first_step_s"]
    )
    targets = run[0]["targets"]
    assert targets["ddp_checkpoint_overhead_percent"]["value"] == ddp["overhead_percent"]
    resume = targets["kill_to_resumed_step_s"]
    assert resume["target"] == pytest.approx(10 + ddp["startup_s"])
    assert isinstance(resume["met"], bool)
    for text in ("DDP example", "SIGKILL of rank 1", "start-up", "whole loop"):
        assert text in run[1], text
