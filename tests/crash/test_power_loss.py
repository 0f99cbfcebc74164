"""Power loss: the disk states a workload's file operations could leave, reopened.

A workload (sends, batch sends, receives, visibility changes and deletes on a
standard and a FIFO queue, from creating the database on) runs under an
``LD_PRELOAD`` shim that logs every write, fsync, truncation, rename, link and
unlink with its data.  Disk states are rebuilt from the log as of the last
fsync before a crash point, plus none, a prefix, a random subset or a torn
prefix of the later writes (``fstrace``), and reopened (``power``).

With ``durability="full"`` no state may lose an acknowledged send or undo an
acknowledged delete.  The control run with ``durability="normal"`` must lose
some: it proves the harness can see a loss.  ``make chaos`` runs the long version.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.crash import fstrace, power
from tests.crash.harness import REPO_ROOT

OPERATIONS = 80
STATES = 120


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the power-loss tests need a C compiler (cc)")
        pytest.skip("no C compiler (cc)")
    return fstrace.build_shim(tmp_path_factory.mktemp("shim"))


def test_no_power_loss_state_loses_an_acknowledged_operation(tmp_path: Path, shim: Path) -> None:
    log = power.record(tmp_path, shim, "full", OPERATIONS, seed=11)
    report = power.check_states(log, tmp_path / "traced", tmp_path / "states", STATES, seed=12)
    assert report.violations == []
    assert report.states == STATES
    assert set(report.policies) == set(fstrace.POLICIES)
    assert report.acked_sends > 0


def test_the_harness_sees_the_losses_of_durability_normal(tmp_path: Path, shim: Path) -> None:
    log = power.record(tmp_path, shim, "normal", OPERATIONS, seed=11)
    report = power.check_states(log, tmp_path / "traced", tmp_path / "states", STATES, seed=12)
    assert report.lost() > 0, report.violations[:5]


def test_receives_through_the_server_are_not_undone_by_power_loss(
    tmp_path: Path, shim: Path
) -> None:
    """``trainmq serve`` fsyncs claims: a remote consumer's receipt handle outlives a
    power loss of the server, so no second consumer gets the message meanwhile."""
    log = power.record(tmp_path, shim, "full", OPERATIONS, seed=21, durable_receives=True)
    report = power.check_states(
        log, tmp_path / "traced", tmp_path / "states", STATES, seed=22, check_receives=True
    )
    assert report.violations == []


def test_embedded_receives_may_be_undone_by_power_loss(tmp_path: Path, shim: Path) -> None:
    """The window docs/durability.md describes for embedded consumers (who die with the
    machine): their unsynced claims may roll back.  Also proves the receive check works."""
    log = power.record(tmp_path, shim, "full", OPERATIONS, seed=21)
    report = power.check_states(
        log, tmp_path / "traced", tmp_path / "states", STATES, seed=22, check_receives=True
    )
    assert report.undone_receives() > 0
    assert report.lost() == 0


def test_creation_killed_at_every_file_operation_reopens(tmp_path: Path, shim: Path) -> None:
    """A kill at any file operation of ``trainmq.client(new_path)`` leaves nothing, or a
    database that opens; never a file refused forever."""
    env = dict(os.environ, LD_PRELOAD=str(shim), TMQ_TRACE_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.crash.fsworkload", "creation", str(tmp_path)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, check=True, timeout=600, capture_output=True, text=True
    )
    summary = json.loads(result.stdout)
    assert summary["failures"] == []
    assert "unfinished" not in summary
    assert summary["points"] >= 20  # every write, fsync, link and unlink of a creation
