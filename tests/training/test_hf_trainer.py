"""``trainmq.training.hf``: a Hugging Face ``Trainer`` killed mid-run, then stopped at the
deadline, resumes to bit-identical weights; a duplicate delivery trains nothing."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

from trainmq.store import open_store
from trainmq.training.outcomes import RetryLater
from trainmq.training.runs import RunRegistry

ROOT = Path(__file__).resolve().parents[2]
LOOP = Path(__file__).with_name("hf_loop.py")
STEPS = 24
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _hf_loop(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The loop module, imported here (transformers is slow to import: only for these tests).
    On CI the extra is installed (the Makefile's test line), so a missing one fails."""
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    if not os.environ.get("CI"):
        pytest.importorskip("transformers")
    from . import hf_loop

    return hf_loop


def _env() -> dict[str, str]:
    env = {**os.environ, **OFFLINE}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    env["TRAINMQ_BEAT_EVERY"] = "0.2"
    return env


def _checkpointed(store: Path, run: str) -> list[int]:
    folder = store / "hf-runs" / run / "checkpoints"
    return sorted(int(p.parent.name[5:]) for p in folder.glob("step-*/COMPLETE.json"))


def _same_weights(left: Path, right: Path) -> None:
    a = torch.load(left, weights_only=True)
    b = torch.load(right, weights_only=True)
    assert list(a) == list(b) and len(a) > 10
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def test_a_killed_then_stopped_trainer_resumes_to_bit_identical_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # The process to kill: it checkpoints at steps 5 and 10, then waits at step 13.
    victim = subprocess.Popen(
        [sys.executable, str(LOOP), str(killed), "r", str(STEPS), str(tmp_path / "x.pt"), "13"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        hf_loop = _hf_loop(monkeypatch)
        monkeypatch.setenv("TRAINMQ_BEAT_EVERY", "0.2")
        monkeypatch.setenv("TRAINMQ_STALE_AFTER", "60")  # the victim's attempt stays alive
        done = hf_loop.main(str(whole), "r", STEPS, str(tmp_path / "whole.pt"))
        assert done["steps"] == STEPS and done["attempt"] == 1

        deadline = time.monotonic() + 120
        while not ((killed / "hanging").exists() and 10 in _checkpointed(killed, "r")):
            assert victim.poll() is None, victim.communicate()[0]
            assert time.monotonic() < deadline, "the victim reached no step-10 checkpoint in time"
            time.sleep(0.05)

        # A duplicate delivery while the victim trains attaches to it and trains nothing.
        duplicate = hf_loop.main(str(killed), "r", STEPS, str(tmp_path / "dup.pt"))
        assert duplicate == {"run_id": "r", "attached_to_attempt": 1}
        assert not (tmp_path / "dup.pt").exists()
        registry = RunRegistry(open_store(killed))
        assert len(registry.attempts("hf/r")) == 1
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)

    # Redelivered: takes the killed attempt over, resumes from step 10 and is stopped by the
    # deadline at step 17 (off the schedule of every 5): checkpointed, released, retried.
    monkeypatch.setenv("TRAINMQ_STALE_AFTER", "0.5")
    with pytest.raises(RetryLater, match="nearly up"):
        hf_loop.main(str(killed), "r", STEPS, str(tmp_path / "resumed.pt"), stop_at=17)
    assert _checkpointed(killed, "r")[-1] == 17
    assert registry.attempts("hf/r")[-1]["released"]

    done = hf_loop.main(str(killed), "r", STEPS, str(tmp_path / "resumed.pt"))
    assert done["steps"] == STEPS and done["attempt"] == 3
    _same_weights(tmp_path / "whole.pt", tmp_path / "resumed.pt")

    events = registry.events("hf/r")
    assert [(e.attempt, e.step) for e in events if e.event == "resumed"] == [(2, 10), (3, 17)]
    assert [e.step for e in events if e.event == "completed"] == [STEPS]
    progress = [e for e in events if e.event == "progress" and e.train_loss is not None]
    assert progress and {e.step for e in progress} >= {2, 12, 18, STEPS}
    assert _checkpointed(killed, "r") == [20, 24]  # keep_last=2
    assert not list(killed.glob("**/checkpoint-*"))  # nothing of the Trainer's left in the store

    # A later delivery of the finished run returns its result and trains nothing.
    again = hf_loop.main(str(killed), "r", STEPS, str(tmp_path / "again.pt"))
    assert again == done and not (tmp_path / "again.pt").exists()


def test_without_the_extra_the_import_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "trainmq.training.hf", raising=False)
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module("trainmq.training.hf")
    assert str(raised.value) == (
        "trainmq.training.hf needs the hf extra (transformers is not installed): "
        "pip install 'trainmq[hf]'"
    )
