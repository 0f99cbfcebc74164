"""Writers of one file in several processes queue on ``<database>-writer``.

The lock is held by a real other process here: what is under test is that a
commit waits for it (so writers queue in the kernel rather than sleeping in
SQLite's busy handler), that a killed holder frees it, and that a forked child
does not keep its parent's lock alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainmq.queue.client import open_service
from trainmq.queue.service import SQSService
from trainmq.queue.sqlite import SqliteBackend, writer_lock

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[SQSService]:
    opened = open_service(tmp_path / "queues.db")
    yield opened
    opened.backend.close()


def _hold(database: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(writer_lock.companion(database))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _send_in_thread(service: SQSService, url: str) -> tuple[threading.Thread, list[object]]:
    done: list[object] = []
    thread = threading.Thread(
        target=lambda: done.append(service.send_message({"QueueUrl": url, "MessageBody": "x"})),
        daemon=True,
    )
    thread.start()
    return thread, done


@pytest.mark.parametrize("release", ["unlock", "sigkill"])
def test_a_commit_waits_for_another_process_holding_the_writer_lock(
    service: SQSService, tmp_path: Path, release: str
) -> None:
    url = service.create_queue({"QueueName": "q"})["QueueUrl"]
    backend = service.backend
    assert isinstance(backend, SqliteBackend) and backend._database.writer_lock.active
    holder = _hold(tmp_path / "queues.db")
    try:
        thread, done = _send_in_thread(service, url)
        thread.join(0.5)
        assert thread.is_alive() and not done, "the send committed while another process wrote"
        if release == "unlock":
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
        else:
            holder.send_signal(signal.SIGKILL)  # the kernel frees a killed holder's lock
        thread.join(30)
        assert done and "MessageId" in done[0]  # type: ignore[operator]
    finally:
        holder.kill()
        holder.communicate()
    received = service.receive_message({"QueueUrl": url})
    assert [m["Body"] for m in received["Messages"]] == ["x"]


def test_a_forked_child_does_not_keep_the_parents_lock(service: SQSService, tmp_path: Path) -> None:
    url = service.create_queue({"QueueName": "q"})["QueueUrl"]
    backend = service.backend
    assert isinstance(backend, SqliteBackend)
    lock = backend._database.writer_lock
    assert lock.acquire()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its inherited descriptor is closed at fork
        os.close(read_end)
        os.write(write_end, b"forked")
        signal.pause()
    os.close(write_end)
    try:
        assert os.read(read_end, 6) == b"forked"
        lock.release()
        # With the parent's hold gone, only an inherited descriptor could still hold it.
        probe = subprocess.run(
            [sys.executable, "-c",
             "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
             str(writer_lock.companion(tmp_path / "queues.db"))],
            capture_output=True, text=True, timeout=30,
        )
        assert probe.returncode == 0, probe.stderr
        assert "MessageId" in service.send_message({"QueueUrl": url, "MessageBody": "y"})
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)


def test_where_the_companion_cannot_be_opened_writers_still_commit(tmp_path: Path) -> None:
    database = tmp_path / "queues.db"
    writer_lock.companion(database).mkdir()  # opening it for writing fails (EISDIR)
    service = open_service(database)
    try:
        backend = service.backend
        assert isinstance(backend, SqliteBackend)
        assert not backend._database.writer_lock.active  # SQLite's busy handler alone
        url = service.create_queue({"QueueName": "q"})["QueueUrl"]
        service.send_message({"QueueUrl": url, "MessageBody": "z"})
        received = service.receive_message({"QueueUrl": url})
        assert [m["Body"] for m in received["Messages"]] == ["z"]
    finally:
        service.backend.close()
