"""The servers under test for ``bench/http.py``, and what the machine offers them.

Each server runs in its own process (and its children) on 127.0.0.1 with a
free port: ``trainmq serve`` (default durability, fsync on every commit that a
caller relies on), moto's server and LocalStack (``http_localstack.py``). CPU
time is read from ``/proc`` for the whole process tree, so that the report can
say how the two cores were shared between a server and its load generator.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
READY_SECONDS = 60.0
STOP_SECONDS = 30.0
RAM_FILE_SYSTEMS = {"tmpfs", "ramfs"}


@dataclass
class Server:
    """A server process started by the benchmark, answering on ``HOST:port``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pids(self) -> list[int]:
        """The server's process and its descendants (``--workers`` children)."""
        return process_tree(self.process.pid)

    def log_tail(self, chars: int = 4_000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _server_environment() -> dict[str, str]:
    """The caller's environment less trainmq's own settings (the bench passes its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRAINMQ_")}


def start_process(
    name: str,
    command: list[str],
    port: int,
    log_dir: Path,
    env: dict[str, str] | None = None,
    ready_path: str | None = None,
) -> Server:
    """Starts a server and waits until it answers; ``ready_path``: a LocalStack service
    that must report itself running, beyond the port accepting connections."""
    log_path = log_dir / f"{name}-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env if env is not None else _server_environment(),
        )
    server = Server(name, process, port, log_path)
    probe = _accepts if ready_path is None else _service_running(ready_path)
    try:
        _wait_ready(server, probe)
    except BaseException:
        server.stop()
        raise
    return server


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _service_running(service: str) -> Callable[[int], bool]:
    def probe(port: int) -> bool:
        url = f"http://{HOST}:{port}/_localstack/health"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as answer:
                state = json.loads(answer.read()).get("services", {}).get(service)
        except (OSError, ValueError):
            return False
        return state in ("running", "available")

    return probe


def _wait_ready(server: Server, probe: Callable[[int], bool]) -> None:
    """Polls until ``probe`` says the server answers, within a bounded time."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} server exited early:\n{server.log_tail()}")
        if probe(server.port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} server not ready after {READY_SECONDS:.0f} s")


def start_trainmq(db_path: Path, log_dir: Path, workers: int | None = None) -> Server:
    """``trainmq serve``; ``workers``: its ``--workers`` (None: its default, one per core)."""
    port = free_port()
    command = [sys.executable, "-m", "trainmq", "serve", "--host", HOST, "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    name = "trainmq" if workers is None else f"trainmq-w{workers}"
    return start_process(name, [*command, "--db", str(db_path)], port, log_dir)


def start_moto(log_dir: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return start_process("moto", command, port, log_dir)


# --- the machine ----------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux; elsewhere ``pid`` alone)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads), or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class CpuMeter:
    """CPU time used by a set of processes between ``start()`` and ``stop()``."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.wall = 0.0
        self._start: list[float | None] = []

    def start(self) -> None:
        self._start = [cpu_seconds(pid) for pid in self.pids]
        self.wall = time.perf_counter()

    def stop(self) -> list[float | None]:
        """CPU seconds each process used since ``start()`` (None: unknown); sets ``wall``."""
        self.wall = time.perf_counter() - self.wall
        used: list[float | None] = []
        for pid, before in zip(self.pids, self._start, strict=True):
            after = cpu_seconds(pid)
            used.append(None if before is None or after is None else after - before)
        return used


def cpu_share(used: list[float | None], wall: float, requests: int) -> dict[str, float] | None:
    """Percent of one core and CPU milliseconds per request of some processes together."""
    if any(u is None for u in used) or wall <= 0 or requests <= 0:
        return None
    seconds = sum(u for u in used if u is not None)
    return {"percent": 100.0 * seconds / wall, "ms_per_request": 1_000.0 * seconds / requests}
