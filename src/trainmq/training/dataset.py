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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from ..errors import PermanentFailure
from ..store import BlobNotFound, BlobStore
from .locations import key_of
from .messages import DatasetRef

__all__ = [
    "MANIFEST_FORMAT",
    "SOURCE_FORMAT",
    "FileRef",
    "Manifest",
    "Shard",
    "Source",
    "SourceInput",
    "SourceRef",
    "canonical_json",
    "dtype_for",
    "load_split",
    "read_manifest",
    "read_source",
    "read_verified",
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

    @property
    def content_sha256(self) -> str:
        """A hash of the inputs' contents, in order (not of where they are stored)."""
        return hashlib.sha256(
            canonical_json([[i.sha256, i.bytes] for i in self.inputs])
        ).hexdigest()


#: A path inside a dataset version's folder (and no ``.`` or ``..`` segment: see _inside).
_RELATIVE = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$"


def _inside(path: str) -> str:
    if any(part in (".", "..", "") for part in path.split("/")):
        raise ValueError(f"{path!r} is not a path inside the dataset's folder")
    return path


class Shard(_Model):
    path: str = Field(pattern=_RELATIVE, description="relative to the manifest's folder")
    _check_path = field_validator("path")(_inside)
    split: Literal["train", "val"]
    tokens: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str
    input_sha256: str


class FileRef(_Model):
    path: str = Field(pattern=_RELATIVE, description="relative to the manifest's folder")
    _check_path = field_validator("path")(_inside)
    sha256: str


class SourceRef(_Model):
    inputs_sha256: str = Field(description="Source.content_sha256: the inputs' hashes, hashed")


class Manifest(_Model):
    """A dataset version (its sha256 is the version).

    Every file is named by its path *relative to the manifest's folder* and its
    sha256, so the version depends on the content alone: a dataset copied to
    another store or bucket keeps its version.
    """

    format: Literal["trainmq-dataset/1"] = "trainmq-dataset/1"
    dataset_id: str
    dtype: Literal["uint16", "uint32"]
    vocab_size: int
    eos_token: int
    tokenizer: FileRef
    source: SourceRef
    shards: list[Shard]
    tokens: dict[str, int]
    _base: str = PrivateAttr(default="")

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump())

    def locate(self, path: str) -> str:
        """The URI of a file of this version (known once read with ``read_manifest``)."""
        if not self._base:
            raise ValueError("this manifest was not read from a store: its files have no URIs")
        return f"{self._base}/{path}"


def read_verified(store: BlobStore, uri: str, sha256: str | None, what: str) -> bytes:
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
    data = read_verified(store, uri, sha256, "dataset source")
    try:
        return Source.model_validate_json(data)
    except ValidationError as exc:
        raise PermanentFailure(f"the dataset source {uri} is not valid: {exc}") from None


def read_manifest(store: BlobStore, ref: DatasetRef) -> Manifest:
    """The manifest ``ref`` pins, after checking its bytes hash to the pinned version."""
    data = read_verified(store, ref.manifest_uri, ref.manifest_sha256, "dataset manifest")
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as exc:
        raise PermanentFailure(
            f"the dataset manifest {ref.manifest_uri} is not valid: {exc}"
        ) from None
    manifest._base = ref.manifest_uri.rsplit("/", 1)[0]
    return manifest


def load_split(store: BlobStore, manifest: Manifest, split: str) -> np.ndarray[Any, Any]:
    """All tokens of ``split`` in manifest order, every shard verified against its sha256."""
    parts = []
    for shard in manifest.shards:
        if shard.split != split:
            continue
        uri = manifest.locate(shard.path)
        data = read_verified(store, uri, shard.sha256, "shard")
        tokens = np.frombuffer(data, dtype=np.dtype(manifest.dtype).newbyteorder("<"))
        if len(tokens) != shard.tokens:
            raise PermanentFailure(
                f"the shard {uri} holds {len(tokens)} tokens, the manifest says {shard.tokens}"
            )
        parts.append(tokens.astype(np.int64))
    if not parts:
        raise PermanentFailure(f"the dataset {manifest.dataset_id} has no {split} tokens")
    return np.concatenate(parts)
