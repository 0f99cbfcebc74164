"""The data side of users' runs: the trainer's sampler for any loop, and prepare with a
tokenizer a team already has (pinned by sha256)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from trainmq.errors import PermanentFailure
from trainmq.store import open_store
from trainmq.training import PrepareRequest, Run, parse_message
from trainmq.training.dataset import DatasetRef, read_manifest
from trainmq.training.locations import key_of, uri_of
from trainmq.training.pipeline import ingest, manifest_ref, prepare_requests, python_corpus
from trainmq.training.prepare import prepare
from trainmq.training.sampler import TokenSampler
from trainmq.training.trainer import Trainer

from .conftest import train_request


def _copy(tiny_store: tuple[Path, DatasetRef], tmp_path: Path) -> tuple[Path, DatasetRef]:
    root, ref = tiny_store
    shutil.copytree(root, tmp_path / "store")
    moved = ref.manifest_uri.replace(root.as_uri(), (tmp_path / "store").as_uri(), 1)
    return tmp_path / "store", DatasetRef(manifest_uri=moved, manifest_sha256=ref.manifest_sha256)


def test_the_sampler_draws_the_built_in_trainers_batches(
    tiny_store: tuple[Path, DatasetRef], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_CACHE", str(tmp_path / "cache"))
    root, ref = _copy(tiny_store, tmp_path)
    store = open_store(root)
    request = train_request(store, ref, "sampled")
    trainer = Trainer(store, request)
    manifest, train, _ = trainer._load_data()
    trainer.vocab_size = manifest.vocab_size
    with Run(request, store=store) as run:
        sampler = run.sampler()
    seed = request.optimizer.seed
    for step in (0, 1, 17):
        expected = trainer._batch(train, [seed, step], torch.device("cpu"))
        got = sampler.batch(step)
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    assert sampler.position(17) == {
        "sampler": "random-offsets/1",
        "seed": seed,
        "step": 17,
        "rank": 0,
        "world_size": 1,
    }


def test_ranks_split_the_global_batch_and_any_step_is_drawn_alone(
    tiny_store: tuple[Path, DatasetRef], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_CACHE", str(tmp_path / "cache"))
    root, ref = tiny_store
    store = open_store(root)

    def sampler(batch_size: int, rank: int = 0, world_size: int = 1) -> TokenSampler:
        return TokenSampler.open(
            store,
            ref,
            context=16,
            batch_size=batch_size,
            seed=5,
            rank=rank,
            world_size=world_size,
        )

    whole, rank0, rank1 = sampler(8), sampler(4, 0, 2), sampler(4, 1, 2)
    for step in (0, 9):
        parts = np.concatenate([rank0.rows(step), rank1.rows(step)])
        assert np.array_equal(parts, whole.rows(step))
        assert not np.array_equal(rank0.rows(step), rank1.rows(step))
    assert not np.array_equal(rank0.rows(0), rank0.rows(1))
    for step in range(12):  # a history of draws changes nothing: resuming needs only the step
        rank1.rows(step)
    assert np.array_equal(rank1.rows(12), sampler(4, 1, 2).rows(12))
    with pytest.raises(ValueError, match="rank 2"):
        sampler(4, 2, 2)


def _pinned_dataset(root: Path, tokenizer: tuple[str, str]) -> list[PrepareRequest]:
    store = open_store(root)
    source_uri, source_sha, inputs = ingest(store, "tiny", python_corpus(150_000, files=3))
    return prepare_requests(
        store, "tiny", source_uri, source_sha, inputs, shard_tokens=4096, tokenizer=tokenizer
    )


def test_prepare_uses_an_existing_tokenizer_pinned_by_sha256(
    tiny_store: tuple[Path, DatasetRef], tmp_path: Path
) -> None:
    root, ref = tiny_store
    trained = read_manifest(open_store(root), ref)
    uri = trained.locate(trained.tokenizer.path)
    with open_store(root).get(key_of(open_store(root), uri)) as stream:
        data = stream.read()
    team = open_store(tmp_path / "team")
    team.put("tokenizers/team.json", data)
    sha256 = hashlib.sha256(data).hexdigest()
    requests = _pinned_dataset(tmp_path / "team", (uri_of(team, "tokenizers/team.json"), sha256))
    for request in requests:
        prepare(team, request)
    pinned_ref = manifest_ref(team, requests[0])
    assert pinned_ref is not None
    pinned = read_manifest(team, pinned_ref)
    assert pinned.tokenizer.sha256 == sha256 and pinned.vocab_size == trained.vocab_size
    assert list(team.list_keys("tokenizers/")) == ["tokenizers/team.json"]  # none trained
    # The same tokenizer over the same inputs: the same tokens, shard for shard.
    assert [s.sha256 for s in pinned.shards] == [s.sha256 for s in trained.shards]

    wrong = _pinned_dataset(tmp_path / "team", (uri_of(team, "tokenizers/team.json"), "0" * 64))
    with pytest.raises(PermanentFailure, match="corrupt"):
        prepare(team, wrong[0])


def test_a_tokenizer_uri_without_its_sha256_is_refused() -> None:
    body = {
        "dataset_id": "d",
        "source_uri": "file:///s/source.json",
        "source_sha256": "a" * 64,
        "input_uri": "file:///s/in.txt",
        "output_prefix": "file:///s/out",
        "idempotency_key": "k",
        "tokenizer_uri": "file:///s/tokenizer.json",
    }
    with pytest.raises(PermanentFailure, match="tokenizer_uri and tokenizer_sha256 go together"):
        parse_message(json.dumps(body), PrepareRequest)
    assert parse_message(json.dumps({**body, "tokenizer_sha256": "b" * 64}), PrepareRequest)
