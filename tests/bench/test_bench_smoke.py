"""`bench/engine.py --quick` runs end to end against the real engine and reports every figure.

Performance is measured by the benchmark, not tested: nothing here compares a
figure with a target, only that each one was measured.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.quick import is_positive_number, run_quick

SCENARIOS = (
    "a_send_1_thread",
    "b_send_8_threads",
    "c_send_batch_10",
    "d_receive_delete_1",
    "d_receive_delete_batch_10",
)
PEERS = ("persist-queue", "litequeue")
LATENCY_FIGURES = ("receive_p50", "receive_p99", "receive_delete_p50", "receive_delete_p99")



@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return run_quick("engine.py", tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def figures(run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return run[0]


def test_fsync_rate_is_measured(figures: dict[str, Any]) -> None:
    assert is_positive_number(figures["fsync_per_s"])
    assert is_positive_number(figures["fsync_per_s_after"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_trainmq_throughput_is_measured(figures: dict[str, Any], scenario: str) -> None:
    assert is_positive_number(figures["throughput"][scenario]["trainmq"])
    assert isinstance(figures["targets"][scenario]["met"], bool)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("peer", PEERS)
def test_peer_throughput_is_measured_or_explained(
    figures: dict[str, Any], scenario: str, peer: str
) -> None:
    measured = figures["throughput"][scenario].get(peer)
    reason = figures["not_applicable"].get(scenario, {}).get(peer)
    if reason is None:
        assert is_positive_number(measured)
    else:
        assert measured is None
        assert isinstance(reason, str) and reason


def test_peers_are_measured_where_they_have_the_operation(figures: dict[str, Any]) -> None:
    for scenario in ("a_send_1_thread", "b_send_8_threads", "d_receive_delete_1"):
        for peer in PEERS:
            assert is_positive_number(figures["throughput"][scenario].get(peer)), (scenario, peer)


@pytest.mark.parametrize("system", ["trainmq", *PEERS])
def test_latency_is_measured_at_every_depth(figures: dict[str, Any], system: str) -> None:
    by_depth = figures["latency_ms"][system]
    assert len(by_depth) >= 2
    for depth, latency in by_depth.items():
        assert int(depth) > 0
        for name in LATENCY_FIGURES:
            assert is_positive_number(latency[name]), (depth, name)
        assert latency["receive_p99"] >= latency["receive_p50"]
        assert latency["receive_delete_p50"] >= latency["receive_p50"]


def test_latency_target_compares_the_extreme_depths(figures: dict[str, Any]) -> None:
    check = figures["targets"]["e_latency_p50_ratio"]
    depths = sorted(int(depth) for depth in figures["latency_ms"]["trainmq"])
    assert check["depths"] == [depths[0], depths[-1]]
    assert is_positive_number(check["ratio"])
    assert isinstance(check["met"], bool)


@pytest.mark.parametrize("peer", PEERS)
def test_peers_are_benchmarked_with_an_fsync_on_every_commit(
    figures: dict[str, Any], peer: str
) -> None:
    benchmarked = figures["settings"][peer]["benchmarked"]
    connections = benchmarked if isinstance(benchmarked, list) else [benchmarked]
    assert connections
    for connection in connections:
        assert connection == {"journal_mode": "wal", "synchronous": "FULL"}


def test_trainmq_is_benchmarked_with_full_durability(figures: dict[str, Any]) -> None:
    assert figures["settings"]["trainmq"] == {"durability": "full", "journal_mode": "wal"}


def test_report_prints_every_system(run: tuple[dict[str, Any], str]) -> None:
    report = run[1]
    for name in ("trainmq", *PEERS):
        assert name in report
    assert "fsync" in report


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_target_is_a_ratio_within_the_run(figures: dict[str, Any], scenario: str) -> None:
    checks = figures["targets"][scenario]["checks"]
    assert checks
    for check in checks:
        assert is_positive_number(check["ratio"]) and is_positive_number(check["target"])
        assert check["met"] == (check["ratio"] >= check["target"])
    assert figures["targets"][scenario]["met"] == all(check["met"] for check in checks)
    assert is_positive_number(figures["fsync_per_s_by_scenario"][scenario])


def test_sqlite_alone_is_measured_as_the_limit(figures: dict[str, Any]) -> None:
    limits = figures["limits"]["sqlite-alone"]
    assert set(limits) == set(SCENARIOS) - {"b_send_8_threads"}
    assert all(is_positive_number(value) for value in limits.values())


def test_report_prints_a_verdict_per_target(run: tuple[dict[str, Any], str]) -> None:
    report = run[1]
    assert report.count(" met") + report.count(" missed") >= 7  # six ratios and (e)
    assert "SQLite alone" in report
