"""Training on an S3 store (moto): fenced attempt, background checkpoints, cached shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.conftest import Moto, moto, moto_session, s3_store  # noqa: F401 - fixtures
from trainmq.training.checkpoints import CheckpointStore
from trainmq.training.handlers import train_request as handle
from trainmq.training.locations import key_of
from trainmq.training.runs import RunRegistry

from .conftest import build_dataset, train_request


def test_a_run_on_s3_checkpoints_resumes_and_completes(
    moto: Moto,  # noqa: F811 - the fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAINMQ_CACHE", str(tmp_path / "cache"))
    store = s3_store(moto, moto.new_bucket())
    dataset = build_dataset(store)
    request = train_request(store, dataset, "s3-run", steps=20, checkpoint_every=10)
    first = handle(store, request, message_id="m-1")
    registry = RunRegistry(store)
    assert first["attempt"] == 1 and first["steps"] == 20
    checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri))
    assert checkpoints.complete_steps() == [10, 20]
    assert all(checkpoints.verify(step) for step in (10, 20))
    assert any(k.endswith("state-a000001.pt") for k in store.list_keys("runs-data/s3-run/"))
    assert registry.completion(request.idempotency_key) == first
