"""One history checker for every crash scenario, independent of the engine.

It reads the peers' logs (``peer.py``) and the final drain, and reports every
violation of what trainmq promises under process kills:

- **lost**: an acknowledged send that nobody tried to delete and that is not in
  any queue at the end;
- **invented**: a delivered body nobody sent, a message id whose body differs
  from the acknowledged one, or one sent body (FIFO resends with the same
  deduplication id included) that became two messages;
- **held twice**: a delivery whose claim surely falls inside another delivery's
  window of the same message.  A window runs from the claim (between the
  receive's ``tb`` and ``ta``) for the visibility timeout; an acknowledged
  visibility change made while it was surely held replaces its end by the
  change's ``tb`` + the new timeout; an unacknowledged change or a delete
  attempt may end it as early as its ``tb``;
- **delete then redelivered**: a message delivered again after a delete,
  returned while its delivery surely held it, succeeded;
- **receive counts**: one message's counts in one queue are distinct, increase
  with time and stay within ``maxReceiveCount``;
- **FIFO order**: within a group, a message is first delivered no earlier than
  every message sent before it in the group (by sequence number);
- **FIFO exclusivity**: a message is not delivered while an earlier message of
  its group is surely held by another consumer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

SLACK = 0.005  # the engine keeps milliseconds; the logs microseconds


@dataclass
class Delivery:
    actor: str
    message_id: str
    body: str
    group: str
    sequence: int | None
    queue: str
    tb: float
    ta: float
    visibility: float
    count: int
    held_until: float = 0.0  # the earliest end of the window, from visibility changes
    end: float = 0.0  # the earliest end, counting delete attempts too
    change_tb: float = 0.0  # when the latest visibility change was attempted
    deleted_at: float | None = None  # when a delete of this delivery returned success

    def __post_init__(self) -> None:
        self.held_until = self.end = self.tb + self.visibility

    def __str__(self) -> str:
        return (
            f"<{self.message_id} {self.body} #{self.count} by {self.actor} in {self.queue} "
            f"claimed {self.tb:.3f}..{self.ta:.3f} held until >= {self.end:.3f}>"
        )

    def shorten(self, until: float) -> None:
        self.held_until = min(self.held_until, until)
        self.end = min(self.end, until)


@dataclass
class History:
    attempted: set[str] = field(default_factory=set)
    acked: dict[str, str] = field(default_factory=dict)  # message id -> body
    deliveries: list[Delivery] = field(default_factory=list)
    delete_intents: set[str] = field(default_factory=set)
    drained: set[str] = field(default_factory=set)

    def read(self, path: Path, actor: str) -> None:
        if not path.exists():
            return
        latest: dict[str, Delivery] = {}
        for line in path.read_bytes().split(b"\n")[:-1]:  # a kill may cut the last line
            self._record(line.decode().split(" "), actor, latest)

    def _record(self, r: list[str], actor: str, latest: dict[str, Delivery]) -> None:
        kind = r[0]
        if kind == "send":
            self.attempted.add(r[2])
        elif kind == "sent":
            self.acked[r[2]] = r[3]
        elif kind == "recv":
            sequence = None if r[8] == "-" else int(r[8])
            d = Delivery(
                actor, r[5], r[6], r[7], sequence, r[9], float(r[1]), float(r[2]),
                float(r[3]), int(r[4]),
            )  # fmt: skip
            self.deliveries.append(d)
            latest[d.message_id] = d
        elif kind == "chvis" and r[2] in latest:
            d = latest[r[2]]
            d.change_tb = float(r[1])
            d.shorten(d.change_tb + int(r[3]))
        elif kind == "chvised" and r[2] in latest:
            d = latest[r[2]]
            if float(r[1]) + SLACK < d.end:  # surely still held: the change took effect
                d.held_until = d.end = d.change_tb + int(r[3])
        elif kind == "del" and r[2] in latest:
            self.delete_intents.add(r[2])
            latest[r[2]].end = min(latest[r[2]].end, float(r[1]))
        elif kind == "deleted" and r[2] in latest:
            latest[r[2]].deleted_at = float(r[1])

    def add_drained(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.drained.add(delivery.message_id)


def violations(history: History, max_receive_count: int, dead_letter_queues: set[str]) -> list[str]:
    found: list[str] = []
    found += _lost(history)
    found += _invented(history)
    by_message: dict[str, list[Delivery]] = defaultdict(list)
    for d in history.deliveries:
        by_message[d.message_id].append(d)
    for deliveries in by_message.values():
        found += _held_twice(deliveries)
        found += _counts(deliveries, max_receive_count, dead_letter_queues)
    found += _fifo(history.deliveries)
    return found


def _lost(history: History) -> list[str]:
    return [
        f"lost: {mid} ({body}) acknowledged, never deleted, not in any queue"
        for mid, body in history.acked.items()
        if mid not in history.delete_intents and mid not in history.drained
    ]


def _invented(history: History) -> list[str]:
    found = []
    ids_by_body: dict[str, set[str]] = defaultdict(set)
    for d in history.deliveries:
        if d.body not in history.attempted:
            found.append(f"invented: {d} has a body nobody sent")
        if history.acked.get(d.message_id, d.body) != d.body:
            found.append(f"invented: {d} was acknowledged as {history.acked[d.message_id]}")
        ids_by_body[d.body].add(d.message_id)
    for mid, body in history.acked.items():
        ids_by_body[body].add(mid)
    found += [f"invented: one send became {ids}" for ids in ids_by_body.values() if len(ids) > 1]
    return found


def _surely_after(first: Delivery, second: Delivery) -> bool:
    if first.queue == second.queue and first.count < second.count:
        return True  # counts order the claims of one queue
    return second.tb >= first.ta


def _held_twice(deliveries: list[Delivery]) -> list[str]:
    found = []
    for one, other in combinations(deliveries, 2):
        first, second = (one, other) if _surely_after(one, other) else (other, one)
        if not _surely_after(first, second):
            continue  # calls that overlap, in different queues: nothing is sure
        if second.ta + SLACK < first.end:
            found.append(f"held twice: {second} claimed inside the window of {first}")
        elif first.deleted_at is not None and first.deleted_at + SLACK < first.held_until:
            found.append(f"delete then redelivered: {first} deleted, then {second}")
    return found


def _counts(deliveries: list[Delivery], limit: int, dead_letter_queues: set[str]) -> list[str]:
    found = []
    by_queue: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_queue[d.queue].append(d)
    for queue, group in by_queue.items():
        counts = [d.count for d in group]
        if len(set(counts)) != len(counts):
            found.append(f"receive counts: {group[0].message_id} repeated a count in {queue}")
        if queue not in dead_letter_queues and max(counts) > limit:
            found.append(f"receive counts: {group[0].message_id} beyond {limit} in {queue}")
    return found


def _fifo(deliveries: list[Delivery]) -> list[str]:
    groups: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        if d.sequence is not None and d.group != "-":
            groups[(d.queue, d.group)].append(d)
    found = []
    for (queue, group), members in groups.items():
        first: dict[int, Delivery] = {}
        for d in members:
            if d.sequence not in first or d.count < first[d.sequence].count:
                first[d.sequence] = d  # type: ignore[index]
        ordered = sorted(first.items())
        for (_, earlier), (_, later) in combinations(ordered, 2):
            if later.ta + SLACK < earlier.tb:
                found.append(f"FIFO order: in {queue}/{group} {later} before {earlier}")
        for d in members:
            for e in members:
                if e.sequence >= d.sequence or e.actor == d.actor:  # type: ignore[operator]
                    continue
                if e.ta <= d.tb and d.ta + SLACK < e.end:
                    found.append(f"FIFO exclusivity: {d} while {e} held {queue}/{group}")
    return found
