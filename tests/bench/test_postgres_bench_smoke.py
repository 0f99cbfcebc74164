"""`bench/postgres.py --quick` runs end to end on every system and reports every figure
and every target.

Performance is measured by the benchmark, not tested: nothing here compares a
figure with a target, only that each one was measured and each target evaluated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.bench.quick import is_positive_number, run_quick
from tests.postgres.support import require_postgres

SYSTEMS = ("trainmq-postgres", "trainmq-sqlite", "floor", "procrastinate", "pgqueuer")
SCENARIOS = ("send_1", "send_batch_10", "receive_delete_1", "receive_delete_batch_10",
             "consumers_4")


def test_quick_run_measures_every_system_and_target(tmp_path: Path) -> None:
    require_postgres()
    figures, printed = run_quick("postgres.py", tmp_path)
    results: dict[str, dict[str, Any]] = figures["results"]
    assert set(results) == set(SYSTEMS)
    for system in SYSTEMS:
        for scenario in SCENARIOS:
            value = results[system][scenario]
            if system == "procrastinate" and scenario == "receive_delete_batch_10":
                assert value is None  # procrastinate fetches one job at a time
            else:
                assert is_positive_number(value), (system, scenario, value)
    assert len(figures["targets"]) == 4
    for target in figures["targets"]:
        assert is_positive_number(target["ratio"]) and isinstance(target["met"], bool)
        assert target["target"] in printed
