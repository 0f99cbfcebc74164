"""Long polls wake on commits of other processes without polling the database.

These tests use real time and real processes on purpose: what is under test is
how soon a waiting receive sees another process's send, and what waiting costs.
"""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trainmq.queue.client import open_service
from trainmq.queue.service import SQSService
from trainmq.queue.sqlite import SqliteBackend, wakeup

from .other_process import OtherProcessSender

WAKE_WITHIN = 1.0  # generous for a loaded machine; inotify takes about a millisecond
inotify_only = pytest.mark.skipif(wakeup.open_watch(Path(".")) is None, reason="needs inotify")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[SQSService]:
    opened = open_service(tmp_path / "queues.db")
    yield opened
    opened.backend.close()


def _database(service: SQSService) -> Any:
    backend = service.backend
    assert isinstance(backend, SqliteBackend)
    return backend._database


class Poll:
    """One long poll on a thread; ``returned_at`` is the wall-clock time it returned."""

    def __init__(self, service: SQSService, url: str, wait: int) -> None:
        self.result: dict[str, Any] = {}
        self.returned_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(service, url, wait), daemon=True)
        self._thread.start()

    def _run(self, service: SQSService, url: str, wait: int) -> None:
        self.result = service.receive_message({"QueueUrl": url, "WaitTimeSeconds": wait})
        self.returned_at = time.time()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _until_waiting(service: SQSService, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while _database(service).changes.waiting < count:
        assert time.monotonic() < deadline, "the long poll never started waiting"
        time.sleep(0.001)


def _wakes_on_other_process_send(service: SQSService, tmp_path: Path, name: str) -> float:
    url = service.create_queue({"QueueName": name})["QueueUrl"]
    sender = OtherProcessSender(tmp_path / "queues.db", url)
    try:
        poll = Poll(service, url, wait=20)
        _until_waiting(service)
        sent_at = sender.send("from afar")
        assert poll.join(WAKE_WITHIN + 10), "the long poll slept through the send"
    finally:
        sender.close()
    assert [m["Body"] for m in poll.result["Messages"]] == ["from afar"]
    return poll.returned_at - sent_at


@inotify_only
def test_a_send_by_another_process_wakes_a_long_poll_through_inotify(
    service: SQSService, tmp_path: Path
) -> None:
    latency = _wakes_on_other_process_send(service, tmp_path, "afar")
    assert _database(service).changes.mode == "inotify"
    assert latency < WAKE_WITHIN


def test_without_inotify_a_long_poll_falls_back_to_data_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeup, "_LIBC", None)
    service = open_service(tmp_path / "queues.db")
    try:
        latency = _wakes_on_other_process_send(service, tmp_path, "afar-fallback")
        assert _database(service).changes.mode == "data_version"
    finally:
        service.backend.close()
    assert latency < WAKE_WITHIN


def test_a_waiting_long_poll_uses_no_cpu(service: SQSService) -> None:
    """The old engine read data_version every 2 ms while a poll waited (30-60 ms of CPU
    a second); now the waiting thread and the watcher block in the kernel."""
    url = service.create_queue({"QueueName": "idle"})["QueueUrl"]
    service.receive_message({"QueueUrl": url, "WaitTimeSeconds": 1})  # watcher started
    cpu_before, wall_before = time.process_time(), time.monotonic()
    answer = service.receive_message({"QueueUrl": url, "WaitTimeSeconds": 2})
    cpu = time.process_time() - cpu_before
    assert answer == {} and time.monotonic() - wall_before >= 1.9
    assert cpu < 0.02, f"{cpu * 1000:.1f} ms of CPU in a 2 s idle long poll"


def test_release_ends_a_waiting_long_poll_at_once(service: SQSService) -> None:
    url = service.create_queue({"QueueName": "released"})["QueueUrl"]
    poll = Poll(service, url, wait=20)
    _until_waiting(service)
    released_at = time.time()
    assert isinstance(service.backend, SqliteBackend)
    service.backend.release_waiters()
    assert poll.join(10)
    assert poll.result == {} and poll.returned_at - released_at < WAKE_WITHIN


@inotify_only
def test_the_watch_survives_the_wal_file_being_removed_and_created_again(
    tmp_path: Path,
) -> None:
    database = tmp_path / "queues.db"
    service = open_service(database)
    url = service.create_queue({"QueueName": "reborn"})["QueueUrl"]
    watch = wakeup.DirectoryWatch(database)
    try:
        service.backend.close()  # the last connection removes the -wal file
        assert not Path(f"{database}-wal").exists()
        watch.drain()
        other = open_service(database)
        other.send_message({"QueueUrl": url, "MessageBody": "after"})
        other.backend.close()
        assert select.select([watch], [], [], 5)[0], "no event for the new -wal file"
        assert watch.drain()
    finally:
        watch.close()


@inotify_only
def test_a_watch_opens_no_descriptor_of_the_database_and_keeps_its_locks(
    tmp_path: Path,
) -> None:
    """POSIX locks die with any descriptor of the file the process closes: a watch must
    not open one.  Hold SQLite's write lock, open and close a watch, and check that
    another process still cannot take the lock."""
    database = tmp_path / "queues.db"
    open_service(database).backend.close()
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    before = _descriptors_of(database)
    watch = wakeup.DirectoryWatch(database)
    assert _descriptors_of(database) == before
    watch.close()
    try:
        locked = subprocess.run(
            [sys.executable, "-c", _TRY_LOCK, str(database)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert locked.stdout.strip() == "locked", locked.stdout + locked.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


_TRY_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
try:
    conn.execute("BEGIN IMMEDIATE")
    print("free")
except sqlite3.OperationalError as exc:
    print("locked" if "locked" in str(exc) else exc)
"""


def _descriptors_of(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return sorted(found)
