"""Opening databases: foreign, corrupt and newer files are refused and left untouched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
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


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """A trainmq command in another process: it opens the database and closes it cleanly."""
    return subprocess.run(
        [sys.executable, "-m", "trainmq", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_two_clients_of_one_file_keep_acknowledged_sends_when_another_process_closes_it(
    tmp_path: Path,
) -> None:
    """Opening a second client must not drop the first one's file locks: if it did, the CLI
    process below would believe it closed the last connection, checkpoint and delete the
    ``-wal`` under the live client, and every later send would go to an unlinked file."""
    path = tmp_path / "queues.db"
    first = trainmq.client(path)
    url = first.create_queue(QueueName="work")["QueueUrl"]
    second = trainmq.client(path)
    _cli("stats", "--db", str(path))
    sent = {first.send_message(QueueUrl=url, MessageBody=f"A-{i}")["MessageId"] for i in range(5)}
    second.send_message(QueueUrl=url, MessageBody="B-0")
    second.close()
    first.close()
    with trainmq.client(path) as reopened:
        bodies = {m.body for m in reopened.service.backend.peek_messages("work", limit=100)}
    assert bodies == {f"A-{i}" for i in range(5)} | {"B-0"}
    assert len(sent) == 5


def test_clients_of_one_file_share_one_open_database_until_the_last_closes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "queues.db"
    first = trainmq.client(path)
    url = first.create_queue(QueueName="q")["QueueUrl"]
    second = trainmq.client(str(tmp_path / "." / "queues.db"), durability="normal")
    assert second.service.backend._database is first.service.backend._database
    first.close()
    with pytest.raises(trainmq.TrainmqError, match="closed"):
        first.send_message(QueueUrl=url, MessageBody="late")
    second.send_message(QueueUrl=url, MessageBody="still open")
    second.close()
    with trainmq.client(path) as third:
        assert third.service.backend._database is not first.service.backend._database
        assert [m["Body"] for m in third.receive_message(QueueUrl=url)["Messages"]] == [
            "still open"
        ]


def test_a_forked_child_opens_its_own_database(tmp_path: Path) -> None:
    """SQLite connections must not cross fork(): the child's new client gets its own, and
    the client it inherited refuses to be used."""
    path = tmp_path / "queues.db"
    with trainmq.client(path) as parent:
        url = parent.create_queue(QueueName="q")["QueueUrl"]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                try:
                    parent.send_message(QueueUrl=url, MessageBody="inherited")
                except trainmq.TrainmqError as exc:
                    if "fork" in str(exc):
                        with trainmq.client(path) as child:
                            child.send_message(QueueUrl=url, MessageBody="from child")
                            code = 0
            finally:
                os.write(write, bytes([code]))
                os._exit(code)
        os.close(write)
        assert os.read(read, 1) == b"\x00"
        os.close(read)
        os.waitpid(pid, 0)
        bodies = [m["Body"] for m in parent.receive_message(QueueUrl=url)["Messages"]]
    assert bodies == ["from child"]


def test_clients_sharing_a_file_keep_their_own_durability(tmp_path: Path) -> None:
    """One write connection serves both clients; only the "full" one's commits are fsynced."""
    path = tmp_path / "queues.db"
    with trainmq.client(path) as full, trainmq.client(path, durability="normal") as normal:
        url = full.create_queue(QueueName="q")["QueueUrl"]
        writer = full.service.backend._database.committer._conn

        def synchronous() -> int:
            return int(writer.execute("PRAGMA synchronous").fetchone()[0])

        normal.send_message(QueueUrl=url, MessageBody="scratch")
        assert synchronous() == 1  # NORMAL: no fsync at commit
        full.send_message(QueueUrl=url, MessageBody="kept")
        assert synchronous() == 2  # FULL
        full.receive_message(QueueUrl=url)
        assert synchronous() == 1  # an embedded claim is not fsynced
