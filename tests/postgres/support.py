"""PostgreSQL for tests: where it is, a fresh schema per test, and CI's rule.

The server is ``TRAINMQ_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``).  When it cannot be reached, a
test fails on CI (``CI=true``) and skips on a developer's machine.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("TRAINMQ_TEST_POSTGRES", DEFAULT_URL)


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    """The server's URL; fails on CI and skips elsewhere when the server is down."""
    url = server_url()
    if not _reachable(url):
        parts = urlsplit(url)
        message = f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI must run it: .ci/run starts it)")
        pytest.skip(message)
    return url


def schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """The address of a schema no one has used; dropped afterwards."""
    url = require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    try:
        yield schema_url(url, schema)
    finally:
        drop_schema(url, schema)
