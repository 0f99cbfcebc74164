"""Crash scenarios: peers (and a server) SIGKILLed in rounds, then every message accounted for.

Each scenario creates a queue with a dead-letter queue (``maxReceiveCount``),
runs two producers and two consumers (``peer.py``), optionally an opener that
keeps opening and closing the file, peers with two clients each, or a
``trainmq serve`` process that the peers reach through boto3.  Every round
refills the slots, lets the new peers work, then SIGKILLs a random subset
(the server included).  At the end the test drains both queues and hands
everything to the history checker (``history.py``).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trainmq
from tests.crash.harness import REPO_ROOT
from tests.crash.history import Delivery, History, violations

MAX_RECEIVE_COUNT = 4
DRAIN_VISIBILITY = 60


@dataclass(frozen=True)
class Scenario:
    name: str
    fifo: bool = False
    clients: int = 1
    changes: bool = True
    opener: bool = False
    serve: bool = False
    visibility: int = 1

    @property
    def queue(self) -> str:
        return "work.fifo" if self.fifo else "work"

    @property
    def dead_letter_queue(self) -> str:
        return "dead.fifo" if self.fifo else "dead"


SCENARIOS = [
    Scenario("standard, two clients per process, opener", clients=2, opener=True),
    Scenario("fifo groups and dedup", fifo=True, visibility=2),
    Scenario("serve killed under boto3 (fifo)", fifo=True, serve=True, visibility=3),
    Scenario("serve killed under boto3 (standard)", serve=True, changes=False, visibility=3),
]


@dataclass
class Outcome:
    scenario: Scenario
    rounds: int = 0
    kills: int = 0
    history: History = field(default_factory=History)
    violations: list[str] = field(default_factory=list)
    dead_lettered: int = 0

    def row(self) -> str:
        h = self.history
        return (
            f"{self.scenario.name:<40} {self.rounds:>6} {self.kills:>6} {len(h.attempted):>7} "
            f"{len(h.acked):>6} {len(h.deliveries):>7} {self.dead_lettered:>5} "
            f"{len(self.violations):>10}"
        )


HEADER = (
    f"{'scenario':<40} {'rounds':>6} {'kills':>6} {'sends':>7} {'acked':>6} "
    f"{'deliv.':>7} {'dlq':>5} {'violations':>10}"
)


class Process:
    def __init__(self, name: str, command: list[str], directory: Path) -> None:
        self.name = name
        self.log = directory / f"{name}.log"
        with open(directory / f"{name}.stderr", "wb") as stderr:
            self.popen = subprocess.Popen(
                command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        self.stderr = directory / f"{name}.stderr"

    def lines(self) -> int:
        return self.log.read_bytes().count(b"\n") if self.log.exists() else 0

    def running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def died_badly(self) -> str | None:
        code = self.popen.poll()
        if code is None or code in (0, -signal.SIGKILL):
            return None
        return f"{self.name} exited with {code}: {self.stderr.read_text(errors='replace')[-2000:]}"


class Run:
    """One scenario's processes, rounds and final accounting."""

    def __init__(self, scenario: Scenario, directory: Path, rng: random.Random) -> None:
        self.s = scenario
        self.directory = directory
        self.rng = rng
        self.db = str(directory / "queues.db")
        self.outcome = Outcome(scenario)
        self.slots: dict[str, Process | None] = dict.fromkeys(
            ["producer-0", "producer-1", "consumer-0", "consumer-1"]
            + (["opener-0"] if scenario.opener else [])
        )
        self.retired: list[Process] = []
        self.server: Process | None = None
        self.port = 0
        self._create_queues()

    def _create_queues(self) -> None:
        fifo = {"FifoQueue": "true"} if self.s.fifo else {}
        with trainmq.client(self.db) as client:
            dlq = client.create_queue(QueueName=self.s.dead_letter_queue, Attributes=fifo)
            arn = client.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])
            redrive = {
                "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            }
            attributes = fifo | {
                "VisibilityTimeout": str(self.s.visibility),
                "RedrivePolicy": json.dumps(redrive),
            }
            client.create_queue(QueueName=self.s.queue, Attributes=attributes)

    def start_server(self) -> None:
        if not self.port:
            from tests.server.conftest import free_port

            self.port = free_port()
        name = f"server-{self.outcome.kills}-{len(self.retired)}"
        command = [sys.executable, "-m", "trainmq", "serve", "--port", str(self.port)]
        self.server = Process(name, [*command, "--db", self.db], self.directory)

    def _peer(self, slot: str, round_number: int) -> Process:
        role = slot.split("-")[0]
        name = f"r{round_number}-{slot}"
        command = [sys.executable, "-m", "tests.crash.peer", role, "--log"]
        command += [str(self.directory / f"{name}.log"), "--queue", self.s.queue]
        command += ["--tag", name, "--visibility", str(self.s.visibility)]
        command += ["--clients", str(self.s.clients), "--seed", str(self.rng.randrange(2**32))]
        if self.s.changes:
            command.append("--changes")
        if self.s.serve and role != "opener":
            command += ["--endpoint", f"http://127.0.0.1:{self.port}"]
        else:
            command += ["--db", self.db]
        return Process(name, command, self.directory)

    def processes(self) -> list[Process]:
        live = [p for p in self.slots.values() if p is not None]
        return live + self.retired + ([self.server] if self.server else [])

    def check_health(self) -> None:
        for process in self.processes():
            problem = process.died_badly()
            if problem is not None:
                raise AssertionError(problem)

    def round(self, number: int) -> None:
        if self.s.serve and (self.server is None or not self.server.running()):
            if self.server is not None:
                self.retired.append(self.server)
            self.start_server()
        started = []
        for slot, process in self.slots.items():
            if process is not None and process.running():
                continue
            if process is not None:
                self.retired.append(process)
            self.slots[slot] = self._peer(slot, number)
            started.append(self.slots[slot])
        self._wait(lambda: all(p.lines() > 0 or not p.running() for p in started), 60)
        self.kill_some()
        if self.server is not None and number % 2 == 0 and self.server.running():
            self.server.kill()  # every other round, the server dies under its clients
            self.outcome.kills += 1
        self.outcome.rounds += 1

    def _wait(self, condition: object, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            self.check_health()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def kill_some(self) -> None:
        candidates = [p for p in self.slots.values() if p is not None and p.running()]
        for victim in self.rng.sample(candidates, self.rng.randint(1, len(candidates))):
            target = victim.lines() + self.rng.randint(0, 12)
            self._wait(lambda v=victim, t=target: v.lines() >= t or not v.running(), 3)  # type: ignore[misc]
            if victim.running():
                victim.kill()
                self.outcome.kills += 1

    def stop(self) -> None:
        for process in self.processes():
            if process.running():
                process.kill()

    def account(self) -> Outcome:
        history = self.outcome.history
        for process in self.retired + [p for p in self.slots.values() if p is not None]:
            history.read(process.log, process.name)
        with trainmq.client(self.db) as client:
            drain(client, self.s.queue, history, self.s.visibility + 30)
            self.outcome.dead_lettered = drain(client, self.s.dead_letter_queue, history, 30)
        self.outcome.violations = violations(history, MAX_RECEIVE_COUNT, {self.s.dead_letter_queue})
        return self.outcome


def drain(client: object, queue: str, history: History, timeout: float) -> int:
    """Receive and delete until the queue is empty; every delivery goes into the history."""
    url = client.get_queue_url(QueueName=queue)["QueueUrl"]  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    drained = 0
    while time.monotonic() < deadline:
        tb = time.time()
        response = client.receive_message(  # type: ignore[attr-defined]
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=DRAIN_VISIBILITY,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SequenceNumber"],
        )  # fmt: skip
        ta = time.time()
        messages = response.get("Messages", [])
        for m in messages:
            a = m["Attributes"]
            sequence = int(a["SequenceNumber"]) if "SequenceNumber" in a else None
            history.add_drained(
                Delivery(
                    "drain", m["MessageId"], m["Body"], a.get("MessageGroupId", "-"), sequence,
                    queue, tb, ta, DRAIN_VISIBILITY, int(a["ApproximateReceiveCount"]),
                )
            )  # fmt: skip
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])  # type: ignore[attr-defined]
        drained += len(messages)
        if not messages:
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            counts = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)  # type: ignore[attr-defined]
            if not any(int(v) for v in counts["Attributes"].values()):
                return drained
            time.sleep(0.1)
    raise AssertionError(f"{queue} still holds messages after {timeout} s")


def run(scenario: Scenario, directory: Path, rounds: int, seed: int) -> Outcome:
    directory.mkdir(parents=True, exist_ok=True)
    current = Run(scenario, directory, random.Random(seed))
    try:
        for number in range(rounds):
            current.round(number)
    finally:
        current.stop()
    current.check_health()
    return current.account()
