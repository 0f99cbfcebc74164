"""Running a benchmark script in its quick mode, for the smoke tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_quick(script: str, workdir: Path, timeout: float = 240) -> tuple[dict[str, Any], str]:
    """``bench/<script> --quick`` in ``workdir``: its JSON figures and its printed report."""
    out = workdir / "out.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json", str(out), "--dir", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    measured: dict[str, Any] = json.loads(out.read_text())
    return measured, result.stdout


def is_positive_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
