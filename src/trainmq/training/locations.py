"""URIs of the pipeline's objects, and the store they must live in.

Messages name objects by URI (``file:///root/key`` or ``s3://bucket/prefix/key``)
so that a message means the same thing to every reader.  A stage only reads and
writes inside *its* store: a URI outside it is refused, so a message can never
make a worker read or overwrite an arbitrary file.
"""

from __future__ import annotations

import os
from urllib.parse import quote, unquote

from ..errors import PermanentFailure
from ..store import BlobStore, InvalidKey, open_store, validate_key

__all__ = ["STORE_ENV", "key_of", "open_pipeline_store", "uri_of"]

#: The environment variable naming the pipeline's store (default ``./.trainmq/store``).
STORE_ENV = "TRAINMQ_STORE"


def open_pipeline_store(address: str | None = None) -> BlobStore:
    """The store named by ``address``, else by ``$TRAINMQ_STORE``, else the default."""
    return open_store(address or os.environ.get(STORE_ENV) or None)


def _base(store: BlobStore) -> str:
    return store.address.rstrip("/") + "/"


def uri_of(store: BlobStore, key: str) -> str:
    """The URI of ``key`` in ``store``."""
    return _base(store) + quote(validate_key(key), safe="/-_.~:@")


def key_of(store: BlobStore, uri: str, what: str = "object") -> str:
    """The store key ``uri`` names; a URI outside the store is a ``PermanentFailure``."""
    base = _base(store)
    if not uri.startswith(base):
        raise PermanentFailure(f"the {what} URI {uri!r} is outside this worker's store {base!r}")
    try:
        return validate_key(unquote(uri[len(base) :]).strip("/"))
    except InvalidKey as exc:
        raise PermanentFailure(f"the {what} URI {uri!r} names no valid key: {exc}") from None
