"""Dataset versions: sources, token shards and the manifest that pins them.

A dataset is built from a *source* — the list of its input files with their
sha256 — into fixed-size shards of token ids (``.bin``, little-endian uint16
or uint32 by vocabulary size).  The *manifest* names the tokenizer and every
shard with its size, token count and sha256; it is written last and
create-only, and the sha256 of its bytes is the dataset version.  Readers
verify every hash, so a dataset cannot change under a run that pinned it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import PermanentFailure
from ..store import BlobNotFound, BlobStore
from .locations import key_of
from .messages import DatasetRef

__all__ = [
    "MANIFEST_FORMAT",
    "SOURCE_FORMAT",
    "Manifest",
    "Shard",
    "Source",
    "SourceInput",
    "canonical_json",
    "dtype_for",
    "load_split",
    "read_manifest",
    "read_source",
]

MANIFEST_FORMAT = "trainmq-dataset/1"
SOURCE_FORMAT = "trainmq-source/1"


def canonical_json(data: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal content gives equal bytes (and hashes)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def dtype_for(vocab_size: int) -> Literal["uint16", "uint32"]:
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceInput(_Model):
    uri: str
    sha256: str
    bytes: int = Field(ge=0)


class Source(_Model):
    """What a dataset is built from: its input files, by content."""

    format: Literal["trainmq-source/1"] = "trainmq-source/1"
    dataset_id: str
    inputs: list[SourceInput]


class Shard(_Model):
    uri: str
    split: Literal["train", "val"]
    tokens: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str
    input_sha256: str


class ObjectRef(_Model):
    uri: str
    sha256: str


class Manifest(_Model):
    """A dataset version (its sha256 is the version)."""

    format: Literal["trainmq-dataset/1"] = "trainmq-dataset/1"
    dataset_id: str
    dtype: Literal["uint16", "uint32"]
    vocab_size: int
    eos_token: int
    tokenizer: ObjectRef
    source: ObjectRef
    shards: list[Shard]
    tokens: dict[str, int]

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump())


def _read_verified(store: BlobStore, uri: str, sha256: str | None, what: str) -> bytes:
    key = key_of(store, uri, what)
    try:
        with store.get(key) as stream:
            data = stream.read()
    except BlobNotFound:
        raise PermanentFailure(f"the {what} {uri} does not exist") from None
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise PermanentFailure(
            f"the {what} {uri} is corrupt: sha256 {actual} does not match the expected {sha256}"
        )
    return data


def read_source(store: BlobStore, uri: str, sha256: str) -> Source:
    data = _read_verified(store, uri, sha256, "dataset source")
    try:
        return Source.model_validate_json(data)
    except ValidationError as exc:
        raise PermanentFailure(f"the dataset source {uri} is not valid: {exc}") from None


def read_manifest(store: BlobStore, ref: DatasetRef) -> Manifest:
    """The manifest ``ref`` pins, after checking its bytes hash to the pinned version."""
    data = _read_verified(store, ref.manifest_uri, ref.manifest_sha256, "dataset manifest")
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        raise PermanentFailure(
            f"the dataset manifest {ref.manifest_uri} is not valid: {exc}"
        ) from None


def load_split(store: BlobStore, manifest: Manifest, split: str) -> np.ndarray[Any, Any]:
    """All tokens of ``split`` in manifest order, every shard verified against its sha256."""
    parts = []
    for shard in manifest.shards:
        if shard.split != split:
            continue
        data = _read_verified(store, shard.uri, shard.sha256, "shard")
        tokens = np.frombuffer(data, dtype=np.dtype(manifest.dtype).newbyteorder("<"))
        if len(tokens) != shard.tokens:
            raise PermanentFailure(
                f"the shard {shard.uri} holds {len(tokens)} tokens, "
                f"the manifest says {shard.tokens}"
            )
        parts.append(tokens.astype(np.int64))
    if not parts:
        raise PermanentFailure(f"the dataset {manifest.dataset_id} has no {split} tokens")
    return np.concatenate(parts)
