"""The DDP example under the launcher: 2 processes on CPU (gloo), one rank SIGKILLed mid-run,
the retried job resumes from the last checkpoint to the weights of an uninterrupted run."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from trainmq.cli.demo import rank_pid
from trainmq.store import BlobStore, open_store
from trainmq.training.checkpoints import CheckpointStore
from trainmq.training.entrypoints import Entrypoints
from trainmq.training.launcher import launch_request
from trainmq.training.outcomes import RetryLater
from trainmq.training.runs import RunRegistry

from .test_launch import _request

ROOT = Path(__file__).resolve().parents[2]


def _entrypoints(tmp_path: Path) -> Entrypoints:
    script = ROOT / "examples" / "ddp_train.py"
    path = tmp_path / "entrypoints.toml"
    path.write_text(f"""
[entrypoints.ddp]
command = ["{sys.executable}", "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", "2", "{script}", "--steps", "30", "--checkpoint-every", "5",
           "--pause", "{{pause}}"]
[entrypoints.ddp.params.pause]
type = "float"
min = 0
max = 1
""")
    return Entrypoints.load(path)


def _weights(store: BlobStore, run: str) -> dict[str, torch.Tensor]:
    with store.get(f"launched/{run}/output/model.pt") as stream:
        data = stream.read()
    weights: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), weights_only=True)
    return weights


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank's process in /proc")
def test_a_ddp_job_with_a_killed_rank_resumes_to_identical_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_BEAT_EVERY", "0.5")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    entrypoints = _entrypoints(tmp_path)
    whole_root, killed_root = tmp_path / "whole", tmp_path / "killed"
    whole = open_store(whole_root)
    assert launch_request(whole, _request(whole, "d", "ddp", pause=0.0), entrypoints)["steps"] == 30

    killed = open_store(killed_root)
    request = _request(killed, "d", "ddp", pause=0.1)
    failures: list[BaseException] = []

    def first_launch() -> None:
        try:
            launch_request(killed, request, entrypoints)
        except BaseException as exc:  # the test looks at what ended the launch
            failures.append(exc)

    launcher = threading.Thread(target=first_launch)
    launcher.start()
    marker = killed_root / "launched" / "d" / "checkpoints" / "step-00000010" / "COMPLETE.json"
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert launcher.is_alive() and time.monotonic() < deadline, "no step-10 checkpoint"
        time.sleep(0.05)
    pid = rank_pid(killed.address, "d", 1)
    assert pid is not None, "rank 1 is not running"
    os.kill(pid, signal.SIGKILL)
    launcher.join(timeout=180)
    assert not launcher.is_alive()
    [failure] = failures
    assert isinstance(failure, RetryLater), failure  # a crash: retried, not dead-lettered

    registry = RunRegistry(killed)
    assert registry.completion("launch/d") is None
    last = CheckpointStore(killed, "launched/d/checkpoints").complete_steps()[-1]
    assert 10 <= last < 30
    done = launch_request(killed, request, entrypoints)
    assert done["steps"] == 30 and done["attempt"] == 2 and done["world_size"] == 2
    resumed = [e.step for e in registry.events("launch/d") if e.event == "resumed"]
    assert resumed == [last, last]  # both ranks, from the last checkpoint before the kill
    expected, got = _weights(whole, "d"), _weights(killed, "d")
    assert list(expected) == list(got)
    assert all(torch.equal(expected[name], got[name]) for name in expected)
