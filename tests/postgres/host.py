"""One process of a "host" in the multi-host test: a FIFO producer or consumer.

Run as ``python -m tests.postgres.host ROLE --address URL --host NAME --log PATH``.
Log lines (one ``write`` each, fsynced)::

    acked <message_id> <group> <seq>                         producer, after the send
    recv <batch> <message_id> <group> <seq> <t_before> <t_after>   consumer
    deleting <message_id> <t>                                consumer, before the delete
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from typing import Any

import trainmq
from tests.crash.actor import Log


def produce(client: Any, url: str, log: Log, host: str, groups: int, count: int) -> None:
    """Interleave the host's groups; each group's messages go in order 0..count-1."""
    for seq in range(count):
        for g in range(groups):
            group = f"{host}-g{g}"
            response = client.send_message(
                QueueUrl=url,
                MessageBody=f"{group}:{seq}",
                MessageGroupId=group,
                MessageDeduplicationId=f"{group}-{seq}",
            )
            log.write("acked", response["MessageId"], group, seq)


def consume(client: Any, url: str, log: Log, rng: random.Random) -> None:
    while True:
        t_before = time.time()
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=rng.randint(1, 10), WaitTimeSeconds=1
        ).get("Messages", [])
        t_after = time.time()
        batch = uuid.uuid4().hex[:8]
        for m in messages:
            group, seq = m["Body"].split(":")
            times = (f"{t_before:.6f}", f"{t_after:.6f}")
            log.write("recv", batch, m["MessageId"], group, seq, *times)
        for m in messages:
            time.sleep(rng.uniform(0, 0.003))  # the work
            log.write("deleting", m["MessageId"], f"{time.time():.6f}")
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["producer", "consumer"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--queue", default="shared.fifo")
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    log = Log(args.log)
    with trainmq.client(args.address) as client:
        url = client.get_queue_url(QueueName=args.queue)["QueueUrl"]
        if args.role == "producer":
            produce(client, url, log, args.host, args.groups, args.count)
        else:
            consume(client, url, log, random.Random(args.seed))


if __name__ == "__main__":
    main()
