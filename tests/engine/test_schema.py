"""Opening databases: foreign, corrupt and newer files are refused and left untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

import trainmq
from trainmq.errors import NotATrainmqDatabase, SchemaTooNew
from trainmq.queue.sqlite import schema


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_text_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a queue\n")
    before = _digest(path)
    with pytest.raises(NotATrainmqDatabase, match="not an SQLite file"):
        trainmq.client(path)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_corrupt_sqlite_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    with trainmq.client(path) as client:
        client.create_queue(QueueName="q")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # smash the schema page after the header
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    before = _digest(path)
    with pytest.raises(NotATrainmqDatabase):
        trainmq.client(path)
    assert _digest(path) == before


def test_other_applications_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(NotATrainmqDatabase, match="another application"):
        trainmq.client(path)
    assert _digest(path) == before
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    check.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    with trainmq.client(path) as client:
        client.create_queue(QueueName="q")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(SchemaTooNew, match="Upgrade trainmq"):
        trainmq.client(path)
    assert _digest(path) == before


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotATrainmqDatabase, match="directory"):
        trainmq.client(tmp_path)


def test_reopening_keeps_queues_and_messages(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    with trainmq.client(path) as client:
        url = client.create_queue(QueueName="q")["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody="kept")
    with trainmq.client(path) as client:
        messages = client.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in messages] == ["kept"]


def _schema_of(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [(t, n, " ".join((s or "").split())) for t, n, s in rows]


def test_migrated_schema_equals_the_fresh_schema(tmp_path: Path) -> None:
    migrated = sqlite3.connect(tmp_path / "migrated.db", isolation_level=None)
    schema.migrate(migrated)
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    fresh.executescript(schema.current_schema())
    assert _schema_of(migrated) == _schema_of(fresh)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert migrated.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert [v for v, _ in schema.migrations()] == list(range(1, schema.SCHEMA_VERSION + 1))


def test_durability_settings(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    with trainmq.client(path) as client:
        client.create_queue(QueueName="q")
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    with pytest.raises(trainmq.TrainmqError, match="durability"):
        trainmq.client(path, durability="sometimes")
