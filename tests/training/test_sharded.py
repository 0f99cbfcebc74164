"""Sharded checkpoints with torch.distributed.checkpoint: two real ranks (gloo on CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from trainmq.store import open_store
from trainmq.training.checkpoints import CheckpointStore
from trainmq.training.sharded import load_sharded, save_sharded

REPO = Path(__file__).resolve().parents[2]


def test_two_ranks_save_and_load_one_sharded_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ranks = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.training.dcp_rank",
                str(root),
                str(tmp_path / "init"),
                str(rank),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in ranks]
    assert [p.returncode for p in ranks] == [0, 0], outputs
    store = open_store(root)
    with store.get("run/checkpoints/step-00000005/COMPLETE.json") as stream:
        marker = json.loads(stream.read())
    assert marker["format"] == "torch.distributed.checkpoint" and marker["attempt"] == 1
    assert ".metadata" in marker["files"] and len(marker["files"]) >= 3  # metadata + 2 ranks


def test_a_sharded_checkpoint_with_a_corrupt_file_is_not_loaded(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    checkpoints = CheckpointStore(store, "run/checkpoints", attempt=2)
    save_sharded(checkpoints, 3, {"w": torch.arange(8.0)})
    target = {"w": torch.zeros(8)}
    assert load_sharded(checkpoints, 3, target) and torch.equal(target["w"], torch.arange(8.0))
    key = next(k for k in store.list_keys("run/") if k.endswith(".distcp"))
    with store.get(key) as stream:
        data = bytearray(stream.read())
    data[-1] ^= 0xFF
    store.put(key, bytes(data))
    assert not load_sharded(checkpoints, 3, {"w": torch.zeros(8)})
    assert not load_sharded(checkpoints, 4, {"w": torch.zeros(8)})  # no such checkpoint
