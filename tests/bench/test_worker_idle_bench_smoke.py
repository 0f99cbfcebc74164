"""`bench/worker_idle.py --quick` measures an idle worker and server and judges the targets.

Nothing here compares a figure with its target (the machine's load decides
that); it checks that every figure was measured and every target judged.
"""

from __future__ import annotations

import math
from pathlib import Path

from tests.bench.quick import is_positive_number, run_quick


def test_quick_mode_measures_and_judges_every_figure(tmp_path: Path) -> None:
    measured, printed = run_quick("worker_idle.py", tmp_path, timeout=180)
    worker, serve = measured["figures"]["worker"], measured["figures"]["serve"]
    for figures, latency in ((worker, "pickup"), (serve, "wake")):
        assert is_positive_number(figures[f"{latency}_p50_ms"]), figures
        assert figures[f"{latency}_p99_ms"] >= figures[f"{latency}_p50_ms"]
        cpu = figures["idle_cpu_percent"]
        assert isinstance(cpu, float) and math.isfinite(cpu) and 0 <= cpu < 100, figures
    assert set(measured["targets"]) == {
        "worker_pickup_p50_ms",
        "worker_idle_cpu_percent",
        "serve_wake_p50_ms",
        "serve_idle_cpu_percent",
    }
    for name, judged in measured["targets"].items():
        assert judged["met"] == (judged["value"] <= judged["target"]), name
        assert name in printed and ("met" in printed or "MISSED" in printed)
