"""A blob store in a local directory: the default dataset store.

Durability: a blob is written to a temporary file in its final directory,
fsynced, then renamed over the key (``os.replace``) and the directory fsynced,
so a crash leaves the old blob or the new one, never a torn file.  Create-only
puts link the fsynced temporary file to the key (``os.link`` fails if the name
exists, atomically, across processes), which is what makes races safe.

Keys map to paths below the root; :func:`~trainmq.store.base.validate_key`
refuses every key that could escape it, and a resolved path outside the root
(a symlink pointing out) is refused too.  Unlike S3, a local store cannot hold
both ``a`` and ``a/b``: that raises :class:`KeyConflict`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from trainmq.store.base import (
    CHUNK_SIZE,
    TEMP_PREFIX,
    BlobInfo,
    BlobStream,
    Payload,
    iter_payload,
    validate_key,
    validate_prefix,
)
from trainmq.store.errors import (
    BlobExists,
    BlobNotFound,
    InvalidKey,
    InvalidPointer,
    KeyConflict,
    StoreUnavailable,
)

__all__ = ["DEFAULT_ROOT", "LocalStore"]

#: Where the store lives when no address is given.
DEFAULT_ROOT = Path(".trainmq") / "store"
_TEMP_ATTEMPTS = 5


class LocalStore:
    """Blobs as files below ``root`` (created if missing).

    ``bucket_name`` is what claim-check pointers carry as ``s3BucketName``; it
    defaults to the root directory's name (``store`` for ``./.trainmq/store``)
    and only has to match between the writer and the reader of a message.
    """

    def __init__(
        self, root: str | os.PathLike[str] = DEFAULT_ROOT, *, bucket_name: str | None = None
    ) -> None:
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the store directory {root}: {exc}") from exc
        self._root = os.path.realpath(root)
        self._bucket_name = bucket_name or os.path.basename(self._root) or "store"

    @property
    def root(self) -> Path:
        return Path(self._root)

    @property
    def address(self) -> str:
        return Path(self._root).as_uri()

    @property
    def bucket_name(self) -> str:
        return self._bucket_name

    def __repr__(self) -> str:
        return f"LocalStore({self._root!r})"

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str, data: Payload) -> BlobInfo:
        path = self._path(key)
        temp, info = self._write_temp(key, path, data)
        try:
            os.replace(temp, path)
        except OSError as exc:
            _unlink_quietly(temp)
            if isinstance(exc, IsADirectoryError) or exc.errno == errno.ENOTEMPTY:
                raise KeyConflict(key) from exc
            raise StoreUnavailable(f"cannot store {key!r}: {exc}") from exc
        self._fsync_dir(os.path.dirname(path))
        return info

    def create(self, key: str, data: Payload) -> BlobInfo:
        path = self._path(key)
        temp, info = self._write_temp(key, path, data)
        try:
            os.link(temp, path, follow_symlinks=False)
        except FileExistsError as exc:
            if os.path.isdir(path):
                raise KeyConflict(key) from exc
            raise BlobExists(key) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {key!r}: {exc}") from exc
        finally:
            _unlink_quietly(temp)
        self._fsync_dir(os.path.dirname(path))
        return info

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EISDIR) and os.path.isdir(path):
                return
            raise StoreUnavailable(f"cannot delete {key!r}: {exc}") from exc
        directory = os.path.dirname(path)
        self._fsync_dir(directory)
        self._prune_empty_dirs(directory)

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> BlobStream:
        path = self._path(key)
        with self._reading(key):
            handle = open(path, "rb")  # noqa: SIM115 - the stream owns and closes it
        size = os.fstat(handle.fileno()).st_size
        return BlobStream(key, size, handle)

    def head(self, key: str) -> BlobInfo:
        path = self._path(key)
        with self._reading(key), open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            digest = hashlib.sha256()
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
        return BlobInfo(key=key, size=stat.st_size, sha256=digest.hexdigest(), etag=_etag(stat))

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def sha256(self, key: str) -> str:
        digest = self.head(key).sha256
        assert digest is not None  # a local head always hashes the content
        return digest

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``; symbolic links are never followed nor listed.

        Reads refuse a path through a link already; listing must not show the names
        of what a link points at (another directory of the machine) either.
        """
        validate_prefix(prefix)
        folders = prefix.split("/")[:-1]
        base = self._root
        for folder in folders:
            base = os.path.join(base, folder)
            if os.path.islink(base):
                return iter(())
        keys: list[str] = []
        for directory, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = [
                name
                for name in dirnames
                if not name.startswith(TEMP_PREFIX)
                and not os.path.islink(os.path.join(directory, name))
            ]
            relative = os.path.relpath(directory, self._root)
            parts = [] if relative == "." else relative.split(os.sep)
            for name in filenames:
                key = "/".join([*parts, name])
                if (
                    not name.startswith(TEMP_PREFIX)
                    and key.startswith(prefix)
                    and not os.path.islink(os.path.join(directory, name))
                ):
                    keys.append(key)
        return iter(sorted(keys))

    def remove_temporary_files(self, prefix: str = "", older_than: float = 3600.0) -> int:
        """Delete temporary files that writes killed mid-way left below ``prefix``
        (only those older than ``older_than`` seconds: younger ones may be in flight)."""
        validate_prefix(prefix)
        base = os.path.join(self._root, *prefix.split("/")[:-1])
        cutoff = time.time() - older_than
        removed = 0
        for directory, _, filenames in os.walk(base):
            for name in filenames:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if name.startswith(TEMP_PREFIX) and os.stat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        return removed

    # -- claim-check pointers --------------------------------------------------------------

    def location(self, key: str) -> tuple[str, str]:
        return self._bucket_name, validate_key(key)

    def key_at(self, bucket_name: str, object_key: str) -> str:
        if bucket_name != self._bucket_name:
            raise InvalidPointer(
                f"the pointer names bucket {bucket_name!r}, this store is {self._bucket_name!r}"
            )
        try:
            return validate_key(object_key)
        except InvalidKey as exc:
            raise InvalidPointer(f"the pointer's key is refused: {exc.reason}") from exc

    # -- internals -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        validate_key(key)
        path = os.path.join(self._root, *key.split("/"))
        resolved = os.path.realpath(path)
        if resolved != path and not resolved.startswith(self._root + os.sep):
            raise InvalidKey(key, "the key resolves outside the store")
        return path

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        try:
            yield
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise BlobNotFound(key) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {key!r}: {exc}") from exc

    def _write_temp(self, key: str, path: str, data: Payload) -> tuple[str, BlobInfo]:
        """Write ``data`` to a fsynced temporary file beside ``path``; return it and its info."""
        directory = os.path.dirname(path)
        for attempt in range(_TEMP_ATTEMPTS):
            self._make_dirs(key, directory)
            temp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                break
            except FileNotFoundError:  # a concurrent delete pruned the directory: remake it
                if attempt == _TEMP_ATTEMPTS - 1:
                    raise StoreUnavailable(f"cannot create a temporary file for {key!r}") from None
            except OSError as exc:
                raise StoreUnavailable(f"cannot write {key!r}: {exc}") from exc
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in iter_payload(data):  # the source's own errors pass through as they are
                    with _writing(key):
                        handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                with _writing(key):
                    handle.flush()
                    os.fsync(handle.fileno())
                    stat = os.fstat(handle.fileno())
        except BaseException:
            _unlink_quietly(temp)
            raise
        # rename and link keep the inode and mtime, so this is the etag ``head`` will report
        return temp, BlobInfo(key=key, size=size, sha256=digest.hexdigest(), etag=_etag(stat))

    def _make_dirs(self, key: str, directory: str) -> None:
        """Create ``directory`` and its missing parents, fsyncing each new entry's parent."""
        relative = os.path.relpath(directory, self._root)
        current = self._root
        for part in [] if relative == "." else relative.split(os.sep):
            parent, current = current, os.path.join(current, part)
            try:
                os.mkdir(current)
            except FileExistsError:
                if not os.path.isdir(current):
                    raise KeyConflict(key) from None
                continue
            except NotADirectoryError:
                raise KeyConflict(key) from None
            except OSError as exc:
                raise StoreUnavailable(f"cannot create a directory for {key!r}: {exc}") from exc
            self._fsync_dir(parent)

    def _prune_empty_dirs(self, directory: str) -> None:
        while directory != self._root and directory.startswith(self._root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    @staticmethod
    def _fsync_dir(directory: str) -> None:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:  # some file systems cannot fsync a directory; the rename still holds
            pass
        finally:
            os.close(fd)


@contextlib.contextmanager
def _writing(key: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StoreUnavailable(f"cannot write {key!r}: {exc}") from exc


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _etag(stat: os.stat_result) -> str:
    """Changes whenever the key is replaced: every put renames in a new inode."""
    return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"
