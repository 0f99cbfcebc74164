"""Two hosts sharing one database: senders and workers on each, FIFO order kept.

Each "host" is a group of processes (one producer, two consumers) in a network
namespace of its own (``unshare --net``, when this machine allows it): inside
it there is no network at all, not even the other host's loopback.  Its only
way to the database is a Unix socket that this test forwards to PostgreSQL,
one socket per host, so the two hosts share nothing but the database.
Without permission to make namespaces, the groups run as plain processes with
their own sockets.

Every message sent is processed once; no message is held by two consumers at
once; in every FIFO group, message n+1 is claimed only after message n was
being deleted (or with it, in one batch), whichever host's consumer took each.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import trainmq
from tests.crash.harness import REPO_ROOT, read_records
from tests.postgres.support import fresh_schema, server_url

HOSTS = ("a", "b")
GROUPS = 3
COUNT = 20
QUEUE = "shared.fifo"


class SocketForwarder:
    """A Unix socket in ``directory`` named as libpq expects, forwarding to the server."""

    def __init__(self, directory: Path) -> None:
        parts = urlsplit(server_url())
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(directory / f".s.PGSQL.{self.target[1]}"))
        self._server.listen(64)
        self._server.settimeout(0.05)
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                inner, _ = self._server.accept()
            except TimeoutError:
                continue
            outer = socket.create_connection(self.target)
            self._sockets += [inner, outer]
            self._spawn(_pump, inner, outer)
            self._spawn(_pump, outer, inner)

    def close(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join()
        for sock in [self._server, *self._sockets]:
            sock.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], check=False).returncode == 0
    except OSError:
        return False


@pytest.fixture
def address() -> Iterator[str]:
    with fresh_schema("h") as url:
        yield url


def _host_address(address: str, socket_dir: Path) -> str:
    """The same database and schema, reached through the host's own socket."""
    parts = urlsplit(address)
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{parts.path}?{parts.query}&host={socket_dir}"


def _start(role: str, host: str, address: str, log: Path, isolate: bool, seed: int) -> Any:
    command = [sys.executable, "-m", "tests.postgres.host", role, "--address", address]
    command += ["--host", host, "--log", str(log), "--groups", str(GROUPS)]
    command += ["--count", str(COUNT), "--seed", str(seed)]
    if isolate:
        command = ["unshare", "--net", *command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(f"{log}.stderr", "wb") as stderr:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=stderr)


def test_two_hosts_share_fifo_queues(address: str, tmp_path: Path) -> None:
    with trainmq.client(address) as client:
        client.create_queue(
            QueueName=QUEUE, Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"}
        )
    isolate = _can_unshare()
    rng = random.Random()
    forwarders, processes, logs = [], [], []
    try:
        for host in HOSTS:
            socket_dir = tmp_path / f"host-{host}"
            socket_dir.mkdir()
            forwarders.append(SocketForwarder(socket_dir))
            reach = _host_address(address, socket_dir)
            for role, index in (("producer", 0), ("consumer", 0), ("consumer", 1)):
                log = tmp_path / f"{host}-{role}-{index}.log"
                logs.append((host, role, log))
                processes.append(
                    _start(role, host, reach, log, isolate, rng.randrange(2**32))
                )
        total = len(HOSTS) * GROUPS * COUNT
        deadline = time.monotonic() + 120
        while _deleting(logs) < total:
            for process in processes:
                code = process.poll()
                assert code in (None, 0), f"a host process exited with {code}"
            assert time.monotonic() < deadline, f"only {_deleting(logs)} of {total} processed"
            time.sleep(0.05)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
        for forwarder in forwarders:
            forwarder.close()
    _check(logs, isolate)


def _deleting(logs: list[tuple[str, str, Path]]) -> int:
    return sum(
        1 for _, role, log in logs if role == "consumer"
        for record in read_records(log) if record[0] == "deleting"
    )


def _check(logs: list[tuple[str, str, Path]], isolated: bool) -> None:
    acked: dict[str, tuple[str, int]] = {}
    received: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    deleting: dict[str, float] = {}
    consumed_from: dict[str, set[str]] = defaultdict(set)
    for host, _role, log in logs:
        for record in read_records(log):
            if record[0] == "acked":
                acked[record[1]] = (record[2], int(record[3]))
            elif record[0] == "recv":
                batch, message_id, group = record[1], record[2], record[3]
                received[message_id].append((host, batch, float(record[5]), float(record[6])))
                consumed_from[host].add(group.split("-")[0])
            elif record[0] == "deleting":
                deleting[record[1]] = float(record[2])
    assert len(acked) == len(HOSTS) * GROUPS * COUNT
    assert set(received) == set(acked), "a message was lost or invented"
    twice = {m: r for m, r in received.items() if len(r) > 1}
    assert not twice, f"delivered twice within a 60 s visibility timeout: {twice}"
    by_group: dict[str, dict[int, str]] = defaultdict(dict)
    for message_id, (group, seq) in acked.items():
        by_group[group][seq] = message_id
    for group, messages in by_group.items():
        for seq in range(1, COUNT):
            earlier, later = messages[seq - 1], messages[seq]
            (_, batch_e, _, _), (_, batch_l, _, t_after) = received[earlier][0], received[later][0]
            assert batch_e == batch_l or t_after >= deleting[earlier], (
                f"{group}: message {seq} was claimed while message {seq - 1} was in flight"
            )
    for host in HOSTS:
        others = set(HOSTS) - {host}
        assert consumed_from[host] & others, f"host {host} took no message of the other host"
    print(f"{len(acked)} messages over {len(HOSTS)} hosts; own network namespaces: {isolated}")
