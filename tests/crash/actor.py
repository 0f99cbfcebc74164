"""A producer or consumer process for the crash tests, meant to be killed with SIGKILL.

Run as ``python -m tests.crash.actor ROLE --db PATH --queue NAME --log PATH ...``
from the repository root.  Every line of the log is written with one ``write``
and fsynced before the actor goes on, so the log says what the actor knew at
the moment it died:

producer::

    attempt <body>                  before the send
    acked <message_id> <body>       after the send returned

consumer (and holder)::

    recv <message_id> <t_before> <t_after> <visibility> <receive_count> <body>
    abandon <message_id>            a poison message, left to be redelivered
    deleting <message_id>           before the delete
    deleted <message_id> <t_after>  after the delete returned success
    holding <n>                     holder only: it now holds n messages

``t_before`` and ``t_after`` are ``time.time()`` around the receive call, so the
engine's claim lies between them.  Bodies are ``<tag>-<n>``; a consumer never
deletes a body whose ``n`` is a multiple of ``POISON_EVERY``, so those messages
are redelivered until the redrive policy dead-letters them.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time
from typing import Any

import trainmq

POISON_EVERY = 13


def is_poison(body: str) -> bool:
    return int(body.rsplit("-", 1)[1]) % POISON_EVERY == 0


class Log:
    """An append-only log whose lines are durable once ``write`` returns."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *fields: object) -> None:
        os.write(self._fd, (" ".join(str(f) for f in fields) + "\n").encode())
        os.fsync(self._fd)


def produce(client: Any, url: str, log: Log, tag: str, count: int, rng: random.Random) -> None:
    sent = 0
    while sent < count:
        bodies = [f"{tag}-{sent + k}" for k in range(min(rng.randint(1, 5), count - sent))]
        sent += len(bodies)
        for body in bodies:
            log.write("attempt", body)
        if len(bodies) == 1:
            response = client.send_message(QueueUrl=url, MessageBody=bodies[0])
            log.write("acked", response["MessageId"], bodies[0])
            continue
        entries = [{"Id": str(k), "MessageBody": body} for k, body in enumerate(bodies)]
        response = client.send_message_batch(QueueUrl=url, Entries=entries)
        for entry in response.get("Successful", []):
            log.write("acked", entry["MessageId"], bodies[int(entry["Id"])])


def receive(
    client: Any, url: str, log: Log, visibility: int, max_messages: int
) -> list[dict[str, Any]]:
    t_before = time.time()
    response = client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max_messages,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=1,
        AttributeNames=["ApproximateReceiveCount"],
    )
    t_after = time.time()
    messages: list[dict[str, Any]] = response.get("Messages", [])
    for m in messages:
        count = m["Attributes"]["ApproximateReceiveCount"]
        log.write(
            "recv",
            m["MessageId"],
            f"{t_before:.6f}",
            f"{t_after:.6f}",
            visibility,
            count,
            m["Body"],
        )
    return messages


def delete(client: Any, url: str, log: Log, messages: list[dict[str, Any]], batch: bool) -> None:
    for m in messages:
        log.write("deleting", m["MessageId"])
    if not batch:
        for m in messages:
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            log.write("deleted", m["MessageId"], f"{time.time():.6f}")
        return
    entries = [{"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)]
    response = client.delete_message_batch(QueueUrl=url, Entries=entries)
    done = time.time()
    for entry in response.get("Successful", []):
        log.write("deleted", messages[int(entry["Id"])]["MessageId"], f"{done:.6f}")


def consume(client: Any, url: str, log: Log, visibility: int, rng: random.Random) -> None:
    while True:
        messages = receive(client, url, log, visibility, rng.randint(1, 10))
        keep = []
        for m in messages:
            if is_poison(m["Body"]):
                log.write("abandon", m["MessageId"])
            else:
                keep.append(m)
        if keep:
            delete(client, url, log, keep, batch=rng.random() < 0.5)


def hold(client: Any, url: str, log: Log, visibility: int, count: int) -> None:
    held: set[str] = set()
    while len(held) < count:
        messages = receive(client, url, log, visibility, 10)
        held.update(m["MessageId"] for m in messages)
    log.write("holding", len(held))
    while True:
        signal.pause()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["producer", "consumer", "holder"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--tag", default="m")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--visibility", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    log = Log(args.log)
    with trainmq.client(args.db) as client:
        url = client.get_queue_url(QueueName=args.queue)["QueueUrl"]
        if args.role == "producer":
            produce(client, url, log, args.tag, args.count, rng)
        elif args.role == "consumer":
            consume(client, url, log, args.visibility, rng)
        else:
            hold(client, url, log, args.visibility, args.count)


if __name__ == "__main__":
    main()
