"""`bench/http.py --quick` runs end to end against real servers and reports every figure.

Performance is measured by the benchmark, not tested: nothing here compares a
figure with a target, only that each one was measured and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.bench.quick import is_positive_number, run_quick

WORKLOADS = ("send", "receive_delete", "send_batch")
SUMMARY = ("requests_per_s", "messages_per_s", "p50_ms", "p99_ms")
TARGETS = (
    "boto3_send_ratio",
    "boto3_receive_delete_ratio",
    "boto3_send_batch_ratio",
    "lean_send_per_s",
    "lean_send_batch_messages_per_s",
    "lean_latency_p99_ms",
    "lean_batch_cycle_vs_localstack",
    "lean_batch_cycle_vs_moto",
)
TRAINMQ = ("trainmq", "trainmq_w1")  # --workers at its default, and 1



def leaves(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{path}/{key}")
    else:
        yield path, tree


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return run_quick("http.py", tmp_path_factory.mktemp("http-bench"))


@pytest.fixture(scope="module")
def figures(run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return run[0]["figures"]


def test_every_figure_is_a_positive_number(figures: dict[str, Any]) -> None:
    found = list(leaves(figures))
    assert len(found) >= 40
    for path, value in found:
        assert is_positive_number(value), (path, value)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_boto3_workload_is_measured_on_both_servers(figures: dict[str, Any], workload: str) -> None:
    row = figures["boto3"][workload]
    for system in ("trainmq", "moto"):
        assert set(SUMMARY) <= set(row[system]), system
        assert row[system]["p99_ms"] >= row[system]["p50_ms"]
    expected = row["trainmq"]["requests_per_s"] / row["moto"]["requests_per_s"]
    assert row["ratio"] == pytest.approx(expected)


@pytest.mark.parametrize("system", TRAINMQ)
@pytest.mark.parametrize("workload", (*WORKLOADS, "latency_at_rate", "batch_cycle"))
def test_lean_workload_is_measured(figures: dict[str, Any], system: str, workload: str) -> None:
    measured = figures["lean"][system][workload]
    assert set(SUMMARY) <= set(measured)
    assert measured["p99_ms"] >= measured["p50_ms"]


def test_the_batch_cycle_is_measured_on_moto_too(figures: dict[str, Any]) -> None:
    measured = figures["lean"]["moto"]["batch_cycle"]
    assert set(SUMMARY) <= set(measured)


def test_batches_carry_ten_messages_per_request(figures: dict[str, Any]) -> None:
    lean = figures["lean"]["trainmq"]["send_batch"]
    for measured in (figures["boto3"]["send_batch"]["trainmq"], lean):
        assert measured["messages_per_s"] == pytest.approx(10 * measured["requests_per_s"])


def test_a_receive_and_delete_is_two_requests_per_message(figures: dict[str, Any]) -> None:
    lean = figures["lean"]["trainmq"]["receive_delete"]
    for measured in (figures["boto3"]["receive_delete"]["moto"], lean):
        assert measured["requests_per_s"] == pytest.approx(2 * measured["messages_per_s"])


def test_targets_are_judged(run: tuple[dict[str, Any], str]) -> None:
    targets = run[0]["targets"]
    assert set(targets) == set(TARGETS)
    for name in TARGETS:
        assert isinstance(targets[name]["met"], bool), name
        assert is_positive_number(targets[name]["target"]), name
    assert is_positive_number(targets["lean_batch_cycle_vs_moto"]["measured"])
    # --quick leaves LocalStack out: its ratio is not measured, so not met
    assert targets["lean_batch_cycle_vs_localstack"]["measured"] is None
    assert targets["lean_batch_cycle_vs_localstack"]["met"] is False


def test_server_runs_with_full_durability_on_a_real_disk(run: tuple[dict[str, Any], str]) -> None:
    settings = run[0]["settings"]
    assert settings["durability"] == "full"
    assert settings["file_system"] not in ("tmpfs", "ramfs")
    assert is_positive_number(settings["cores"])


def test_report_names_both_servers_and_the_shared_cores(run: tuple[dict[str, Any], str]) -> None:
    report = run[1]
    for text in ("trainmq", "moto", "ratio", "SendMessage", "shared by", "target", "w1"):
        assert text in report, text
    assert "LocalStack: left out by --quick" in report
