"""Workloads run under the file-operation shim (``fsshim.c``), for the power-loss and
creation tests.

``python -m tests.crash.fsworkload power DIR --durability full --operations N --seed S``
sends, receives, changes visibility and deletes on a standard and a FIFO queue in
``DIR/queues.db``, and writes what it did to ``DIR/acks`` with one ``write`` per
line, so that the lines land in the shim's log in order with the database's own
file operations::

    s <body>    before a send        S <body>    after the send returned
    d <body>    before a delete      D <body>    after the delete returned
    R <body> <receive count>         after a receive returned it

``--durable-receives`` opens the engine as ``trainmq serve`` does, fsyncing claims.

``python -m tests.crash.fsworkload creation DIR`` creates a new database over and over,
each time in a forked child that the shim kills just before its Nth file operation
(N = 1, 2, ... until a child finishes), and reopens each leftover in the parent.
It prints a JSON summary: the number of kill points and every reopen that failed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import signal
from pathlib import Path
from typing import Any

import trainmq
from trainmq.queue import LocalClient
from trainmq.queue.client import open_service

HOLD_SECONDS = 60  # longer than the workload, so a held receipt handle stays current


class Marks:
    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, kind: str, bodies: list[str]) -> None:
        if bodies:
            os.write(self._fd, "".join(f"{kind} {body}\n" for body in bodies).encode())


class PowerWorkload:
    def __init__(self, client: Any, marks: Marks, rng: random.Random) -> None:
        self.client, self.marks, self.rng = client, marks, rng
        self.urls = [
            client.create_queue(QueueName="work")["QueueUrl"],
            client.create_queue(QueueName="work.fifo", Attributes={"FifoQueue": "true"})[
                "QueueUrl"
            ],
        ]
        self.sent = 0
        self.held: list[tuple[str, str, str]] = []  # url, body, receipt handle

    def step(self) -> None:
        action = self.rng.random()
        if action < 0.45:
            self.send(self.rng.choice(self.urls))
        elif action < 0.7:
            self.receive(self.rng.choice(self.urls))
        elif action < 0.8 and self.held:
            self.change_visibility()
        elif self.held:
            self.delete()

    def send(self, url: str) -> None:
        bodies = [f"p-{self.sent + k}" for k in range(self.rng.randint(1, 5))]
        self.sent += len(bodies)
        fifo = url.endswith(".fifo")
        entries = []
        for k, body in enumerate(bodies):
            entry = {"Id": str(k), "MessageBody": body}
            if fifo:
                entry |= {"MessageGroupId": f"g{self.rng.randint(0, 2)}"}
                entry |= {"MessageDeduplicationId": body}
            entries.append(entry)
        self.marks.write("s", bodies)
        if len(entries) == 1:
            params = {k: v for k, v in entries[0].items() if k != "Id"}
            self.client.send_message(QueueUrl=url, **params)
            self.marks.write("S", bodies)
            return
        response = self.client.send_message_batch(QueueUrl=url, Entries=entries)
        self.marks.write("S", [bodies[int(e["Id"])] for e in response.get("Successful", [])])

    def receive(self, url: str) -> None:
        response = self.client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=self.rng.randint(1, 10),
            VisibilityTimeout=HOLD_SECONDS,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        received = response.get("Messages", [])
        for m in received:
            self.held.append((url, m["Body"], m["ReceiptHandle"]))
        counts = [f"{m['Body']} {m['Attributes']['ApproximateReceiveCount']}" for m in received]
        self.marks.write("R", counts)

    def change_visibility(self) -> None:
        url, body, handle = self.held[self.rng.randrange(len(self.held))]
        if self.rng.random() < 0.5:  # let it go: its handle is no longer ours
            self.client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
            )
            self.held.remove((url, body, handle))
        else:
            self.client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=HOLD_SECONDS + 30
            )

    def delete(self) -> None:
        url = self.held[0][0]
        chosen = [h for h in self.held if h[0] == url][: self.rng.randint(1, 4)]
        for held in chosen:
            self.held.remove(held)
        bodies = [body for _, body, _ in chosen]
        self.marks.write("d", bodies)
        if len(chosen) == 1:
            self.client.delete_message(QueueUrl=url, ReceiptHandle=chosen[0][2])
            self.marks.write("D", bodies)
            return
        entries = [{"Id": str(k), "ReceiptHandle": h[2]} for k, h in enumerate(chosen)]
        response = self.client.delete_message_batch(QueueUrl=url, Entries=entries)
        self.marks.write("D", [bodies[int(e["Id"])] for e in response.get("Successful", [])])


def power(
    directory: Path, durability: str, operations: int, seed: int, durable_receives: bool
) -> None:
    marks = Marks(directory / "acks")
    service = open_service(
        directory / "queues.db", durability=durability, durable_receives=durable_receives
    )
    with LocalClient(service) as client:
        workload = PowerWorkload(client, marks, random.Random(seed))
        for _ in range(operations):
            workload.step()


def creation(directory: Path, limit: int) -> dict[str, Any]:
    """Kill a fresh creation before each of its file operations in turn; reopen each."""
    shim = ctypes.CDLL(None)
    failures: list[dict[str, Any]] = []
    for point in range(1, limit + 1):
        folder = directory / f"kill-{point}"
        folder.mkdir()
        path = folder / "queues.db"
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            shim.tmq_set_die_at(ctypes.c_long(point))
            trainmq.client(path).close()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed and os.waitstatus_to_exitcode(status) != 0:
            failures.append({"point": point, "error": f"creation failed: {status}"})
        try:
            with trainmq.client(path) as client:
                url = client.create_queue(QueueName="q")["QueueUrl"]
                client.send_message(QueueUrl=url, MessageBody="after the crash")
                bodies = [m["Body"] for m in client.receive_message(QueueUrl=url)["Messages"]]
                if bodies != ["after the crash"]:
                    raise AssertionError(bodies)
        except Exception as exc:
            failures.append({"point": point, "error": f"{type(exc).__name__}: {exc}"})
        if not killed:
            return {"points": point - 1, "failures": failures}
    return {"points": limit, "failures": failures, "unfinished": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["power", "creation"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--durability", default="full")
    parser.add_argument("--operations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--durable-receives", action="store_true")
    args = parser.parse_args()
    if args.mode == "power":
        power(args.directory, args.durability, args.operations, args.seed, args.durable_receives)
    else:
        print(json.dumps(creation(args.directory, args.limit)))


if __name__ == "__main__":
    main()
