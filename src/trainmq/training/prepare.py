"""The prepare stage: one input file of a dataset into token shards, then the manifest.

Fan-out: one ``PrepareRequest`` per input file.  Each tokenizes its file with
the dataset's tokenizer, splits documents into train and validation by a hash
of their text (so the split is stable), writes fixed-size shards and a *part*
record of what it wrote.  Everything it writes is a pure function of the
input, so a redelivered message rewrites identical bytes.  Whichever message
finds every part present writes the manifest — last, and create-only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PermanentFailure
from ..store import BlobExists, BlobStore
from .dataset import (
    FileRef,
    Manifest,
    Shard,
    Source,
    SourceRef,
    canonical_json,
    dtype_for,
    read_source,
    read_verified,
)
from .locations import key_of, uri_of
from .messages import PrepareRequest
from .tokenizer import EOS, documents, ensure_tokenizer

__all__ = ["PrepareResult", "prepare"]


@dataclass(frozen=True)
class PrepareResult:
    input_sha256: str
    tokens: int
    shards: int
    manifest_uri: str | None = None
    manifest_sha256: str | None = None


def _is_validation(doc: str, fraction: float) -> bool:
    if fraction <= 0:
        return False
    digest = hashlib.sha256(doc.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def prepare(store: BlobStore, request: PrepareRequest) -> PrepareResult:
    """Tokenize ``request.input_uri`` into shards; write the manifest if this was the last part."""
    source = read_source(store, request.source_uri, request.source_sha256)
    entry = next((i for i in source.inputs if i.uri == request.input_uri), None)
    if entry is None:
        raise PermanentFailure(f"the input {request.input_uri} is not in the dataset's source")
    if request.input_sha256 is not None and request.input_sha256 != entry.sha256:
        raise PermanentFailure(
            f"the input {request.input_uri}: the message says sha256 {request.input_sha256}, "
            f"the source says {entry.sha256}"
        )
    data = read_verified(store, entry.uri, entry.sha256, "input")
    stored = ensure_tokenizer(store, source, request.vocab_size)
    tokenizer = stored.tokenizer
    eos = tokenizer.token_to_id(EOS)
    if eos is None:
        raise PermanentFailure(f"the tokenizer {stored.uri} has no {EOS} token")
    dtype = np.dtype(dtype_for(tokenizer.get_vocab_size())).newbyteorder("<")
    split_docs: dict[str, list[str]] = {"train": [], "val": []}
    for doc in documents(data, entry.uri):
        split_docs["val" if _is_validation(doc, request.val_fraction) else "train"].append(doc)

    prefix = key_of(store, request.output_prefix, "output prefix").rstrip("/")
    # The version's own copy of its tokenizer, so that everything it names is inside it.
    store.put(f"{prefix}/tokenizer.json", stored.data)
    shards: list[Shard] = []
    for split, docs in split_docs.items():
        ids: list[int] = []
        for encoding in tokenizer.encode_batch(docs):
            ids.extend(encoding.ids)
            ids.append(eos)
        tokens = np.asarray(ids, dtype=dtype)
        for number, start in enumerate(range(0, len(tokens), request.shard_tokens)):
            chunk = tokens[start : start + request.shard_tokens].tobytes()
            path = f"shards/{entry.sha256[:16]}-{split}-{number:05d}.bin"
            store.put(f"{prefix}/{path}", chunk)
            shards.append(
                Shard(
                    path=path,
                    split=split,
                    tokens=len(chunk) // dtype.itemsize,
                    bytes=len(chunk),
                    sha256=hashlib.sha256(chunk).hexdigest(),
                    input_sha256=entry.sha256,
                )
            )
    part = {
        "input_sha256": entry.sha256,
        "tokenizer": {"path": "tokenizer.json", "sha256": stored.sha256},
        "vocab_size": tokenizer.get_vocab_size(),
        "eos_token": eos,
        "dtype": dtype_for(tokenizer.get_vocab_size()),
        "shards": [s.model_dump() for s in shards],
    }
    store.put(f"{prefix}/parts/{entry.sha256}.json", canonical_json(part))
    total = sum(s.tokens for s in shards)
    order = [i.sha256 for i in source.inputs]
    manifest = _manifest_if_complete(store, source, prefix, order)
    if manifest is None:
        return PrepareResult(entry.sha256, total, len(shards))
    return PrepareResult(entry.sha256, total, len(shards), *manifest)


def _manifest_if_complete(
    store: BlobStore, source: Source, prefix: str, entry_order: list[str]
) -> tuple[str, str] | None:
    """Write the manifest when every input's part exists; its URI and sha256, else ``None``."""
    parts: dict[str, dict[str, Any]] = {}
    for sha in dict.fromkeys(entry_order):
        key = f"{prefix}/parts/{sha}.json"
        if not store.exists(key):
            return None
        with store.get(key) as stream:
            parts[sha] = json.loads(stream.read())
    first = next(iter(parts.values()))
    inputs_sha256 = source.content_sha256
    shards = [Shard(**s) for sha in parts for s in parts[sha]["shards"]]
    manifest = Manifest(
        dataset_id=source.dataset_id,
        dtype=first["dtype"],
        vocab_size=first["vocab_size"],
        eos_token=first["eos_token"],
        tokenizer=FileRef(**first["tokenizer"]),
        source=SourceRef(inputs_sha256=inputs_sha256),
        shards=shards,
        tokens={
            split: sum(s.tokens for s in shards if s.split == split) for split in ("train", "val")
        },
    )
    data = manifest.to_bytes()
    key = f"{prefix}/manifest.json"
    try:
        store.create(key, data)
    except BlobExists:
        existing = read_verified(store, uri_of(store, key), None, "dataset manifest")
        if existing != data:
            raise PermanentFailure(
                f"a different manifest already exists at {uri_of(store, key)}: datasets are "
                "immutable, write the new version under another output_prefix"
            ) from None
    return uri_of(store, key), hashlib.sha256(data).hexdigest()
