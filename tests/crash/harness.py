"""Starting, watching and killing actor processes, and reading their logs back."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Receive:
    """One delivery of a message, as the receiver logged it."""

    message_id: str
    t_before: float
    t_after: float
    visibility: float
    receive_count: int
    body: str
    source: str  # the actor, or the queue the test drained


@dataclass
class History:
    """Everything the actors (and the final drain) knew, merged."""

    attempted: set[str] = field(default_factory=set)
    acked: dict[str, str] = field(default_factory=dict)  # message id -> body
    receives: list[Receive] = field(default_factory=list)
    delete_intents: set[str] = field(default_factory=set)
    deletes: list[tuple[Receive, float]] = field(default_factory=list)  # delivery, returned at
    drained: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def add_receive(self, delivery: Receive) -> None:
        self.receives.append(delivery)

    def by_message(self) -> dict[str, list[Receive]]:
        grouped: dict[str, list[Receive]] = defaultdict(list)
        for delivery in self.receives:
            grouped[delivery.message_id].append(delivery)
        return grouped


class Actor:
    """One actor process and its log."""

    def __init__(self, role: str, name: str, process: subprocess.Popen[bytes], directory: Path):
        self.role = role
        self.name = name
        self.process = process
        self.log_path = directory / f"{name}.log"
        self.stderr_path = directory / f"{name}.stderr"

    def __repr__(self) -> str:
        return f"<{self.name} rc={self.process.returncode} lines={self.lines()}>"

    def running(self) -> bool:
        return self.process.poll() is None

    def records(self) -> list[list[str]]:
        return read_records(self.log_path)

    def lines(self) -> int:
        return len(self.records())

    def has_worked(self) -> bool:
        wanted = {"producer": "acked", "consumer": "recv", "holder": "holding"}[self.role]
        return any(record[0] == wanted for record in self.records())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def check(self) -> None:
        """Fail when the actor died on its own (a finished producer exits with 0)."""
        code = self.process.poll()
        if code is None or code == -signal.SIGKILL or (code == 0 and self.role == "producer"):
            return
        stderr = self.stderr_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{self.name} exited with {code}:\n{stderr}")


def start_actor(
    role: str,
    directory: Path,
    db: str,
    queue: str,
    name: str,
    rng: random.Random,
    options: dict[str, object],
) -> Actor:
    command = [sys.executable, "-m", "tests.crash.actor", role, "--db", db, "--queue", queue]
    command += ["--log", str(directory / f"{name}.log"), "--seed", str(rng.randrange(2**32))]
    for option, value in options.items():
        command += [f"--{option}", str(value)]
    with open(directory / f"{name}.stderr", "wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return Actor(role, name, process, directory)


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    failure: Callable[[], str] | None,
    watch: list[Actor],
) -> bool:
    """Poll ``condition`` until it holds; on timeout fail with ``failure()``, or return False.

    Every poll also checks that no watched actor died on its own.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        for actor in watch:
            actor.check()
        if time.monotonic() >= deadline:
            if failure is None:
                return False
            raise AssertionError(failure())
        time.sleep(0.01)
    return True


def read_records(path: Path) -> list[list[str]]:
    """The complete lines of a log (a kill may leave the last one unfinished), split."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]
    return [line.decode().split(" ") for line in lines]


def read_producer_log(path: Path, history: History) -> None:
    for record in read_records(path):
        if record[0] == "attempt":
            history.attempted.add(record[1])
        elif record[0] == "acked":
            history.acked[record[1]] = record[2]


def read_consumer_log(path: Path, history: History, source: str) -> None:
    latest: dict[str, Receive] = {}
    for record in read_records(path):
        kind, message_id = record[0], record[1]
        if kind == "recv":
            t_before, t_after, visibility = (float(v) for v in record[2:5])
            delivery = Receive(
                message_id, t_before, t_after, visibility, int(record[5]), record[6], source
            )
            history.add_receive(delivery)
            latest[message_id] = delivery
        elif kind == "deleting":
            history.delete_intents.add(message_id)
        elif kind == "deleted":
            history.deletes.append((latest[message_id], float(record[2])))
