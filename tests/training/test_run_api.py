"""``Run``: a user's own loop, killed or stopped mid-run, resumes to bit-identical weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainmq.store import open_store
from trainmq.training.outcomes import RetryLater
from trainmq.training.runs import RunRegistry

from . import user_loop

LOOP = Path(user_loop.__file__)
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    env["TRAINMQ_STALE_AFTER"] = "0.5"  # the rerun takes the killed attempt's run over soon
    env["TRAINMQ_BEAT_EVERY"] = "0.2"
    return env


def _loop(store: Path, run: str, steps: int, out: Path, pause: float) -> subprocess.Popen[str]:
    args = [str(store), run, str(steps), "5", str(out), str(pause)]
    return subprocess.Popen(
        [sys.executable, str(LOOP), *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    return output


def _same_weights(left: Path, right: Path) -> None:
    a = torch.load(left, weights_only=True)
    b = torch.load(right, weights_only=True)
    assert list(a) == list(b)
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def _checkpointed(store: Path, run: str) -> list[int]:
    folder = store / "user-runs" / run / "checkpoints"
    return sorted(int(p.parent.name[5:]) for p in folder.glob("step-*/COMPLETE.json"))


def test_a_killed_user_loop_resumes_to_bit_identical_weights(tmp_path: Path) -> None:
    steps = 40
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(_loop(whole, "r", steps, tmp_path / "whole.pt", 0.0))

    process = _loop(killed, "r", steps, tmp_path / "resumed.pt", 0.05)
    deadline = time.monotonic() + 120
    while not [s for s in _checkpointed(killed, "r") if s >= 10]:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint of step 10 in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)  # reaps it and closes its pipe
    assert not (tmp_path / "resumed.pt").exists(), "the loop finished before it was killed"

    _finish(_loop(killed, "r", steps, tmp_path / "resumed.pt", 0.0))
    _same_weights(tmp_path / "whole.pt", tmp_path / "resumed.pt")

    registry = RunRegistry(open_store(killed))
    events = registry.events("user/r")
    resumed = [e for e in events if e.event == "resumed"]
    assert len(resumed) == 1 and resumed[0].attempt == 2 and resumed[0].step >= 10
    assert [e.step for e in events if e.event == "completed"] == [steps]
    assert len(_checkpointed(killed, "r")) <= 2  # keep_last=2
    again = _finish(_loop(killed, "r", steps, tmp_path / "again.pt", 0.0))
    assert "nothing to train" in again and not (tmp_path / "again.pt").exists()


def _deadline_after(calls: int) -> user_loop.Callable[[], float]:
    """Plenty of time for ``calls`` looks at the clock, then five seconds."""
    count = iter(range(1 << 30))
    return lambda: 1000.0 if next(count) < calls else 5.0


def test_the_deadline_stops_checkpoints_and_retries_to_identical_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_BEAT_EVERY", "0.2")
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    user_loop.main(str(whole), "d", 30, 5, str(tmp_path / "whole.pt"))
    with pytest.raises(RetryLater, match="nearly up"):
        user_loop.main(
            str(stopped), "d", 30, 5, str(tmp_path / "resumed.pt"), remaining=_deadline_after(12)
        )
    assert _checkpointed(stopped, "d")[-1] == 13  # stopped and checkpointed off the schedule
    registry = RunRegistry(open_store(stopped))
    assert registry.attempts("user/d")[-1]["released"]
    started = time.monotonic()
    user_loop.main(str(stopped), "d", 30, 5, str(tmp_path / "resumed.pt"))
    assert time.monotonic() - started < 30  # a released attempt is taken over at once
    _same_weights(tmp_path / "whole.pt", tmp_path / "resumed.pt")
    assert [e.step for e in registry.events("user/d") if e.event == "resumed"] == [13]


def test_sigterm_checkpoints_releases_and_the_rerun_resumes_at_once(tmp_path: Path) -> None:
    steps = 40
    _finish(_loop(tmp_path / "whole", "t", steps, tmp_path / "whole.pt", 0.0))
    stopped = tmp_path / "stopped"
    process = _loop(stopped, "t", steps, tmp_path / "resumed.pt", 0.05)
    deadline = time.monotonic() + 120
    while not [s for s in _checkpointed(stopped, "t") if s >= 10]:
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # what a preempting worker forwards to its handler
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0 and "RetryLater" in output  # no queue: retried
    assert "preemption" in output
    registry = RunRegistry(open_store(stopped))
    assert registry.attempts("user/t")[-1]["released"]
    released = [e.step for e in registry.events("user/t") if e.event == "released"]
    assert len(released) == 1 and released[0] == _checkpointed(stopped, "t")[-1]

    env = {**_env(), "TRAINMQ_STALE_AFTER": "600"}  # a released attempt needs no waiting
    rerun = subprocess.run(
        [
            sys.executable,
            str(LOOP),
            str(stopped),
            "t",
            str(steps),
            "5",
            str(tmp_path / "resumed.pt"),
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _same_weights(tmp_path / "whole.pt", tmp_path / "resumed.pt")
    assert [e.step for e in registry.events("user/t") if e.event == "resumed"] == released
