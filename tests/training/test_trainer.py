"""The trainer in process: exact resume, torn checkpoints skipped, time running out."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainmq.errors import PermanentFailure
from trainmq.store import open_store
from trainmq.training.checkpoints import CheckpointStore
from trainmq.training.locations import key_of
from trainmq.training.trainer import OutOfTime, Trainer

from .conftest import build_dataset, train_request


def test_resuming_from_any_checkpoint_gives_identical_weights(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    whole = Trainer(store, train_request(store, dataset, "whole", steps=30)).run()

    request = train_request(store, dataset, "parts", steps=30)
    # remaining() is asked after every step but checkpoint steps: time is up after step 15.
    clock = iter([1000.0] * 13 + [0.0] * 100)
    with pytest.raises(OutOfTime) as stopped:
        Trainer(store, request, remaining=lambda: next(clock)).run()
    assert stopped.value.step == 15
    checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri))
    assert checkpoints.complete_steps() == [10, 15]

    # A torn checkpoint (no completion marker) and a corrupt one are both skipped.
    store.delete(f"{checkpoints.directory(15)}/COMPLETE.json")
    resumed = Trainer(store, request).run()
    assert resumed.resumed_from == 10
    assert resumed.weights_sha256 == whole.weights_sha256
    assert resumed.steps == 30 and resumed.checkpoints[-1].endswith("step-00000030")


def test_a_corrupt_checkpoint_is_not_resumed_from(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "r", steps=20)
    Trainer(store, request).run()
    checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri))
    key = f"{checkpoints.directory(20)}/state.pt"
    with store.get(key) as stream:
        data = bytearray(stream.read())
    data[-1] ^= 0xFF
    store.put(key, bytes(data))
    newest = checkpoints.newest()
    assert newest is not None and newest.step == 10


def test_a_dataset_shorter_than_the_context_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "r", steps=5)
    too_long = request.model_copy(
        update={"model": request.model.model_copy(update={"context": 10_000_000})}
    )
    with pytest.raises(PermanentFailure, match="fewer than the model's context"):
        Trainer(store, too_long).run()
