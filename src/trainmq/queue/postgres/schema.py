"""The ``trainmq`` schema: created and migrated at first use, refused when newer.

Schema changes are ``migrations/NNNN_*.sql`` files (NNNN = the version they
produce); ``schema.sql`` is the current schema, which tests compare with a
migrated one.  The version lives in ``schema_version`` inside the schema.

Many hosts may start at once against an empty database: each migrates inside
one transaction holding a transaction-level advisory lock named after the
schema, so the first migrates and the others then find the work done.  A schema
of a newer version is refused before anything is written to it.
"""

from __future__ import annotations

import zlib
from typing import Any

import psycopg
from psycopg import sql

from ...errors import NotATrainmqDatabase, SchemaTooNew
from .. import scripts

__all__ = ["SCHEMA_VERSION", "current_schema", "lock_key", "migrate", "migrations"]

SCHEMA_VERSION = 1
_LOCK_NAMESPACE = 0x746D7131  # "tmq1", the first half of the advisory lock key


def migrations() -> list[tuple[int, str]]:
    """(target version, SQL) for every migration, in order."""
    return scripts.migrations(__name__.rsplit(".", 1)[0])


def current_schema() -> str:
    return scripts.current_schema(__name__.rsplit(".", 1)[0])


def lock_key(schema: str) -> tuple[int, int]:
    """The two-integer advisory lock that serialises migrations of one schema."""
    return _LOCK_NAMESPACE, zlib.crc32(schema.encode("utf-8")) - 2**31


def _installed_version(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> int | None:
    """The schema's version; None when the schema does not exist or is empty."""
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    if not tables:
        return None
    if ("schema_version",) not in tables:
        raise NotATrainmqDatabase(
            f"schema {schema!r} holds tables that are not trainmq's; choose another schema"
        )
    found = conn.execute(
        sql.SQL("SELECT max(version) FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    return int(found[0]) if found and found[0] is not None else 0


def _refuse_newer(version: int | None, schema: str) -> None:
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"schema {schema!r} has version {version}; this trainmq understands up to "
            f"{SCHEMA_VERSION}. Upgrade trainmq to use it."
        )


def migrate(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> None:
    """Bring ``schema`` to SCHEMA_VERSION; ``conn`` is in autocommit mode."""
    version = _installed_version(conn, schema)
    _refuse_newer(version, schema)
    if version == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", lock_key(schema))
        version = _installed_version(conn, schema)  # another host may have migrated
        _refuse_newer(version, schema)
        ident = sql.Identifier(schema)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        if version is None:
            conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
            version = 0
        for target, script in migrations():
            if target > version:
                conn.execute(script.encode("utf-8"))
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (target,))
