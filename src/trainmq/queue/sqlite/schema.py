"""Opening a queue database: refuse what is not ours, create or migrate what is.

A file is inspected read-only before anything writes to it, so a foreign or
corrupt file, or one from a newer trainmq, is refused and left byte-for-byte
untouched.  Schema changes are ``migrations/NNNN_*.sql`` files (NNNN = the
version they produce); ``schema.sql`` is the current schema for comparison in
tests.  The version lives in ``PRAGMA user_version`` and the file is marked
with ``PRAGMA application_id``.
"""

from __future__ import annotations

import os
import sqlite3
from importlib import resources
from pathlib import Path

from ...errors import NotATrainmqDatabase, SchemaTooNew

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "check_file", "migrate", "migrations"]

APPLICATION_ID = 0x746D7131  # "tmq1"
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"


def migrations() -> list[tuple[int, str]]:
    """(target version, SQL) for every migration, in order."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


def current_schema() -> str:
    return resources.files(__package__).joinpath("schema.sql").read_text("utf-8")


def check_file(path: Path) -> None:
    """Raise unless ``path`` is absent, empty, or a trainmq database we can read."""
    if not path.exists() or path.stat().st_size == 0:
        return
    if path.is_dir():
        raise NotATrainmqDatabase(f"{path} is a directory, not a trainmq database")
    with path.open("rb") as handle:
        magic = handle.read(len(_SQLITE_MAGIC))
    if magic != _SQLITE_MAGIC:
        raise NotATrainmqDatabase(f"{path} is not a trainmq database (not an SQLite file)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise NotATrainmqDatabase(f"{path} is not a usable trainmq database: {exc}") from exc
    if application_id != APPLICATION_ID and (application_id != 0 or tables):
        raise NotATrainmqDatabase(f"{path} is an SQLite database of another application")
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has schema version {version}; this trainmq understands up to "
            f"{SCHEMA_VERSION}. Upgrade trainmq to open it."
        )


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
