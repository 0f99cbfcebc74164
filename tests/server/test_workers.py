"""``trainmq serve --workers N``: several processes on one port, one database, one lifetime.

Every process must answer on the port: each test that needs one process to answer
stops the others (SIGSTOP) so that only it can accept the connection. One server
serves the first tests of this module (they run in order), and the last of them
stops it; a second one is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import ServerProcess, StartServer, http

DEADLINE = 20.0


def children(server: ServerProcess) -> list[int]:
    """The server processes the parent started (not multiprocessing's helper)."""
    found = []
    for task in Path(f"/proc/{server.pid}/task").glob("*/children"):
        for pid in task.read_text().split():
            with contextlib.suppress(OSError):
                if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)  # poll interval of a bounded wait
    raise AssertionError(f"not within {DEADLINE} s: {what}")


@contextlib.contextmanager
def only(pid: int, pids: list[int]) -> Iterator[None]:
    """Every process of ``pids`` but ``pid`` stopped, so that ``pid`` alone can answer."""
    stopped = [p for p in pids if p != pid]
    for other in stopped:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in stopped:
            os.kill(other, signal.SIGCONT)


def send(server: ServerProcess, url: str, body: str) -> None:
    """One SendMessage on a fresh connection (whichever process accepts it answers)."""
    answer = http(
        server.url + "/",
        json.dumps({"QueueUrl": url, "MessageBody": body}).encode(),
        {"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"},
        timeout=DEADLINE,  # a process started again may still be importing: it answers then
    )
    assert answer.status == 200, answer.body


def started(start: StartServer, workers: int = 2) -> tuple[ServerProcess, list[int]]:
    server = start("--workers", str(workers), "--no-console")
    wait_for(lambda: len(children(server)) == workers, f"{workers} server processes")
    return server, children(server)


@pytest.fixture(scope="module")
def shared(start_module_server: StartServer) -> ServerProcess:
    return started(start_module_server)[0]


def test_every_process_answers_on_the_one_port_and_they_share_the_queue(
    shared: ServerProcess,
) -> None:
    server, pids = shared, children(shared)
    url = server.client().create_queue(QueueName="shared")["QueueUrl"]
    for pid in pids:
        with only(pid, pids):
            send(server, url, f"through {pid}")
    client = server.client()
    bodies = set()
    for _ in range(10):
        for message in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            bodies.add(message["Body"])
        if len(bodies) == len(pids):
            break
    assert bodies == {f"through {pid}" for pid in pids}


def test_metrics_add_up_the_requests_of_every_process(shared: ServerProcess) -> None:
    server, pids = shared, children(shared)
    url = server.client().create_queue(QueueName="counted")["QueueUrl"]
    for pid in pids:
        with only(pid, pids):
            for index in range(3):
                send(server, url, str(index))

    def counted() -> bool:
        text = http(server.url + "/metrics").body.decode()
        return 'trainmq_requests_total{action="SendMessage",error=""} 8' in text

    # the first test sent one message through each process, this one three more each
    wait_for(counted, "/metrics counting the eight sends of both processes")


def test_a_process_that_dies_is_started_again(shared: ServerProcess) -> None:
    server, pids = shared, children(shared)
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: len(children(server)) == 2 and pids[0] not in children(server), "a new one")
    replacement = [p for p in children(server) if p not in pids]
    url = server.client().create_queue(QueueName="after-restart")["QueueUrl"]
    with only(replacement[0], children(server)):
        send(server, url, "answered by the new process")


def test_sigterm_stops_every_process_and_exits_zero(shared: ServerProcess) -> None:
    server, pids = shared, children(shared)
    assert server.stop() == 0
    for pid in pids:
        assert not alive(pid), pid


def test_a_killed_parent_takes_its_processes_along(start_server: StartServer) -> None:
    server, pids = started(start_server)
    server.process.kill()
    server.process.wait()
    wait_for(lambda: not any(alive(pid) for pid in pids), "the children gone")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), 1.0):
        pass
