"""One open database per file per process, shared by every client of that file.

POSIX file locks belong to the process, not to the descriptor: closing any
descriptor of a file drops every lock the process holds on it.  SQLite copes
with several of its own connections in one process, but anything else that
opens the file (a second engine's header check, a monitor) silently unlocks the
first engine's connections, and another process may then delete the ``-wal``
under them.  So the first client of a file in a process opens it (checking,
creating and migrating it) and later clients of the same file, found by device
and inode, share that open database; the last one to close closes it.

The table of open files is process-wide on purpose, like SQLite's own table of
open inodes: it describes the process's descriptors, which are process-wide.
It is forgotten in a child after ``fork()``: a child must open its own
database, and an engine inherited from the parent refuses to be used there.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from pathlib import Path

from ...errors import ConfigurationError, StorageError
from . import schema
from .commit import GroupCommitter
from .wakeup import COMMIT_WAIT, Changes
from .writer_lock import WriterLock

__all__ = ["OpenDatabase", "close_database", "open_database"]


class OpenDatabase:
    """The connections of one process to one database file, and who waits on it.

    ``changes`` wakes this process's long polls: after each commit that one of
    them may be waiting for, and at commits by other processes (``wakeup``).
    """

    def __init__(self, path: Path, key: tuple[int, int], busy_timeout: float) -> None:
        self.path = path
        self.key = key
        self.pid = os.getpid()
        self.users = 1
        self._busy_timeout = busy_timeout
        self.writer_lock = WriterLock(path)
        # Waking before another process's commit lands is fine where claims queue
        # behind its writer on the writer lock; elsewhere the watcher waits for it.
        self.changes = Changes(
            path, self._data_version, commit_wait=0.0 if self.writer_lock.active else COMMIT_WAIT
        )
        self.committer = GroupCommitter(
            self._open_writer(),
            full_sync=True,
            on_commit=self.changes.notify,
            writer_lock=self.writer_lock,
        )
        self.watch_lock = threading.Lock()
        self.watcher = self._connect()
        self._version_lock = threading.Lock()
        self._version_conn: sqlite3.Connection | None = None
        self._version_closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_timeout,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise ConfigurationError(f"{self.path}: the file system does not support WAL mode")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: keeps hot index pages in memory
        try:
            schema.migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def check_process(self) -> None:
        """Refuse use in a forked child: SQLite connections must not cross ``fork()``."""
        if os.getpid() != self.pid:
            raise StorageError(
                f"{self.path} was opened by the parent process; open a new client after fork()"
            )

    def _data_version(self) -> int | None:
        """SQLite's count of other connections' commits (this process's writer's too).

        On a connection of its own, opened when first asked: reads on the shared read
        connection may hold it for long, and this is asked on the event loop's thread."""
        with self._version_lock:
            try:
                if self._version_closed:
                    return None
                if self._version_conn is None:
                    self._version_conn = self._connect()
                return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                return None  # closing: the watcher is stopping too

    def close(self) -> None:
        if os.getpid() != self.pid:
            return  # the parent's connections: closing them here could disturb the parent
        self.committer.close()
        self.writer_lock.close()
        self.changes.close()
        with self._version_lock:
            self._version_closed = True
            if self._version_conn is not None:
                self._version_conn.close()
        with self.watch_lock:
            self.watcher.close()


class _OpenFiles:
    """The process's open databases by (device, inode).

    The table holds them weakly: a database whose clients were all dropped
    without ``close()`` is closed by the garbage collector, as an unshared one
    would be, instead of staying open for the life of the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: weakref.WeakValueDictionary[tuple[int, int], OpenDatabase]
        self._by_key = weakref.WeakValueDictionary()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._by_key = weakref.WeakValueDictionary()

    def open(self, path: Path, busy_timeout: float) -> OpenDatabase:
        with self._lock:
            key = _identity(path)
            database = self._by_key.get(key) if key is not None else None
            if database is not None:
                database.users += 1
                return database
            schema.check_file(path)
            schema.ensure_parent(path)
            if not path.exists():
                schema.create(path)
            key = _identity(path)
            if key is None:  # no hard links here: created in place by the first connection
                database = OpenDatabase(path, (0, 0), busy_timeout)
                database.key = _identity(path) or (0, 0)
            else:
                database = OpenDatabase(path, key, busy_timeout)
            self._by_key[database.key] = database
            return database

    def close(self, database: OpenDatabase) -> None:
        with self._lock:
            database.users -= 1
            if database.users > 0:
                return
            if self._by_key.get(database.key) is database:
                del self._by_key[database.key]
        database.close()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


_OPEN_FILES = _OpenFiles()


def open_database(path: Path, busy_timeout: float) -> OpenDatabase:
    """The process's open database for ``path``, opened (and checked) if it is the first."""
    return _OPEN_FILES.open(path, busy_timeout)


def close_database(database: OpenDatabase) -> None:
    """Give back one use of ``database``; the last use closes its connections."""
    _OPEN_FILES.close(database)
