"""The blob-store contract every dataset store keeps, and the key rules they share.

A store maps keys (``"datasets/wiki/shard-000.bin"``) to immutable-once-read
blobs of bytes.  What every implementation promises:

* ``put`` is atomic: a reader sees the old blob or the new one, never a mix,
  and a blob ``put`` returned for survives a crash (local: fsync + rename).
* ``create`` is create-only: of any number of writers racing on one key, in any
  number of processes, exactly one succeeds; the others get :class:`BlobExists`.
* ``get`` streams: blobs far larger than memory are read in chunks.
* ``delete`` is idempotent: deleting a missing key succeeds.
* Keys follow one set of rules everywhere (:func:`validate_key`), so a dataset
  that fits one store fits every store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from trainmq.store.errors import InvalidKey

__all__ = [
    "CHUNK_SIZE",
    "MAX_KEY_BYTES",
    "BlobInfo",
    "BlobStore",
    "BlobStream",
    "Payload",
    "Readable",
    "iter_payload",
    "validate_key",
    "validate_prefix",
]

#: How many bytes a streaming read or write moves at a time.
CHUNK_SIZE = 1024 * 1024
#: S3's limit on a key's UTF-8 length, applied to every store.
MAX_KEY_BYTES = 1024
#: Names starting with this are a local store's in-flight temporary files.
TEMP_PREFIX = ".trainmq-tmp-"


class Readable(Protocol):
    """Anything with a binary ``read``: an open file, an ``io.BytesIO``, a socket stream."""

    def read(self, size: int = ..., /) -> bytes: ...


#: What ``put`` and ``create`` accept: bytes, or a binary stream read to its end.
Payload = bytes | bytearray | memoryview | Readable


@dataclass(frozen=True)
class BlobInfo:
    """What a store knows about one blob without reading it.

    ``sha256`` is the hex digest of the content, or ``None`` for an S3 object
    that was not written through trainmq (use :meth:`BlobStore.sha256` then).
    ``etag`` changes whenever the blob is replaced; compare it, never parse it.
    """

    key: str
    size: int
    sha256: str | None
    etag: str


class _RawStream(Protocol):
    def read(self, size: int | None = ..., /) -> bytes: ...

    def close(self) -> None: ...


class BlobStream:
    """A blob being read: ``read(n)``, iteration by chunks, and a context manager.

    The content is a snapshot: replacing or deleting the key while it is being
    read does not change what this stream returns.
    """

    def __init__(self, key: str, size: int, raw: _RawStream, chunk_size: int = CHUNK_SIZE) -> None:
        self.key = key
        self.size = size
        self._raw = raw
        self._chunk_size = chunk_size

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is negative); ``b""`` at the end."""
        return self._raw.read(None if size < 0 else size)

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The remaining content, in chunks of at most ``chunk_size`` bytes."""
        size = chunk_size or self._chunk_size
        while chunk := self._raw.read(size):
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class BlobStore(Protocol):
    """The dataset-store contract; see the module docstring for the promises."""

    @property
    def address(self) -> str:
        """The address :func:`trainmq.store.open_store` opens this store from."""
        ...

    @property
    def bucket_name(self) -> str:
        """What claim-check pointers name as ``s3BucketName`` for this store."""
        ...

    def put(self, key: str, data: Payload) -> BlobInfo:
        """Store ``data`` under ``key`` atomically, replacing any blob there."""
        ...

    def create(self, key: str, data: Payload) -> BlobInfo:
        """Store ``data`` under ``key`` only if no blob is there; else raise ``BlobExists``."""
        ...

    def get(self, key: str) -> BlobStream:
        """Open the blob for streaming; raise ``BlobNotFound`` if there is none."""
        ...

    def head(self, key: str) -> BlobInfo:
        """Size, sha256 and etag of the blob; raise ``BlobNotFound`` if there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""
        ...

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix`` (a plain string prefix), in sorted order."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; succeed if there is none."""
        ...

    def sha256(self, key: str) -> str:
        """The hex sha256 of the blob's content (recorded at write time when known)."""
        ...

    def location(self, key: str) -> tuple[str, str]:
        """``(bucket name, object key)`` of ``key``, as a claim-check pointer names it."""
        ...

    def key_at(self, bucket_name: str, object_key: str) -> str:
        """The key of a pointer's location; raise ``InvalidPointer`` if it is not in this store."""
        ...


def validate_key(key: object) -> str:
    """Return ``key`` if every store can hold it safely; raise :class:`InvalidKey` if not.

    Keys are ``/``-separated segments.  Refused: non-strings, the empty key,
    keys over 1024 UTF-8 bytes, absolute keys, empty segments (``a//b``, a
    trailing ``/``), ``.`` and ``..`` segments, backslashes, NUL and other
    control characters, and names reserved for a local store's temporary files.
    """
    if not isinstance(key, str):
        raise InvalidKey(key, "a key must be a string")
    if not key:
        raise InvalidKey(key, "a key must not be empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey(key, "a key must be valid Unicode text") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(key, f"a key must be at most {MAX_KEY_BYTES} UTF-8 bytes")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidKey(key, "a key must not contain NUL or other control characters")
    if "\\" in key:
        raise InvalidKey(key, "a key must not contain backslashes")
    if key.startswith("/"):
        raise InvalidKey(key, "a key must be relative (no leading '/')")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(key, "a key must not have empty segments ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise InvalidKey(key, "a key must not have '.' or '..' segments")
        if segment.startswith(TEMP_PREFIX):
            raise InvalidKey(key, f"segments starting with {TEMP_PREFIX!r} are reserved")
    return key


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is ``""`` or the start of some valid key; raise otherwise."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise InvalidKey(prefix, "a prefix must be a string")
    validate_key(prefix + "x")
    return prefix


def iter_payload(data: Payload, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of ``data`` in chunks, reading a stream to its end."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    while chunk := data.read(chunk_size):
        yield chunk


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
