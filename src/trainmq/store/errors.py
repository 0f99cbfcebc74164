"""The errors of the dataset store, one branch of trainmq's exception tree.

::

    TrainmqError                    (trainmq.errors)
    └── StoreError                  a blob store operation failed
        ├── InvalidKey              the key is refused (escapes, empty segments, NUL, ...)
        ├── BlobNotFound            no blob under that key
        ├── BlobExists              a create-only put found the key taken
        ├── KeyConflict             a local key and a "directory" of keys collide
        ├── InvalidPointer          a claim-check body is not a payload pointer we can follow
        └── StoreUnavailable        the backend (file system, S3) failed or refused

Lower-level errors (``OSError``, botocore's ``ClientError``) are translated at
the store's boundary with ``raise ... from exc``, so the cause stays attached.
"""

from __future__ import annotations

from trainmq.errors import TrainmqError

__all__ = [
    "BlobExists",
    "BlobNotFound",
    "InvalidKey",
    "InvalidPointer",
    "KeyConflict",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(TrainmqError):
    """A blob store operation failed."""


class InvalidKey(StoreError):
    """The key is not allowed: it could escape the store or name nothing portable."""

    def __init__(self, key: object, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid blob key {key!r}: {reason}")


class BlobNotFound(StoreError):
    """No blob is stored under the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no blob under key {key!r}")


class BlobExists(StoreError):
    """A create-only put lost: another writer already created the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"a blob already exists under key {key!r}")


class KeyConflict(StoreError):
    """In a local store, a key cannot also be the "directory" of other keys (``a`` and ``a/b``)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"key {key!r} collides with another key used as its directory "
            "(a local store cannot hold both 'a' and 'a/b')"
        )


class InvalidPointer(StoreError):
    """A claim-check message body does not point at a payload this store can read."""


class StoreUnavailable(StoreError):
    """The storage backend failed or refused the request."""
