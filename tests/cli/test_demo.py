"""``trainmq demo``: the whole pipeline from the command line, in a small configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from trainmq.cli.exit_codes import ExitCode

SMALL = [
    "--layers",
    "2",
    "--width",
    "64",
    "--heads",
    "2",
    "--context",
    "64",
    "--batch-size",
    "8",
    "--vocab-size",
    "512",
    "--corpus-bytes",
    "150000",
    "--prepare-workers",
    "1",
]


def demo(*args: str, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainmq", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_the_demo_runs_the_pipeline_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = demo("--out", str(out), "--steps", "30", "--checkpoint-every", "10", *SMALL)
    assert result.returncode == ExitCode.OK, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 30 and report["checkpoints"] == 3
    assert report["runs_started"] == 1 and report["attempts"] == 1
    assert report["duplicates_attached"] >= 1  # the demo sends its TrainRequest twice
    assert report["dead_lettered"] == 0 and report["messages_processed"] >= 3 + 2 + 1
    assert len(report["dataset_version"]) == 64 and report["tokens"]["train"] > 10_000
    assert report["evaluation"]["step"] == 30 and report["evaluation"]["perplexity"] > 1
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "trainmq demo: summary" in result.stdout and report["dataset_version"][:16] in result.stdout
    )


def test_chaos_kills_the_trainer_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = demo(
        "--out", str(out), "--chaos", "--steps", "300", "--checkpoint-every", "40", *SMALL
    )
    assert result.returncode == ExitCode.OK, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["killed_at_step"] is not None, "the run finished before the kill point"
    assert report["attempts"] >= 2 and report["runs_started"] == 1
    assert 40 <= report["resumed_from_step"] <= report["killed_at_step"]
    assert report["redeliveries"] >= 1 and report["steps"] == 300


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = demo("--out", str(tmp_path), timeout=60)
    assert result.returncode == ExitCode.USAGE
    assert "was not made by trainmq demo" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
