"""A producer, consumer or file opener for the crash scenarios, meant to be SIGKILLed.

Run as ``python -m tests.crash.peer ROLE --log PATH (--db PATH | --endpoint URL) ...``
from the repository root.  Each log line is one ``write`` of an ``O_APPEND`` file
(a process kill loses nothing the kernel accepted), so the log says what the
peer knew when it died.  Times are ``time.time()``; ``tb``/``ta`` bracket a call,
so whatever the engine did for it happened between them::

    send <tb> <body> <group>            before a send (group "-" on standard queues)
    sent <ta> <message_id> <body>       after it returned
    recv <tb> <ta> <visibility> <count> <message_id> <body> <group> <sequence> <queue>
    chvis <tb> <message_id> <visibility>    before a visibility change
    chvised <ta> <message_id> <visibility>  after it returned
    del <tb> <message_id>               before a delete
    deleted <ta> <message_id>           after it returned success

Bodies are ``<tag>-<n>``; consumers never delete bodies whose ``n`` is a multiple of
``POISON_EVERY`` (the redrive policy must dead-letter them).  With ``--clients 2``
the peer opens two clients on the same file and alternates between them.
The ``opener`` role opens and closes the database over and over, as CLI calls
and monitors do.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import time
from typing import Any

import trainmq

POISON_EVERY = 11
_BOTO_ERRORS: tuple[type[BaseException], ...] = ()


def is_poison(body: str) -> bool:
    return int(body.rsplit("-", 1)[1]) % POISON_EVERY == 0


class Log:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *fields: object) -> None:
        os.write(self._fd, (" ".join(str(f) for f in fields) + "\n").encode())


def now() -> str:
    return f"{time.time():.6f}"


class Peer:
    def __init__(self, args: argparse.Namespace, clients: list[Any]) -> None:
        self.args = args
        self.clients = clients
        self.rng = random.Random(args.seed)
        self.log = Log(args.log)
        self.url = clients[0].get_queue_url(QueueName=args.queue)["QueueUrl"]
        self.fifo = args.queue.endswith(".fifo")
        self.turn = 0

    def client(self) -> Any:
        self.turn += 1
        return self.clients[self.turn % len(self.clients)]

    def call(self, method: str, **params: Any) -> dict[str, Any] | None:
        """One call; None when it failed (an SQS error, or with a remote endpoint a failed
        connection): the peer then knows nothing about its effect."""
        try:
            result: dict[str, Any] = getattr(self.client(), method)(QueueUrl=self.url, **params)
            return result
        except trainmq.SQSError:
            return None  # e.g. a visibility change after the message came back: not acked
        except _BOTO_ERRORS:
            time.sleep(0.05)
            return None

    # -- producing --------------------------------------------------------------------------
    def produce(self) -> None:
        sent = 0
        while sent < self.args.count:
            bodies = [f"{self.args.tag}-{sent + k}" for k in range(self.rng.randint(1, 4))]
            sent += len(bodies)
            groups = [f"g{self.rng.randint(0, 3)}" if self.fifo else "-" for _ in bodies]
            retries = 1 + (self.fifo and self.rng.random() < 0.15)
            for _ in range(retries):  # a FIFO resend of the same dedup id must not duplicate
                while not self.send(bodies, groups) and self.fifo:
                    pass

    def send(self, bodies: list[str], groups: list[str]) -> bool:
        for body, group in zip(bodies, groups, strict=True):
            self.log.write("send", now(), body, group)
        entries = []
        for k, (body, group) in enumerate(zip(bodies, groups, strict=True)):
            entry = {"Id": str(k), "MessageBody": body}
            if self.fifo:
                entry |= {"MessageGroupId": group, "MessageDeduplicationId": body}
            entries.append(entry)
        if len(entries) == 1:
            one = self.call("send_message", **{k: v for k, v in entries[0].items() if k != "Id"})
            if one is not None:
                self.log.write("sent", now(), one["MessageId"], bodies[0])
            return one is not None
        batch = self.call("send_message_batch", Entries=entries)
        for entry in (batch or {}).get("Successful", []):
            self.log.write("sent", now(), entry["MessageId"], bodies[int(entry["Id"])])
        return batch is not None and not batch.get("Failed")

    # -- consuming --------------------------------------------------------------------------
    def consume(self) -> None:
        while True:
            held = self.receive()
            keep = []
            for m in held:
                if not is_poison(m["Body"]):
                    keep.append(m)
                elif self.args.changes and self.rng.random() < 0.5:
                    self.change(m, 0)  # give the poison back at once
            if self.args.changes and keep and self.rng.random() < 0.4:
                m = self.rng.choice(keep)
                visibility = self.rng.choice([0, 1, self.args.visibility + 2])
                self.change(m, visibility)
                if visibility == 0:
                    keep.remove(m)
            if keep:
                self.delete(keep)

    def receive(self) -> list[dict[str, Any]]:
        tb = now()
        response = self.call(
            "receive_message",
            MaxNumberOfMessages=self.rng.randint(1, 10),
            VisibilityTimeout=self.args.visibility,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SequenceNumber"],
        )
        ta = now()
        messages: list[dict[str, Any]] = (response or {}).get("Messages", [])
        for m in messages:
            attributes = m.get("Attributes", {})
            self.log.write(
                "recv", tb, ta, self.args.visibility, attributes["ApproximateReceiveCount"],
                m["MessageId"], m["Body"], attributes.get("MessageGroupId", "-"),
                attributes.get("SequenceNumber", "-"), self.args.queue,
            )  # fmt: skip
        return messages

    def change(self, m: dict[str, Any], visibility: int) -> None:
        self.log.write("chvis", now(), m["MessageId"], visibility)
        done = self.call(
            "change_message_visibility",
            ReceiptHandle=m["ReceiptHandle"],
            VisibilityTimeout=visibility,
        )
        if done is not None:
            self.log.write("chvised", now(), m["MessageId"], visibility)

    def delete(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            self.log.write("del", now(), m["MessageId"])
        if len(messages) == 1 or self.rng.random() < 0.5:
            for m in messages:
                if self.call("delete_message", ReceiptHandle=m["ReceiptHandle"]) is not None:
                    self.log.write("deleted", now(), m["MessageId"])
            return
        entries = [
            {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)
        ]
        response = self.call("delete_message_batch", Entries=entries)
        done = now()
        for entry in (response or {}).get("Successful", []):
            self.log.write("deleted", done, messages[int(entry["Id"])]["MessageId"])


def open_and_close(db: str, log: Log) -> None:
    """Open the file the ways other programs do, and close it, forever."""
    rounds = 0
    while True:
        with trainmq.client(db) as client:
            client.list_queues()
        conn = sqlite3.connect(db, timeout=30)
        conn.execute("SELECT count(*) FROM messages").fetchone()
        conn.close()
        rounds += 1
        log.write("opened", now(), rounds)


def remote_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    global _BOTO_ERRORS
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    _BOTO_ERRORS = (ConnectionError, HTTPClientError, ClientError)
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", config=config,
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["producer", "consumer", "opener"])
    parser.add_argument("--log", required=True)
    parser.add_argument("--db")
    parser.add_argument("--endpoint")
    parser.add_argument("--queue", default="work")
    parser.add_argument("--tag", default="m")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--visibility", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--changes", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if args.role == "opener":
        open_and_close(args.db, Log(args.log))
        return
    if args.endpoint:
        clients = [remote_client(args.endpoint)]
        while True:
            try:
                clients[0].get_queue_url(QueueName=args.queue)
                break
            except _BOTO_ERRORS:
                time.sleep(0.1)
    else:
        clients = [trainmq.client(args.db) for _ in range(args.clients)]
    peer = Peer(args, clients)
    peer.produce() if args.role == "producer" else peer.consume()
    for client in clients:
        client.close()


if __name__ == "__main__":
    main()
