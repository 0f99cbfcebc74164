"""The PostgreSQL schema: created once under racing hosts, newer ones refused untouched,
foreign schemas refused, migrations equal to the current schema; addresses never show
their password."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

import trainmq
from tests.postgres.support import drop_schema, fresh_schema, require_postgres, schema_url
from trainmq.errors import ConfigurationError, NotATrainmqDatabase, SchemaTooNew, StorageError
from trainmq.queue.postgres import PostgresAddress, PostgresBackend
from trainmq.queue.postgres import schema as pg_schema


@pytest.fixture
def address() -> Iterator[str]:
    with fresh_schema("s") as url:
        yield url


def _schema_of(url: str) -> str:
    return PostgresAddress.parse(url).schema


def _snapshot(url: str, schema: str) -> list[tuple[Any, ...]]:
    """Every column, index and row count of ``schema``: what "untouched" compares."""
    with psycopg.connect(require_postgres(), autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
            (schema,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1",
            (schema,),
        ).fetchall()
        rows = []
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY 1",
            (schema,),
        ).fetchall():
            ident = sql.Identifier(schema, table)
            found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            rows.append((table, found[0] if found else None))
    return [*columns, *indexes, *rows]


def _normalised(snapshot: list[tuple[Any, ...]], schema: str) -> list[tuple[Any, ...]]:
    return [tuple(str(v).replace(schema, "S") for v in row) for row in snapshot]


def test_racing_hosts_migrate_once(address: str) -> None:
    """Eight backends opened at once on an empty schema: one migration, all usable."""
    backends: list[PostgresBackend] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            backend = PostgresBackend(address)
            with lock:
                backends.append(backend)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with psycopg.connect(require_postgres(), autocommit=True) as conn:
            versions = conn.execute(
                sql.SQL("SELECT version FROM {}").format(
                    sql.Identifier(_schema_of(address), "schema_version")
                )
            ).fetchall()
        assert versions == [(pg_schema.SCHEMA_VERSION,)]
        backends[0].create_queue("q", {}, {})
        assert backends[-1].list_queues(None) == ["q"]
    finally:
        for backend in backends:
            backend.close()


def test_newer_schema_is_refused_untouched(address: str) -> None:
    schema = _schema_of(address)
    with trainmq.client(address) as client:
        client.create_queue(QueueName="kept")
    with psycopg.connect(require_postgres(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(
                sql.Identifier(schema, "schema_version")
            ),
            (pg_schema.SCHEMA_VERSION + 1,),
        )
    before = _snapshot(address, schema)
    with pytest.raises(SchemaTooNew, match="Upgrade trainmq"):
        trainmq.client(address)
    assert _snapshot(address, schema) == before


def test_foreign_schema_is_refused_untouched(address: str) -> None:
    schema = _schema_of(address)
    with psycopg.connect(require_postgres(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(schema, "users"))
        )
    before = _snapshot(address, schema)
    with pytest.raises(NotATrainmqDatabase, match="not trainmq's"):
        trainmq.client(address)
    assert _snapshot(address, schema) == before


def test_migrated_schema_equals_the_current_schema(address: str) -> None:
    """Every migration in order builds what ``schema.sql`` describes."""
    migrated = _schema_of(address)
    with trainmq.client(address):
        pass
    url = require_postgres()
    fresh = migrated + "_f"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(fresh)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(fresh)))
            conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
            conn.execute(pg_schema.current_schema().encode("utf-8"))
        ours = _normalised(_snapshot(url, migrated), migrated)
        theirs = _normalised(_snapshot(url, fresh), fresh)
        assert [row for row in ours if row[0] != "schema_version"] == [
            row for row in theirs if row[0] != "schema_version"
        ]
    finally:
        drop_schema(url, fresh)


def test_reopening_keeps_queues_and_messages(address: str) -> None:
    with trainmq.client(address) as client:
        url = client.create_queue(QueueName="q")["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody="kept")
    with trainmq.client(address) as client:
        url = client.get_queue_url(QueueName="q")["QueueUrl"]
        got = client.receive_message(QueueUrl=url)["Messages"]
        assert [m["Body"] for m in got] == ["kept"]


def test_address_forms_and_the_password_stays_hidden() -> None:
    parsed = PostgresAddress.parse("postgresql://ada:s3cret@db.example:6543/queues?schema=jobs")
    assert parsed.schema == "jobs"
    assert "s3cret" not in parsed.display and "s3cret" not in repr(parsed)
    assert parsed.display == "postgresql://ada@db.example:6543/queues?schema=jobs"
    assert "schema" not in parsed.conninfo and "s3cret" in parsed.conninfo
    assert PostgresAddress.parse("postgres:///queues").schema == "trainmq"
    with pytest.raises(ConfigurationError):
        PostgresAddress.parse("postgresql://h/db?schema=Bad-Name")
    with pytest.raises(ConfigurationError, match="given twice"):
        PostgresAddress.parse("postgresql://h/db?schema=a", schema="b")


def test_unreachable_server_error_hides_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        PostgresBackend("postgresql://ada:s3cret@127.0.0.1:1/none", connect_timeout=0.5)
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_credentials_from_the_environment(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An address without host or user takes them from PG* variables, as psql does."""
    require_postgres()
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "5432")
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", "test")
    bare = schema_url("postgresql://", _schema_of(address))
    with trainmq.client(bare) as client:
        client.create_queue(QueueName="from-env")
    with trainmq.client(address) as client:
        assert client.list_queues()["QueueUrls"][0].endswith("/from-env")
