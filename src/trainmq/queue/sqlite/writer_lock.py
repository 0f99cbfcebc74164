"""Writers of one database file queue in the kernel instead of sleeping in SQLite.

SQLite lets one connection write at a time. A connection that finds the write
lock taken sleeps in its busy handler (1, 2, 5, 10 ms and more) and tries
again, so when several processes write to one file (``trainmq serve --workers
N``, several workers) a writer often sleeps long after the lock was free:
throughput drops and latency tails grow. Each process's group committer
therefore takes an ``flock`` on a companion file, ``<database>-writer``,
around its transaction: the kernel hands the lock to the next waiting process
the moment it is released, and that process's writes queued meanwhile commit
together.

The companion is never the database file: ``flock`` locks and SQLite's
``fcntl`` locks are independent, and opening or closing the companion cannot
drop SQLite's locks. The kernel releases the lock of a killed process. A
forked child closes its inherited descriptors at once, so it cannot keep a
lock alive after its parent dies. Where the companion cannot be opened (a
read-only folder, a file system without ``flock``), writers fall back to
SQLite's busy handler, which stays in force in every case.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

__all__ = ["WriterLock", "companion"]

_open_fds: set[int] = set()
_fds_lock = threading.Lock()


def companion(database: Path) -> Path:
    return database.with_name(database.name + "-writer")


class WriterLock:
    """An exclusive ``flock`` on ``<database>-writer``, or nothing where unavailable."""

    def __init__(self, database: Path) -> None:
        self._fd: int | None = None
        try:
            fd = os.open(companion(database), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # flock works on this file system
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            os.close(fd)
            return
        self._fd = fd
        with _fds_lock:
            _open_fds.add(fd)

    @property
    def active(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Wait for the lock; False where there is none (nothing to release)."""
        fd = self._fd
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            return False
        return True

    def release(self) -> None:
        fd = self._fd
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with _fds_lock:
            _open_fds.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


def _close_inherited() -> None:
    """In a forked child: the parent's descriptors must not hold its locks alive."""
    global _fds_lock
    _fds_lock = threading.Lock()
    for fd in list(_open_fds):
        with contextlib.suppress(OSError):
            os.close(fd)
    _open_fds.clear()


os.register_at_fork(after_in_child=_close_inherited)
