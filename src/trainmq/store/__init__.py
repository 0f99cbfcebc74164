"""The dataset store: blobs by key, on local disk (default) or in S3.

``open_store(address)`` picks the implementation from an address:

* ``file:///abs/path``, or a plain path: :class:`~trainmq.store.local.LocalStore`
  (default ``./.trainmq/store``);
* ``s3://bucket/prefix``: :class:`~trainmq.store.s3.S3Store`, through boto3.

Every store keeps the :class:`~trainmq.store.base.BlobStore` contract.  Large
SQS bodies are offloaded to a store by :mod:`trainmq.store.claimcheck`.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from trainmq.errors import ConfigurationError
from trainmq.store.base import BlobInfo, BlobStore, BlobStream, validate_key
from trainmq.store.errors import (
    BlobExists,
    BlobNotFound,
    InvalidKey,
    InvalidPointer,
    KeyConflict,
    StoreError,
    StoreUnavailable,
)
from trainmq.store.local import DEFAULT_ROOT, LocalStore
from trainmq.store.s3 import S3Store

__all__ = [
    "BlobExists",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStream",
    "InvalidKey",
    "InvalidPointer",
    "KeyConflict",
    "LocalStore",
    "S3Store",
    "StoreError",
    "StoreUnavailable",
    "open_store",
    "validate_key",
]


def open_store(
    address: str | os.PathLike[str] | None = None, *, s3_client: Any = None
) -> BlobStore:
    """The store at ``address`` (default ``./.trainmq/store``).

    ``s3_client`` (a boto3 S3 client) is used for ``s3://`` addresses; passing
    one with a local address is refused as ambiguous.
    """
    if address is None:
        address = DEFAULT_ROOT
    text = os.fspath(address)
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigurationError(f"the S3 address {text!r} names no bucket")
        if parts.query or parts.fragment:
            raise ConfigurationError(f"the S3 address {text!r} has a query or fragment")
        return S3Store(parts.netloc, unquote(parts.path), client=s3_client)
    if s3_client is not None:
        raise ConfigurationError(f"s3_client was given for the non-S3 store address {text!r}")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError(f"the file address {text!r} names a remote host")
        if not parts.path:
            raise ConfigurationError(f"the file address {text!r} names no directory")
        return LocalStore(unquote(parts.path))
    if "://" in text:
        raise ConfigurationError(
            f"unknown store address {text!r}: use file:///path, a plain path or s3://bucket/prefix"
        )
    return LocalStore(text)
