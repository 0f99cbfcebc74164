"""Checkpoints that cost little: written in the background from a copy, by time as well as
steps, pruned by retention; shards verified once per host and memory-mapped."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trainmq.errors import PermanentFailure
from trainmq.store import BlobInfo, BlobStore, open_store
from trainmq.store.base import Payload
from trainmq.training.checkpoints import AsyncCheckpointer, CheckpointStore
from trainmq.training.dataset import load_split, read_manifest
from trainmq.training.locations import key_of
from trainmq.training.shards import ShardCache, map_split
from trainmq.training.trainer import Trainer

from .conftest import build_dataset, train_request


class _SlowStore:
    """A store whose state writes wait until the test lets them go."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self.release = threading.Event()

    def put(self, key: str, data: Payload) -> BlobInfo:
        if "/state" in key:
            assert self.release.wait(30)
        return self._store.put(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_an_asynchronous_save_blocks_only_for_the_copy(tmp_path: Path) -> None:
    slow = _SlowStore(open_store(tmp_path))
    checkpoints = CheckpointStore(slow, "run/checkpoints", attempt=3)  # type: ignore[arg-type]
    writer = AsyncCheckpointer(checkpoints)
    weights = torch.arange(1000, dtype=torch.float32)
    blocked = writer.submit(7, {"model": {"w": weights}, "step": 7})
    assert writer.busy and not checkpoints.complete_steps()  # the write goes on behind
    weights.add_(1.0)  # training changes the weights at once: the saved copy must not
    slow.release.set()
    writer.wait()
    assert blocked < 5 and checkpoints.complete_steps() == [7]
    loaded = checkpoints.load(7)
    assert loaded is not None
    assert torch.equal(loaded.state["model"]["w"], torch.arange(1000, dtype=torch.float32))
    assert any(k.endswith("/state-a000003.pt") for k in slow.list_keys("run/"))


def test_retention_keeps_the_newest_and_every_kth(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    checkpoints = CheckpointStore(store, "run/checkpoints", attempt=1, keep_last=2, keep_every=4)
    for step in range(1, 10):
        checkpoints.save(step, {"step": step})
    assert checkpoints.complete_steps() == [4, 8, 9]
    assert sorted({k.split("/")[2] for k in store.list_keys("run/")}) == [
        "step-00000004",
        "step-00000008",
        "step-00000009",
    ]


def test_orphaned_state_files_of_killed_writes_are_removed(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    checkpoints = CheckpointStore(store, "run/checkpoints", attempt=2)
    checkpoints.save(5, {"step": 5})
    store.put(f"{checkpoints.directory(6)}/state-a000001.pt", b"half a checkpoint")
    store.put(f"{checkpoints.directory(5)}/state-a000001.pt", b"a superseded writer's")
    assert checkpoints.remove_unmarked() == 2
    assert checkpoints.load(5) is not None and checkpoints.complete_steps() == [5]


def test_checkpoints_by_time_as_well_as_steps(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "timed", steps=4, checkpoint_every=1000)
    timed = request.model_copy(update={"checkpoint_seconds": 1e-9})
    result = Trainer(store, timed, cache=ShardCache(tmp_path / "cache")).run()
    checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri))
    assert checkpoints.complete_steps() == [1, 2, 3, 4]
    assert result.checkpoint_blocked_seconds > 0


def test_shards_are_verified_once_per_host_then_mapped(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    ref = build_dataset(store)
    manifest = read_manifest(store, ref)
    cache = ShardCache(tmp_path / "cache")
    mapped = map_split(store, manifest, "train", cache)
    whole = load_split(store, manifest, "train")
    assert len(mapped) == len(whole)
    fetched = cache.fetched
    assert fetched == sum(1 for s in manifest.shards if s.split == "train")
    # Windows across shard boundaries read the same tokens as the whole split in memory.
    boundary = next(s.tokens for s in manifest.shards if s.split == "train")
    for start in (0, boundary - 5, len(whole) - 40):
        assert np.array_equal(mapped[start : start + 40], whole[start : start + 40])
    # A second attempt on this host maps its verified copies: nothing is read or hashed again.
    for shard in manifest.shards:
        if shard.split == "train":
            store.delete(key_of(store, manifest.locate(shard.path)))
    again = map_split(store, manifest, "train", cache)
    assert cache.fetched == fetched and np.array_equal(again[0:100], whole[0:100])


def test_a_corrupt_shard_is_refused_even_if_its_content_was_cached_elsewhere(
    tmp_path: Path,
) -> None:
    cache = ShardCache(tmp_path / "cache")
    stores = [open_store(tmp_path / name) for name in ("a", "b")]
    refs = [build_dataset(store) for store in stores]
    manifests = [read_manifest(s, r) for s, r in zip(stores, refs, strict=True)]
    map_split(stores[0], manifests[0], "val", cache)
    shard = next(s for s in manifests[1].shards if s.split == "val")
    key = key_of(stores[1], manifests[1].locate(shard.path))
    with stores[1].get(key) as stream:
        data = bytearray(stream.read())
    data[3] ^= 0x10
    stores[1].put(key, bytes(data))
    with pytest.raises(PermanentFailure, match="is corrupt"):
        map_split(stores[1], manifests[1], "val", cache)


def test_temporary_files_of_killed_writes_are_cleaned_up(tmp_path: Path) -> None:
    import os

    store = open_store(tmp_path / "store")
    checkpoints = CheckpointStore(store, "run/checkpoints", attempt=1)
    checkpoints.save(1, {"step": 1})
    directory = tmp_path / "store" / "run" / "checkpoints" / "step-00000001"
    old, young = directory / ".trainmq-tmp-killed", directory / ".trainmq-tmp-in-flight"
    for path in (old, young):
        path.write_bytes(b"partial")
    os.utime(old, (1, 1))
    fetch = tmp_path / "cache" / "ab" / ".fetch-killed"
    fetch.parent.mkdir(parents=True)
    fetch.write_bytes(b"partial")
    os.utime(fetch, (1, 1))
    assert checkpoints.remove_unmarked() == 1
    ShardCache(tmp_path / "cache")
    assert not old.exists() and young.exists() and not fetch.exists()
