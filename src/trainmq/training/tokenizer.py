"""The byte-level BPE tokenizer, trained from the dataset's own text (nothing downloaded).

Training is deterministic: the same source and vocabulary size give the same
tokenizer, so it is stored under a name derived from their hash and reused
by every prepare message of the dataset (and by any later dataset with the
same source).  Several workers racing to train it write create-only; the
first copy wins and everyone uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..errors import PermanentFailure
from ..store import BlobExists, BlobStore
from .dataset import Source, read_verified
from .locations import uri_of

__all__ = [
    "EOS",
    "TOKENIZER_VERSION",
    "StoredTokenizer",
    "documents",
    "ensure_tokenizer",
    "train_tokenizer",
]

EOS = "<|endoftext|>"
#: Bumped whenever training changes, so old and new tokenizers never share a name.
TOKENIZER_VERSION = "bpe-bytelevel/1"


def documents(data: bytes, name: str) -> Iterator[str]:
    """The documents of one input: a ``.jsonl`` file's ``text`` fields, else the whole file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PermanentFailure(f"the input {name} is not UTF-8 text: {exc}") from None
    if not name.endswith(".jsonl"):
        yield text
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            doc = record["text"]
        except (ValueError, KeyError, TypeError):
            raise PermanentFailure(
                f"the input {name} line {number} is not a JSON object with a 'text' field"
            ) from None
        if not isinstance(doc, str):
            raise PermanentFailure(f"the input {name} line {number}: 'text' is not a string")
        yield doc


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def tokenizer_key(inputs_sha256: str, vocab_size: int) -> str:
    name = hashlib.sha256(f"{TOKENIZER_VERSION}:{inputs_sha256}:{vocab_size}".encode())
    return f"tokenizers/{name.hexdigest()[:40]}.json"


@dataclass(frozen=True)
class StoredTokenizer:
    """A tokenizer as the store holds it: where, its bytes and their sha256, and itself."""

    uri: str
    data: bytes
    sha256: str
    tokenizer: Tokenizer


def ensure_tokenizer(store: BlobStore, source: Source, vocab_size: int) -> StoredTokenizer:
    """The dataset's tokenizer, trained now if no one has."""
    key = tokenizer_key(source.content_sha256, vocab_size)
    if not store.exists(key):

        def texts() -> Iterator[str]:
            for item in source.inputs:
                data = read_verified(store, item.uri, item.sha256, "input")
                yield from documents(data, item.uri)

        trained = train_tokenizer(texts(), vocab_size)
        with contextlib.suppress(BlobExists):  # another worker trained it first: use theirs
            store.create(key, trained.to_str().encode())
    uri = uri_of(store, key)
    data = read_verified(store, uri, None, "tokenizer")
    return StoredTokenizer(
        uri, data, hashlib.sha256(data).hexdigest(), Tokenizer.from_str(data.decode())
    )


def pinned_tokenizer(store: BlobStore, uri: str, sha256: str) -> StoredTokenizer:
    """A tokenizer a team already has (a ``tokenizer.json`` in the store), read only if its
    bytes hash to ``sha256``: a dataset can never be tokenized by a file that changed."""
    data = read_verified(store, uri, sha256, "tokenizer")
    try:
        tokenizer = Tokenizer.from_str(data.decode())
    except Exception as exc:  # the tokenizers library raises its own untyped errors
        raise PermanentFailure(f"the tokenizer {uri} is not a tokenizer.json: {exc}") from None
    return StoredTokenizer(uri, data, sha256, tokenizer)
