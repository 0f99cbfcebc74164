"""The prepare stage: one input file of a dataset into token shards, then the manifest.

Fan-out: one ``PrepareRequest`` per input file.  Each tokenizes its file with
the dataset's tokenizer, splits documents into train and validation by a hash
of their text (long documents — a plain-text file is one — are cut into
pieces of about ``SPLIT_CHARS`` first, so that they contribute to both splits),
writes fixed-size shards and a *part* record of what it wrote.  Whichever
message finds every part present writes the manifest — last, and create-only.

Everything is write-once.  Shards are named by their content's sha256 and
written create-only, so no later message — a redelivery, or a re-sent request
with another ``shard_tokens`` or ``val_fraction`` — can change a shard a
published version names.  A part records the parameters that shaped it and is
create-only too: a request with other parameters for the same output is refused.
A manifest with an empty split is never published.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
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
from .tokenizer import EOS, documents, ensure_tokenizer, pinned_tokenizer

__all__ = ["PrepareResult", "prepare"]


@dataclass(frozen=True)
class PrepareResult:
    input_sha256: str
    tokens: int
    shards: int
    manifest_uri: str | None = None
    manifest_sha256: str | None = None


#: Documents longer than this are cut (at line ends) into pieces for the train/val split.
SPLIT_CHARS = 4096


def _pieces(doc: str) -> list[str]:
    """``doc`` in pieces of about ``SPLIT_CHARS`` characters, cut after a newline."""
    pieces: list[str] = []
    start = 0
    while len(doc) - start > SPLIT_CHARS:
        cut = doc.find("\n", start + SPLIT_CHARS)
        if cut < 0:
            break
        pieces.append(doc[start : cut + 1])
        start = cut + 1
    pieces.append(doc[start:])
    return pieces


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
    if request.tokenizer_uri and request.tokenizer_sha256:
        stored = pinned_tokenizer(store, request.tokenizer_uri, request.tokenizer_sha256)
    else:
        stored = ensure_tokenizer(store, source, request.vocab_size)
    tokenizer = stored.tokenizer
    eos = tokenizer.token_to_id(EOS)
    if eos is None:
        raise PermanentFailure(f"the tokenizer {stored.uri} has no {EOS} token")
    dtype = np.dtype(dtype_for(tokenizer.get_vocab_size())).newbyteorder("<")
    split_docs = _split(documents(data, entry.uri), request.val_fraction)
    prefix = key_of(store, request.output_prefix, "output prefix").rstrip("/")
    # The version's own copy of its tokenizer, so that everything it names is inside it.
    _write_once(store, f"{prefix}/tokenizer.json", stored.data)
    shards: list[Shard] = []
    for split, docs in split_docs.items():
        ids: list[int] = []
        for encoding, (_, ends) in zip(
            tokenizer.encode_batch([d for d, _ in docs]), docs, strict=True
        ):
            ids.extend(encoding.ids)
            if ends:
                ids.append(eos)
        tokens = np.asarray(ids, dtype=dtype)
        shards += _write_shards(store, prefix, split, tokens, request.shard_tokens, entry.sha256)
    part = {
        "input_sha256": entry.sha256,
        "tokenizer": {"path": "tokenizer.json", "sha256": stored.sha256},
        "vocab_size": tokenizer.get_vocab_size(),
        "eos_token": eos,
        "dtype": dtype_for(tokenizer.get_vocab_size()),
        "shards": [s.model_dump() for s in shards],
        "shaped_by": {
            "shard_tokens": request.shard_tokens,
            "val_fraction": request.val_fraction,
            "split_chars": SPLIT_CHARS,
        },
    }
    _write_part(store, f"{prefix}/parts/{entry.sha256}.json", part)
    total = sum(s.tokens for s in shards)
    order = [i.sha256 for i in source.inputs]
    manifest = _manifest_if_complete(store, source, prefix, order)
    if manifest is None:
        return PrepareResult(entry.sha256, total, len(shards))
    return PrepareResult(entry.sha256, total, len(shards), *manifest)


def _split(docs: Iterable[str], fraction: float) -> dict[str, list[tuple[str, bool]]]:
    """Pieces of documents by split, each with whether it ends its document."""
    split_docs: dict[str, list[tuple[str, bool]]] = {"train": [], "val": []}
    for doc in docs:
        pieces = _pieces(doc)
        for number, piece in enumerate(pieces, 1):
            split = "val" if _is_validation(piece, fraction) else "train"
            split_docs[split].append((piece, number == len(pieces)))
    return split_docs


def _write_shards(
    store: BlobStore,
    prefix: str,
    split: str,
    tokens: np.ndarray[Any, Any],
    shard_tokens: int,
    input_sha256: str,
) -> list[Shard]:
    """Cut ``tokens`` into shards, each written once under its content's sha256."""
    shards = []
    for start in range(0, len(tokens), shard_tokens):
        chunk = tokens[start : start + shard_tokens].tobytes()
        sha256 = hashlib.sha256(chunk).hexdigest()
        path = f"shards/{sha256}.bin"
        _write_once(store, f"{prefix}/{path}", chunk)
        shards.append(
            Shard(
                path=path,
                split=split,
                tokens=len(chunk) // tokens.dtype.itemsize,
                bytes=len(chunk),
                sha256=sha256,
                input_sha256=input_sha256,
            )
        )
    return shards


def _write_once(store: BlobStore, key: str, data: bytes) -> None:
    """Create ``key`` unless it exists (content-addressed keys: what is there is the same)."""
    if store.exists(key):
        return
    with contextlib.suppress(BlobExists):  # a racing writer wrote the same bytes
        store.create(key, data)


def _write_part(store: BlobStore, key: str, part: dict[str, Any]) -> None:
    """Create the part record; one that differs (other parameters) is refused."""
    data = canonical_json(part)
    try:
        store.create(key, data)
    except BlobExists:
        with store.get(key) as stream:
            existing = json.loads(stream.read())
        if existing != part:
            theirs = existing.get("shaped_by")
            raise PermanentFailure(
                f"this input was already prepared into {uri_of(store, key).rsplit('/parts/')[0]} "
                f"with other parameters ({theirs}, this request {part['shaped_by']}): datasets "
                "are immutable, write the new version under another output_prefix"
            ) from None


def _check_splits(tokens: dict[str, int], dataset_id: str) -> None:
    for split, name in (("train", "training"), ("val", "validation")):
        if tokens[split] == 0:
            raise PermanentFailure(
                f"the dataset {dataset_id} would have no {name} tokens, so no run could use "
                "it: it is not published (give more or longer documents, or another "
                "val_fraction)"
            )


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
    if any(part["tokenizer"] != first["tokenizer"] for part in parts.values()):
        raise PermanentFailure(
            f"the parts of {source.dataset_id} under {prefix} were tokenized by different "
            "tokenizers: one version has one tokenizer (prepare again under another prefix)"
        )
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
    _check_splits(manifest.tokens, source.dataset_id)
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
