"""Token shards on the training host: fetched once, verified once, memory-mapped.

Holding every split in RAM as int64 (8 bytes a token, for shards stored at 2)
does not scale, and neither does re-hashing every shard at every attempt.  A
``ShardCache`` streams each shard once from the store into a local file while
hashing it, and only a shard whose sha256 matches the manifest is renamed into
place; after that the host trusts its copy (the name holds the verified hash)
and maps it read-only.  A copy is keyed by the shard's URI *and* its sha256, so
a corrupt shard of another dataset in the store is still detected, even when a
shard of identical content was verified before.

``TokenSplit`` is a split's shards as one sequence of tokens: slicing reads
(maps) only the windows a batch needs, across shard boundaries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PermanentFailure
from ..store import BlobNotFound, BlobStore
from .dataset import Manifest
from .locations import key_of

__all__ = ["CACHE_ENV", "ShardCache", "TokenSplit", "default_cache_dir", "map_split"]

#: Where the training host keeps its verified copies of shards (default: a temp folder).
CACHE_ENV = "TRAINMQ_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "trainmq-cache")


class ShardCache:
    """Verified local copies of shards below ``root``."""

    def __init__(self, root: str | os.PathLike[str], stale_after: float = 3600.0) -> None:
        self.root = Path(root)
        self.fetched = 0  # shards read from the store by this cache (the rest were cached)
        # Fetches that a killed process left half-written (younger ones may be in flight).
        cutoff = time.time() - stale_after
        for leftover in self.root.glob("*/.fetch-*"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def path(self, store: BlobStore, uri: str, sha256: str, progress: Callable[[], None]) -> Path:
        """The local, verified copy of the shard at ``uri`` (fetched if not yet here)."""
        place = hashlib.sha256(uri.encode()).hexdigest()[:24]
        target = self.root / sha256[:2] / f"{place}-{sha256}.bin"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".fetch-{uuid.uuid4().hex}")
        digest = hashlib.sha256()
        try:
            with store.get(key_of(store, uri, "shard")) as stream, open(temp, "wb") as out:
                for chunk in stream.iter_chunks():
                    digest.update(chunk)
                    out.write(chunk)
                    progress()
            if digest.hexdigest() != sha256:
                raise PermanentFailure(
                    f"the shard {uri} is corrupt: sha256 {digest.hexdigest()} does not match "
                    f"the expected {sha256}"
                )
            os.replace(temp, target)
        except BlobNotFound:
            raise PermanentFailure(f"the shard {uri} does not exist") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self.fetched += 1
        return target


class TokenSplit:
    """The tokens of one split, shard after shard, as one sliceable sequence."""

    def __init__(self, parts: list[np.ndarray[Any, Any]]) -> None:
        self._parts = [p for p in parts if len(p)]
        self._starts = np.cumsum([0] + [len(p) for p in self._parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, window: slice) -> np.ndarray[Any, Any]:
        start, stop, step = window.indices(len(self))
        if step != 1:
            raise ValueError("a TokenSplit slices contiguous windows only")
        pieces = []
        index = int(np.searchsorted(self._starts, start, side="right")) - 1
        while start < stop and index < len(self._parts):
            offset = start - int(self._starts[index])
            take = min(stop - start, len(self._parts[index]) - offset)
            pieces.append(self._parts[index][offset : offset + take])
            start += take
            index += 1
        if len(pieces) == 1:
            return np.asarray(pieces[0])
        return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)


def map_split(
    store: BlobStore,
    manifest: Manifest,
    split: str,
    cache: ShardCache,
    progress: Callable[[], None] = lambda: None,
) -> TokenSplit:
    """The shards of ``split`` in manifest order, each verified once on this host, mapped."""
    dtype = np.dtype(manifest.dtype).newbyteorder("<")
    parts: list[np.ndarray[Any, Any]] = []
    for shard in manifest.shards:
        if shard.split != split:
            continue
        uri = manifest.locate(shard.path)
        path = cache.path(store, uri, shard.sha256, progress)
        if path.stat().st_size != shard.tokens * dtype.itemsize:
            raise PermanentFailure(
                f"the shard {uri} holds {path.stat().st_size // dtype.itemsize} tokens, "
                f"the manifest says {shard.tokens}"
            )
        if shard.tokens:
            parts.append(np.memmap(path, dtype=dtype, mode="r"))
        progress()
    if not parts:
        raise PermanentFailure(f"the dataset {manifest.dataset_id} has no {split} tokens")
    return TokenSplit(parts)
