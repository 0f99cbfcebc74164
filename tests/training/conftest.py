"""A tiny dataset built from Python's own text, shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainmq.store import BlobStore, open_store
from trainmq.training.locations import uri_of
from trainmq.training.messages import (
    DatasetRef,
    ModelConfig,
    OptimizerConfig,
    PrepareRequest,
    TrainRequest,
)
from trainmq.training.pipeline import ingest, manifest_ref, prepare_requests, python_corpus
from trainmq.training.prepare import prepare

TINY_MODEL = ModelConfig(layers=1, width=32, heads=2, context=32)


def tiny_requests(store: BlobStore, dataset_id: str = "tiny") -> list[PrepareRequest]:
    files = python_corpus(max_bytes=150_000, files=3)
    source_uri, source_sha, inputs = ingest(store, dataset_id, files)
    return prepare_requests(
        store, dataset_id, source_uri, source_sha, inputs, vocab_size=512, shard_tokens=4096
    )


def build_dataset(store: BlobStore) -> DatasetRef:
    requests = tiny_requests(store)
    for request in requests:
        prepare(store, request)
    ref = manifest_ref(store, requests[0])
    assert ref is not None
    return ref


def train_request(
    store: BlobStore,
    dataset: DatasetRef,
    run: str,
    *,
    steps: int = 30,
    checkpoint_every: int = 10,
    model: ModelConfig = TINY_MODEL,
    batch_size: int = 4,
) -> TrainRequest:
    return TrainRequest(
        run_id=run,
        idempotency_key=f"test/{run}",
        dataset=dataset,
        model=model,
        optimizer=OptimizerConfig(steps=steps, batch_size=batch_size, seed=7),
        resources={"threads": 1},  # type: ignore[arg-type]
        checkpoint_uri=uri_of(store, f"runs-data/{run}/checkpoints"),
        output_uri=uri_of(store, f"runs-data/{run}/output"),
        checkpoint_every=checkpoint_every,
    )


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DatasetRef]:
    """A store holding the tiny dataset (tests copy it before changing anything)."""
    root = tmp_path_factory.mktemp("tiny-store")
    return root, build_dataset(open_store(root))
