"""`bench/worker.py --quick` runs trainmq and Celery end to end and reports every figure.

Nothing here compares a figure with a target; it checks that each was measured.
RabbitMQ on 127.0.0.1:5672 is required: without it this test fails, it never skips.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "worker.py"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ is not reachable on 127.0.0.1:5672 ({exc}); the worker benchmark "
                    "compares against Celery on RabbitMQ: start rabbitmq-server")
    workdir = tmp_path_factory.mktemp("worker-bench")
    out = workdir / "out.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out), "--dir", str(workdir)],
        cwd=workdir, capture_output=True, text=True, timeout=240, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Celery" in run.stdout and "trainmq worker" in run.stdout
    return dict(json.loads(out.read_text()))


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_every_figure_is_positive(result: dict[str, Any]) -> None:
    runs = [*result["figures"]["trainmq"].values(), result["figures"]["celery"]]
    assert len(runs) == 3
    for run in runs:
        for key in ("messages_per_s", "idle_p50_ms", "idle_p99_ms"):
            assert positive(run[key]), (key, run)
        assert run["idle_p99_ms"] >= run["idle_p50_ms"]


def test_targets_are_judged(result: dict[str, Any]) -> None:
    assert set(result["targets"]) == {"batch10_messages_per_s", "batch1_vs_celery", "idle_p50_ms"}
    for judged in result["targets"].values():
        assert isinstance(judged["met"], bool) and positive(judged["target"])
