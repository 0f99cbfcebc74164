"""The prepare stage: tokenizer by hash, shards by content, the manifest last and create-only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from trainmq.errors import PermanentFailure
from trainmq.store import open_store
from trainmq.training.dataset import load_split, read_manifest
from trainmq.training.locations import key_of
from trainmq.training.messages import DatasetRef
from trainmq.training.pipeline import manifest_ref
from trainmq.training.prepare import prepare
from trainmq.training.tokenizer import EOS

from .conftest import build_dataset, tiny_requests


def test_fan_out_writes_the_manifest_only_after_the_last_part(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    requests = tiny_requests(store)
    assert len(requests) == 3
    results = [prepare(store, r) for r in requests]
    assert [r.manifest_uri is not None for r in results] == [False, False, True]
    ref = manifest_ref(store, requests[0])
    assert ref is not None and ref.manifest_sha256 == results[-1].manifest_sha256
    manifest_bytes = (tmp_path / ref.manifest_uri.split(str(tmp_path))[1].lstrip("/")).read_bytes()
    assert hashlib.sha256(manifest_bytes).hexdigest() == ref.manifest_sha256  # the version

    manifest = read_manifest(store, ref)
    assert manifest.dtype == "uint16" and manifest.vocab_size == 512
    assert {s.input_sha256 for s in manifest.shards} == {r.input_sha256 for r in requests}
    assert all(s.tokens <= 4096 for s in manifest.shards)
    assert manifest.tokens["train"] == sum(r.tokens for r in results) - manifest.tokens["val"]
    assert manifest.tokens["val"] > 0
    train = load_split(store, manifest, "train")
    assert len(train) == manifest.tokens["train"] and int(train.max()) < 512
    assert int((train == manifest.eos_token).sum()) > 10  # documents end with EOS


def test_redelivery_rewrites_identical_bytes_and_keeps_the_version(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    requests = tiny_requests(store)
    for request in requests:
        prepare(store, request)
    first = manifest_ref(store, requests[0])
    again = prepare(store, requests[1])  # a redelivered message, after the manifest exists
    assert again.manifest_sha256 == first.manifest_sha256 if first else False
    tokenizers = list(store.list_keys("tokenizers/"))
    assert len(tokenizers) == 1  # trained once, reused by hash


def test_tokenizer_is_deterministic_and_decodes_its_own_ids(tmp_path: Path) -> None:
    a, b = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    for store in (a, b):
        for request in tiny_requests(store):
            prepare(store, request)
    ka, kb = next(a.list_keys("tokenizers/")), next(b.list_keys("tokenizers/"))
    assert a.sha256(ka) == b.sha256(kb)
    from tokenizers import Tokenizer

    with a.get(ka) as stream:
        tokenizer = Tokenizer.from_str(stream.read().decode())
    text = "def handler(event, context):\n    return None\n"
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
    assert tokenizer.token_to_id(EOS) is not None


def test_a_changed_dataset_is_refused_not_overwritten(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    requests = tiny_requests(store)
    for request in requests:
        prepare(store, request)
    ref = manifest_ref(store, requests[0])
    assert ref is not None
    other = requests[1].input_sha256
    part = next(k for k in store.list_keys("datasets/") if k.endswith(f"/parts/{other}.json"))
    with store.get(part) as stream:
        data = json.loads(stream.read())
    data["shards"][0]["tokens"] += 1
    store.put(part, json.dumps(data).encode())
    with pytest.raises(PermanentFailure, match="datasets are immutable"):
        prepare(store, requests[0])
    assert manifest_ref(store, requests[0]) == ref


def test_corrupt_shards_and_wrong_versions_are_permanent_failures(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(root)
    ref = build_dataset(store)
    wrong = DatasetRef(manifest_uri=ref.manifest_uri, manifest_sha256="0" * 64)
    with pytest.raises(PermanentFailure, match="sha256"):
        read_manifest(store, wrong)
    manifest = read_manifest(store, ref)
    shard = next(s for s in manifest.shards if s.split == "train")
    path = root / key_of(store, manifest.locate(shard.path))
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PermanentFailure, match=r"corrupt: sha256 .* does not match"):
        load_split(store, manifest, "train")
    assert isinstance(load_split(store, manifest, "val"), np.ndarray)  # other shards still fine


def test_inputs_outside_the_store_or_the_source_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    request = tiny_requests(store)[0]
    outside = request.model_copy(update={"input_uri": "file:///etc/passwd"})
    with pytest.raises(PermanentFailure, match="not in the dataset's source"):
        prepare(store, outside)
    escape = request.model_copy(update={"output_prefix": "file:///tmp/elsewhere"})
    with pytest.raises(PermanentFailure, match="outside this worker's store"):
        prepare(store, escape)
    lying = request.model_copy(update={"input_sha256": "1" * 64})
    with pytest.raises(PermanentFailure, match="the source says"):
        prepare(store, lying)


def test_the_version_is_the_content_wherever_the_store_is(tmp_path: Path) -> None:
    versions = []
    for place in ("one", "elsewhere/two"):
        store = open_store(tmp_path / place)
        ref = build_dataset(store)
        manifest = read_manifest(store, ref)
        assert all(not s.path.startswith(("/", "file:")) for s in manifest.shards)
        assert store.exists(key_of(store, manifest.locate(manifest.tokenizer.path)))
        versions.append(ref.manifest_sha256)
    assert versions[0] == versions[1]


def test_a_manifest_cannot_point_outside_its_folder() -> None:
    from pydantic import ValidationError

    from trainmq.training.dataset import Shard

    for path in ("../../etc/passwd", "/etc/passwd", "shards/../../x.bin", "./x"):
        with pytest.raises(ValidationError):
            Shard(path=path, split="train", tokens=1, bytes=2, sha256="0" * 64, input_sha256="1")
