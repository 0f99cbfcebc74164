"""Crash tests: producer and consumer processes on one database, killed with SIGKILL.

The actors (``tests/crash/actor.py``) log what they knew before each step,
durably, so after the last kill the test can account for every message:

- none lost: every acknowledged send was deleted by someone who tried to, or
  is still in the queue or its dead-letter queue;
- none invented: every message ever seen has a body some producer attempted,
  the acknowledged body for its id, and no body reached two message ids;
- never held twice: two deliveries of one message are a visibility timeout
  apart (each claim lies between the ``t_before`` and ``t_after`` of its
  receive), and a message is not delivered again after a delete through its
  current handle returned.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

import trainmq
from tests.crash.actor import is_poison
from tests.crash.harness import (
    Actor,
    History,
    Receive,
    read_consumer_log,
    read_producer_log,
    start_actor,
    wait_until,
)

VISIBILITY = 2
MAX_RECEIVE_COUNT = 5
MIN_ROUNDS = 6
# Rounds go on past MIN_ROUNDS until a poison message was delivered MAX_RECEIVE_COUNT times
# (so the next receive must dead-letter it), for at most this long.
ROUNDS_BUDGET = 40
DRAIN_VISIBILITY = 30
QUEUE = "work"
DEAD_LETTER_QUEUE = "work-dlq"
# The engine keeps times in whole milliseconds; allow for one rounding step.
CLOCK_SLACK = 0.002
COUNT_NAMES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def create_queues(db: str, visibility: int, redrive: bool) -> None:
    with trainmq.client(db) as client:
        attributes = {"VisibilityTimeout": str(visibility)}
        if redrive:
            dlq = client.create_queue(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
            arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
            policy = {
                "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            }
            attributes["RedrivePolicy"] = json.dumps(policy)
        client.create_queue(QueueName=QUEUE, Attributes=attributes)


def messages_in(client: Any, url: str) -> int:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=COUNT_NAMES)
    return sum(int(attributes["Attributes"][name]) for name in COUNT_NAMES)


def drain(client: Any, queue: str, history: History, timeout: float) -> None:
    """Receive and delete until the queue is empty, recording each delivery."""
    url = client.get_queue_url(QueueName=queue)["QueueUrl"]
    deadline = time.monotonic() + timeout
    while True:
        t_before = time.time()
        response = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=DRAIN_VISIBILITY,
            WaitTimeSeconds=0,
            AttributeNames=["ApproximateReceiveCount"],
        )
        t_after = time.time()
        messages = response.get("Messages", [])
        deliveries = {}
        for m in messages:
            count = int(m["Attributes"]["ApproximateReceiveCount"])
            delivery = Receive(
                m["MessageId"], t_before, t_after, DRAIN_VISIBILITY, count, m["Body"], queue
            )
            history.add_receive(delivery)
            history.drained[queue][m["MessageId"]] = m["Body"]
            deliveries[str(len(deliveries))] = (delivery, m["ReceiptHandle"])
        if deliveries:
            entries = [
                {"Id": key, "ReceiptHandle": handle} for key, (_, handle) in deliveries.items()
            ]
            result = client.delete_message_batch(QueueUrl=url, Entries=entries)
            done = time.time()
            assert not result.get("Failed"), result["Failed"]
            for delivery, _ in deliveries.values():
                history.delete_intents.add(delivery.message_id)
                history.deletes.append((delivery, done))
        elif messages_in(client, url) == 0:
            return
        else:
            assert time.monotonic() < deadline, f"{queue} still holds messages after {timeout} s"
            time.sleep(0.05)


# -- the checks --------------------------------------------------------------------------


def check_none_lost(history: History) -> None:
    drained = set(history.drained[QUEUE]) | set(history.drained[DEAD_LETTER_QUEUE])
    lost = [
        (message_id, body)
        for message_id, body in history.acked.items()
        if message_id not in history.delete_intents and message_id not in drained
    ]
    assert not lost, f"{len(lost)} acknowledged messages vanished, e.g. {lost[:5]}"


def check_none_invented(history: History) -> None:
    ids_by_body: dict[str, set[str]] = defaultdict(set)
    for delivery in history.receives:
        assert delivery.body in history.attempted, f"never sent: {delivery}"
        acked_body = history.acked.get(delivery.message_id)
        assert acked_body in (None, delivery.body), f"{delivery} was acked as {acked_body!r}"
        ids_by_body[delivery.body].add(delivery.message_id)
    for message_id, body in history.acked.items():
        ids_by_body[body].add(message_id)
    duplicated = {body: ids for body, ids in ids_by_body.items() if len(ids) > 1}
    assert not duplicated, f"one send became several messages: {duplicated}"


def held_apart(first: Receive, second: Receive) -> bool:
    """Whether ``second``'s claim is surely a visibility timeout after ``first``'s."""
    return second.t_after + CLOCK_SLACK >= first.t_before + first.visibility


def check_never_held_twice(history: History) -> None:
    for message_id, deliveries in history.by_message().items():
        for one, other in combinations(deliveries, 2):
            assert held_apart(one, other) or held_apart(other, one), (
                f"{message_id} was held by two consumers at once: {one} and {other}"
            )


def check_not_delivered_after_delete(history: History) -> None:
    by_message = history.by_message()
    for deleted, done in history.deletes:
        others = [d for d in by_message[deleted.message_id] if d is not deleted]
        # A delivery that may have claimed the message between the deleted one and the
        # delete made the deleted delivery's handle stale: that delete removed nothing.
        superseded = any(d.t_before < done and d.t_after > deleted.t_before for d in others)
        later = [d for d in others if d.t_before > done]
        assert superseded or not later, (
            f"{deleted.message_id} delivered again after its delete returned at {done:.6f}: "
            f"{deleted} then {later}"
        )


def check_dead_lettered(history: History) -> None:
    """Consumers never delete poison; one delivered maxReceiveCount times must be a dead letter."""
    exhausted = {
        d.message_id
        for d in history.receives
        if d.receive_count == MAX_RECEIVE_COUNT and is_poison(d.body) and d.source != QUEUE
    }
    missing = exhausted - set(history.drained[DEAD_LETTER_QUEUE])
    assert exhausted, "no poison message was delivered maxReceiveCount times"
    assert not missing, f"exhausted poison messages not in the dead-letter queue: {missing}"


def check_receive_counts(history: History) -> None:
    for message_id, deliveries in history.by_message().items():
        counts = [d.receive_count for d in deliveries if d.source != DEAD_LETTER_QUEUE]
        assert len(counts) == len(set(counts)), f"{message_id} repeated a receive count: {counts}"
        assert all(1 <= c <= MAX_RECEIVE_COUNT for c in counts), (
            f"{message_id} was delivered beyond maxReceiveCount: {counts}"
        )
        for one, other in combinations(deliveries, 2):
            if DEAD_LETTER_QUEUE in (one.source, other.source):
                continue
            first, second = (one, other) if one.t_after < other.t_before else (other, one)
            if first.t_after < second.t_before:
                assert first.receive_count < second.receive_count, (first, second)


# -- the tests ---------------------------------------------------------------------------


class Cluster:
    """Two producer and two consumer slots; a killed or finished actor is replaced."""

    def __init__(self, directory: Path, db: str, rng: random.Random) -> None:
        self.directory = directory
        self.db = db
        self.rng = rng
        self.slots: dict[str, Actor | None] = dict.fromkeys(
            ["producer-0", "producer-1", "consumer-0", "consumer-1"]
        )
        self.retired: list[Actor] = []

    def actors(self) -> list[Actor]:
        return [a for a in self.slots.values() if a is not None] + self.retired

    def fill(self, round_number: int) -> list[Actor]:
        started = []
        for slot, actor in self.slots.items():
            if actor is not None and actor.running():
                continue
            if actor is not None:
                self.retired.append(actor)
            role = slot.split("-")[0]
            name = f"r{round_number}{slot}"
            options = {"tag": name, "count": 40, "visibility": VISIBILITY}
            new = start_actor(role, self.directory, self.db, QUEUE, name, self.rng, options)
            self.slots[slot] = new
            started.append(new)
        return started

    def kill_some(self) -> None:
        """SIGKILL a random non-empty subset, each after a random amount of its own work."""
        running = [a for a in self.slots.values() if a is not None and a.running()]
        for victim in self.rng.sample(running, self.rng.randint(1, len(running))):
            target = victim.lines() + self.rng.randint(0, 15)

            def reached(victim: Actor = victim, target: int = target) -> bool:
                return victim.lines() >= target or not victim.running()

            wait_until(reached, timeout=5, failure=None, watch=self.actors())
            victim.kill()

    def poison_exhausted(self) -> bool:
        """Whether a consumer got a poison message for the last time before dead-lettering."""
        history = collect([a for a in self.actors() if a.role == "consumer"])
        return any(
            d.receive_count == MAX_RECEIVE_COUNT and is_poison(d.body) for d in history.receives
        )

    def stop(self) -> None:
        for actor in self.actors():
            actor.kill()


def run_rounds(cluster: Cluster) -> int:
    deadline = time.monotonic() + ROUNDS_BUDGET
    round_number = 0
    while round_number < MIN_ROUNDS or not cluster.poison_exhausted():
        assert time.monotonic() < deadline, (
            f"after {round_number} rounds no poison message was delivered {MAX_RECEIVE_COUNT} times"
        )
        started = cluster.fill(round_number)

        def all_worked(started: list[Actor] = started) -> bool:
            return all(actor.has_worked() for actor in started)

        def idle(started: list[Actor] = started, round_number: int = round_number) -> str:
            return f"round {round_number}: not every new actor did some work: {started}"

        wait_until(all_worked, timeout=30, failure=idle, watch=cluster.actors())
        cluster.kill_some()
        round_number += 1
    return round_number


def summary(history: History, cluster: Cluster) -> str:
    dead = history.drained[DEAD_LETTER_QUEUE]
    return (
        f"{len(cluster.actors())} actors, {len(history.attempted)} sends attempted, "
        f"{len(history.acked)} acknowledged, {len(history.receives)} deliveries, "
        f"{len(history.deletes)} deletes, {len(history.drained[QUEUE])} left in the queue, "
        f"{len(dead)} dead-lettered"
    )


def collect(actors: list[Actor]) -> History:
    history = History()
    for actor in actors:
        if actor.role == "producer":
            read_producer_log(actor.log_path, history)
        else:
            read_consumer_log(actor.log_path, history, actor.name)
    return history


@pytest.mark.slow
def test_every_message_accounted_for_after_kill9_rounds(tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(2**32)
    db = str(tmp_path / "queues.db")
    create_queues(db, VISIBILITY, redrive=True)
    cluster = Cluster(tmp_path, db, random.Random(seed))
    try:
        rounds = run_rounds(cluster)
    finally:
        cluster.stop()
    history = collect(cluster.actors())
    with trainmq.client(db) as client:
        drain(client, QUEUE, history, timeout=VISIBILITY + 20)
        drain(client, DEAD_LETTER_QUEUE, history, timeout=20)
    print(f"seed {seed}, {rounds} rounds: {summary(history, cluster)}")
    assert history.acked, f"seed {seed}: no send was acknowledged"
    assert history.deletes, f"seed {seed}: no consumer deleted anything"
    checks: list[Callable[[History], None]] = [
        check_none_lost,
        check_none_invented,
        check_never_held_twice,
        check_not_delivered_after_delete,
        check_receive_counts,
        check_dead_lettered,
    ]
    for check in checks:
        try:
            check(history)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc


def test_killed_consumer_messages_come_back(tmp_path: Path) -> None:
    db = str(tmp_path / "queues.db")
    create_queues(db, VISIBILITY, redrive=False)
    with trainmq.client(db) as client:
        url = client.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        sent = {
            client.send_message(QueueUrl=url, MessageBody=f"held-{n}")["MessageId"]
            for n in range(5)
        }
        options = {"count": len(sent), "visibility": VISIBILITY}
        holder = start_actor("holder", tmp_path, db, QUEUE, "holder", random.Random(0), options)
        try:
            wait_until(holder.has_worked, 30, lambda: f"{holder} held nothing", watch=[holder])
        finally:
            holder.kill()
        history = History()
        read_consumer_log(holder.log_path, history, holder.name)
        held = {d.message_id: d for d in history.receives}
        assert set(held) == sent
        back = receive_again(client, url, held)
        assert sorted(m["MessageId"] for m in back) == sorted(sent)
        counts = {m["MessageId"]: m["Attributes"]["ApproximateReceiveCount"] for m in back}
        assert counts == dict.fromkeys(sent, "2")


def receive_again(client: Any, url: str, held: dict[str, Receive]) -> list[dict[str, Any]]:
    """Poll until every held message is delivered again; none may come back early."""
    deadline = time.monotonic() + VISIBILITY + 10
    back: list[dict[str, Any]] = []
    while len(back) < len(held):
        assert time.monotonic() < deadline, f"only {len(back)} of {len(held)} came back"
        response = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        returned = time.time()
        messages = response.get("Messages", [])
        for m in messages:
            first = held[m["MessageId"]]
            assert returned + CLOCK_SLACK >= first.t_before + first.visibility, (
                f"{m['MessageId']} came back before its visibility timeout: {first}"
            )
        back += messages
        if not messages:
            time.sleep(0.05)
    return back
