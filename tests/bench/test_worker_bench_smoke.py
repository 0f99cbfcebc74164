"""`bench/worker.py --quick` runs trainmq and Celery end to end and reports every figure.

Nothing here compares a figure with a target; it checks that each was measured.
RabbitMQ on 127.0.0.1:5672 is required: without it this test fails, it never skips.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.bench.quick import is_positive_number, run_quick


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ is not reachable on 127.0.0.1:5672 ({exc}); the worker benchmark "
                    "compares against Celery on RabbitMQ: start rabbitmq-server")
    measured, printed = run_quick("worker.py", tmp_path_factory.mktemp("worker-bench"))
    assert "Celery" in printed and "trainmq worker" in printed
    for name in measured["targets"]:  # each target printed with its verdict
        assert any(name in line and line.rstrip().endswith(("-> met", "-> missed"))
                   for line in printed.splitlines()), name
    return measured


def test_every_figure_is_positive(result: dict[str, Any]) -> None:
    runs = [*result["figures"]["trainmq"].values(), result["figures"]["celery"]]
    assert len(runs) == 3
    for run in runs:
        for key in ("drain_messages_per_s", "messages_per_s", "idle_p50_ms", "idle_p99_ms"):
            assert is_positive_number(run[key]), (key, run)
        assert run["idle_p99_ms"] >= run["idle_p50_ms"]


def test_targets_are_judged(result: dict[str, Any]) -> None:
    assert set(result["targets"]) == {"batch10_messages_per_s", "batch1_vs_celery", "idle_p50_ms"}
    for judged in result["targets"].values():
        assert isinstance(judged["met"], bool) and is_positive_number(judged["target"])
        assert is_positive_number(judged["value"])
    drain = result["figures"]["trainmq"]["batch_1"]["drain_messages_per_s"]
    celery = result["figures"]["celery"]["drain_messages_per_s"]
    assert result["targets"]["batch1_vs_celery"]["value"] == pytest.approx(drain / celery)
