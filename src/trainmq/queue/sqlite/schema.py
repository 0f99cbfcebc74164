"""Opening a queue database: refuse what is not ours, create or migrate what is.

A file is inspected read-only, through SQLite, before anything writes to it, so
a foreign or corrupt file, or one from a newer trainmq, is refused and left
byte-for-byte untouched.  A new database appears atomically, complete with its
schema (``create``).  Schema changes are ``migrations/NNNN_*.sql`` files (NNNN = the
version they produce); ``schema.sql`` is the current schema for comparison in
tests.  The version lives in ``PRAGMA user_version`` and the file is marked
with ``PRAGMA application_id``.
"""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
from pathlib import Path

from ...errors import ConfigurationError, NotATrainmqDatabase, SchemaTooNew, StorageError
from .. import scripts

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "check_file",
    "create",
    "ensure_parent",
    "migrate",
    "migrations",
]

APPLICATION_ID = 0x746D7131  # "tmq1"
SCHEMA_VERSION = 1


def migrations() -> list[tuple[int, str]]:
    """(target version, SQL) for every migration, in order."""
    return scripts.migrations(__name__.rsplit(".", 1)[0])


def current_schema() -> str:
    return scripts.current_schema(__name__.rsplit(".", 1)[0])


def check_file(path: Path) -> None:
    """Raise unless ``path`` is absent, empty, or a trainmq database we can read.

    The file is read only through SQLite, never through a descriptor of our own:
    on POSIX, closing *any* descriptor of a file drops every lock the process
    holds on it, including those of SQLite connections already open in this
    process, and the next process to close would then delete the ``-wal`` under
    them.  A hot rollback journal (left by a crash while an older trainmq or
    another program wrote the file) is rolled back first, as SQLite requires.
    """
    if not path.exists():
        return
    if path.is_dir():
        raise NotATrainmqDatabase(f"{path} is a directory, not a trainmq database")
    if path.stat().st_size == 0:
        return
    try:
        facts = _read_facts(path)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise NotATrainmqDatabase(
                f"{path} is not a trainmq database (not an SQLite file)"
            ) from exc
        if not _has_hot_journal(path):
            raise NotATrainmqDatabase(f"{path} is not a usable trainmq database: {exc}") from exc
        try:
            _recover(path)
            facts = _read_facts(path)
        except sqlite3.DatabaseError as again:
            raise NotATrainmqDatabase(
                f"{path} is not a usable trainmq database: {again}"
            ) from again
    application_id, version, tables = facts
    if application_id != APPLICATION_ID and (application_id != 0 or tables):
        raise NotATrainmqDatabase(f"{path} is an SQLite database of another application")
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has schema version {version}; this trainmq understands up to "
            f"{SCHEMA_VERSION}. Upgrade trainmq to open it."
        )


def _read_facts(path: Path) -> tuple[int, int, int]:
    """(application_id, user_version, number of schema objects), read-only."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    finally:
        conn.close()
    return int(application_id), int(version), int(tables)


def _has_hot_journal(path: Path) -> bool:
    journal = Path(f"{path}-journal")
    return journal.exists() and journal.stat().st_size > 0


def _recover(path: Path) -> None:
    """Let SQLite roll back a hot journal: the first read of a writable connection does."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    finally:
        conn.close()


def create(path: Path) -> None:
    """Create the database at ``path`` atomically, unless something is there already.

    The schema is built under a temporary name in the same folder, fsynced, then
    hard-linked to ``path`` (which fails, harmlessly, if another process created
    it meanwhile; a rename would replace a database already in use) and the
    folder fsynced.  A crash or power loss at any point leaves either no
    database or a complete one, never a half-created file that SQLite would
    have to recover.  Where hard links are not supported the file is created in
    place.  A crash may leave a ``.NAME.PID.*.creating`` file behind: it holds no
    messages, and the next creation removes those of processes that are gone.
    """
    _remove_abandoned(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.creating")
    try:
        _build(temporary)
        _fsync(temporary, os.O_RDONLY)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
        _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)


def _remove_abandoned(path: Path) -> None:
    for leftover in path.parent.glob(f".{path.name}.*.creating*"):
        pid = leftover.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _build(temporary: Path) -> None:
    conn = sqlite3.connect(temporary, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ConfigurationError(
                f"{temporary.parent}: the file system does not support WAL mode"
            )
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn)
    finally:
        conn.close()  # the last connection checkpoints the WAL into the file
    if Path(f"{temporary}-wal").exists():
        raise StorageError(f"{temporary}: SQLite kept a write-ahead log after closing")


def _fsync(path: Path, flags: int) -> None:
    """fsync a file nobody else has open (the new database) or a folder."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION inside one immediate transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"schema version {version} is newer than {SCHEMA_VERSION}")
        for target, sql in migrations():
            if target > version:
                for statement in _statements(sql):
                    conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(sql: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def ensure_parent(path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        os.makedirs(parent, exist_ok=True)
