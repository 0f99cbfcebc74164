"""Where the console keeps its sign-in sessions: in memory, or in a folder that the
processes of one server share (``trainmq serve --workers N``), so that a browser
signed in through one process is signed in on every one, and signing out or
revoking a key ends the session everywhere.

A session is found by the sha256 of its cookie; it records the access key id,
a hash of the key's secret (a changed secret ends it) and its expiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Protocol

from ..server.auth import AccessKey

__all__ = ["FileSessions", "MemorySessions", "Sessions", "shared_secret"]


def _secret_hash(key: AccessKey) -> str:
    return hashlib.sha256(key.secret_access_key.encode("utf-8")).hexdigest()


class Sessions(Protocol):
    def add(self, digest: bytes, key: AccessKey, expires: float, now: float) -> None: ...

    def find(self, digest: bytes, key: AccessKey | None) -> float | None:
        """The session's expiry if it exists and was made for ``key`` as it is now."""
        ...

    def key_id(self, digest: bytes) -> str | None: ...

    def remove(self, digest: bytes) -> None: ...

    def revoke(self, access_key_id: str) -> int: ...


class MemorySessions:
    """One process's sessions; at most ``limit``, the oldest end first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: digest -> (key id, secret hash, expiry); insertion order is age order.
        self._sessions: dict[bytes, tuple[str, str, float]] = {}

    def add(self, digest: bytes, key: AccessKey, expires: float, now: float) -> None:
        for old, (_, _, ends) in list(self._sessions.items()):
            if ends < now or len(self._sessions) >= self.limit:
                del self._sessions[old]
        self._sessions[digest] = (key.access_key_id, _secret_hash(key), expires)

    def find(self, digest: bytes, key: AccessKey | None) -> float | None:
        found = self._sessions.get(digest)
        if found is None or key is None or found[:2] != (key.access_key_id, _secret_hash(key)):
            return None
        return found[2]

    def key_id(self, digest: bytes) -> str | None:
        found = self._sessions.get(digest)
        return None if found is None else found[0]

    def remove(self, digest: bytes) -> None:
        self._sessions.pop(digest, None)

    def revoke(self, access_key_id: str) -> int:
        ended = [d for d, found in self._sessions.items() if found[0] == access_key_id]
        for digest in ended:
            del self._sessions[digest]
        return len(ended)


class FileSessions:
    """Sessions as small files in a folder that several processes share."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, digest: bytes) -> Path:
        return self.folder / digest.hex()

    def _read(self, path: Path) -> tuple[str, str, float] | None:
        try:
            data = json.loads(path.read_text())
            return str(data["key"]), str(data["secret"]), float(data["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def add(self, digest: bytes, key: AccessKey, expires: float, now: float) -> None:
        paths = sorted(self.folder.iterdir(), key=_modified)
        for index, path in enumerate(paths):
            found = self._read(path)
            if found is None or found[2] < now or len(paths) - index >= self.limit:
                path.unlink(missing_ok=True)
        record = {"key": key.access_key_id, "secret": _secret_hash(key), "expires": expires}
        temporary = self.folder / f".{digest.hex()}.{os.getpid()}"
        temporary.write_text(json.dumps(record))
        temporary.replace(self._path(digest))

    def find(self, digest: bytes, key: AccessKey | None) -> float | None:
        found = self._read(self._path(digest))
        if found is None or key is None or found[:2] != (key.access_key_id, _secret_hash(key)):
            return None
        return found[2]

    def key_id(self, digest: bytes) -> str | None:
        found = self._read(self._path(digest))
        return None if found is None else found[0]

    def remove(self, digest: bytes) -> None:
        self._path(digest).unlink(missing_ok=True)

    def revoke(self, access_key_id: str) -> int:
        ended = 0
        for path in list(self.folder.iterdir()):
            found = self._read(path)
            if found is not None and found[0] == access_key_id:
                path.unlink(missing_ok=True)
                ended += 1
        return ended


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def shared_secret(path: Path) -> bytes:
    """A random secret stored at ``path``, made by whichever process asks first."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(secrets.token_bytes(32))
    os.chmod(temporary, 0o600)
    with contextlib.suppress(FileExistsError):  # another process linked its own first
        os.link(temporary, path)
    temporary.unlink()
    return path.read_bytes()
