"""``trainmq demo``: the whole pipeline from the command line, in a small configuration."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trainmq.cli.demo import MARKER
from trainmq.cli.exit_codes import ExitCode

SRC = Path(__file__).resolve().parents[2] / "src"

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
    """Run ``trainmq demo``; past ``timeout`` interrupt it as Ctrl-C would, so that it stops
    its worker processes (a SIGKILL would leave them running) and the test fails."""
    command = [sys.executable, "-m", "trainmq", "demo", *args]
    env = {
        "COLUMNS": "120",
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "PYTHONPATH": str(SRC),  # this tree, whatever the venv's editable install names
    }
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            pytest.fail(f"trainmq demo ran past {timeout} s:\n{stdout[-3000:]}{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


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
    # Without a terminal: plain progress lines, and the summary on lines of its own.
    lines = result.stdout.splitlines()
    assert any("phase: train" in line for line in lines)
    assert any("train step" in line and "loss" in line for line in lines)
    [title] = [line for line in lines if "trainmq demo: summary" in line]
    assert title.strip() == "trainmq demo: summary"
    assert "\x1b[" not in result.stdout and "╭" not in result.stdout  # no live panel redraws


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


def test_the_demo_refuses_to_delete_a_database_another_process_has_open(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / MARKER).write_text("made by trainmq demo\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out / "queues.db")],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = demo("--out", str(out), timeout=60)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert result.returncode == ExitCode.DATABASE_IN_USE, result.stderr
    assert "is open in another process" in result.stderr and "Traceback" not in result.stderr
    assert (out / "queues.db").exists()


# A process that keeps the demo's database open, as a `trainmq serve` on it would.
HOLD = (
    "import sys, time, trainmq; sqs = trainmq.client(sys.argv[1]);"
    " sqs.create_queue(QueueName='served'); print('open', flush=True); time.sleep(120)"
)


def test_ddp_trains_the_run_as_a_two_process_job_through_an_entrypoint(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = demo("--out", str(out), "--ddp", "--steps", "30", "--checkpoint-every", "10", *SMALL)
    assert result.returncode == ExitCode.OK, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    # Trained by the launched torchrun job of two processes, not by the built-in trainer.
    assert report["world_size"] == 2 and report["entrypoint"] == "demo-ddp"
    assert (
        "2-process DDP job" in result.stdout
        and "demo-ddp" in (out / "entrypoints.toml").read_text()
    )
    # The rest as in the single-process demo: one run, its duplicate attached, checkpoints,
    # the evaluation of the final checkpoint, the summary and the plot.
    assert report["steps"] == 30 and report["checkpoints"] == 3
    assert report["runs_started"] == 1 and report["attempts"] == 1
    assert report["duplicates_attached"] >= 1 and report["dead_lettered"] == 0
    assert report["evaluation"]["step"] == 30 and report["evaluation"]["perplexity"] > 1
    assert report["final_train_loss"] > 0 and report["final_val_loss"] > 0
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "trainmq demo: summary" in result.stdout
