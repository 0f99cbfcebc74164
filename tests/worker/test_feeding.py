"""Receiving ahead of the slots and deleting in groups, with fake queues (no processes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from tests.worker.conftest import wait_for
from trainmq.clock import SystemClock
from trainmq.worker.deletes import DeleteBatcher
from trainmq.worker.heartbeat import Heartbeat
from trainmq.worker.pool import FunctionSpec, HandlerProcess
from trainmq.worker.receive import PREFETCH, Receiver


class FakeQueue:
    """``receive_message`` hands out numbered messages; records what each call asked for."""

    def __init__(self, available: int) -> None:
        self.available = available
        self.next = 0
        self.asked: list[int] = []
        self.lock = threading.Lock()
        self.sqs = self

    def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.asked.append(MaxNumberOfMessages)
            count = min(MaxNumberOfMessages, self.available - self.next)
            numbers = range(self.next, self.next + count)
            self.next += count
        return {"Messages": [{"MessageId": f"m{n}", "ReceiptHandle": f"h{n}"} for n in numbers]}

    def resolve(self, message: dict[str, Any]) -> dict[str, Any]:
        return message

    def change_message_visibility_batch(self, **_: Any) -> dict[str, Any]:
        return {"Successful": [], "Failed": []}


def receiver(queue: FakeQueue, *, heartbeat: bool, batch_size: int = 1, fifo: bool = False,
             concurrency: int = 2, long_running: bool = False
             ) -> tuple[Receiver, threading.Event, Heartbeat]:
    stopping = threading.Event()
    beats = Heartbeat(queue, "url", 30, SystemClock())
    feed = Receiver(
        queue, "url", batch_size=batch_size, batching_window=0, concurrency=concurrency,
        fifo=fifo, wait_seconds=0, heartbeat=beats if heartbeat else None, clock=SystemClock(),
        stopping=stopping, long_running=long_running,
    )
    return feed, stopping, beats


def stop(feed: Receiver, stopping: threading.Event) -> None:
    stopping.set()
    feed.wake()
    assert feed.join(5)


def test_prefetch_is_bounded_and_every_held_message_is_heartbeated() -> None:
    queue = FakeQueue(available=100)
    feed, stopping, beats = receiver(queue, heartbeat=True)
    assert feed.prefetch == 2  # until an invocation ends: one batch per slot
    feed.observe(0.001)  # short handlers: the count bound holds
    assert feed.prefetch == PREFETCH
    feed.start()
    try:
        wait_for(lambda: queue.next == PREFETCH, what="the feeders to fill the prefetch")
        # Nothing more is received while no slot takes a batch.
        assert max(queue.asked) == 10 and queue.next == PREFETCH
        assert len(beats._leases) == PREFETCH  # one lease per batch of one, from receipt
        taken = [feed.take() for _ in range(10)]
        assert [b.messages[0]["MessageId"] for b in taken if b] == [f"m{n}" for n in range(10)]
        wait_for(lambda: queue.next == PREFETCH + 10, what="the feeders to refill")
    finally:
        stop(feed, stopping)
    assert feed.take() is None
    held = feed.drain()
    assert sum(len(b.messages) for b in held) == PREFETCH  # released by the worker on stop


def test_slow_handlers_and_long_running_ones_hold_nothing_ahead() -> None:
    queue = FakeQueue(available=100)
    feed, stopping, _ = receiver(queue, heartbeat=True, batch_size=2)
    feed.observe(0.2)  # 2 slots x 2 messages / 0.2 s: 20 messages start per second
    assert feed.prefetch == 20
    for _ in range(30):
        feed.observe(10.0)
    assert feed.prefetch == 0
    feed.start()
    try:
        batch = feed.take()
        assert batch is not None and queue.asked == [2]  # for the idle slot, nothing more
    finally:
        stop(feed, stopping)
    assert feed.drain() == []
    long, _, _ = receiver(queue, heartbeat=True, long_running=True)
    long.observe(0.001)
    assert long.prefetch == 0


def test_without_heartbeats_nothing_is_received_ahead() -> None:
    queue = FakeQueue(available=100)
    feed, stopping, _ = receiver(queue, heartbeat=False, batch_size=3)
    feed.start()
    try:
        batch = feed.take()  # a slot asks: a receive for one batch, no more
        assert batch is not None and [m["MessageId"] for m in batch.messages] == ["m0", "m1", "m2"]
        assert queue.asked == [3] and batch.leases == []
    finally:
        stop(feed, stopping)
    assert feed.drain() == []


def test_fifo_batches_are_whole_receives() -> None:
    queue = FakeQueue(available=100)
    feed, stopping, _ = receiver(queue, heartbeat=True, batch_size=4, fifo=True, concurrency=1)
    feed.start()
    try:
        batch = feed.take()
        assert batch is not None and len(batch.messages) == 4
        wait_for(lambda: len(queue.asked) >= 2, what="a receive ahead")
        assert set(queue.asked) == {4}
    finally:
        stop(feed, stopping)


class Deletes:
    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.untracked: list[tuple[int, int]] = []  # (lease, groups deleted by then)

    def delete(self, handles: Sequence[str]) -> int:
        self.groups.append(list(handles))
        return len(handles)

    def untrack(self, leases: list[int]) -> None:
        self.untracked += [(lease, len(self.groups)) for lease in leases]


def test_deletes_of_several_invocations_share_one_call() -> None:
    calls = Deletes()
    batcher = DeleteBatcher(calls.delete, calls.untrack, linger=60)
    for n in range(12):
        batcher.add([f"h{n}"], [n])
    batcher.add([f"w{n}" for n in range(14)], [99])  # a batch split across groups
    batcher.start()
    # A full group goes at once, whatever the linger.
    wait_for(lambda: len(calls.groups) >= 2, what="the full groups")
    batcher.close()  # what is left goes now
    assert [len(g) for g in calls.groups] == [10, 10, 6]
    assert [h for g in calls.groups for h in g] == [
        *(f"h{n}" for n in range(12)), *(f"w{n}" for n in range(14))
    ]
    # A lease ends after the call that deleted its last handle, never before.
    assert dict(calls.untracked) == {**{n: 1 for n in range(10)}, 10: 2, 11: 2, 99: 3}


def test_a_failed_delete_still_ends_the_leases() -> None:
    calls = Deletes()

    def failing(handles: Sequence[str]) -> int:
        raise OSError("disk gone")

    batcher = DeleteBatcher(failing, calls.untrack, linger=0)
    batcher.start()
    batcher.add(["h1"], [7])
    batcher.close()
    assert calls.untracked == [(7, 0)]


def test_a_process_that_died_while_idle_is_told_apart_from_a_crash() -> None:
    # operator.eq(event, context) is a handler that returns False and does nothing else.
    spec = FunctionSpec(handler="operator:eq", name="f",
                        arn="arn:aws:lambda:us-east-1:000000000000:function:f", memory=128,
                        region="us-east-1")
    process = HandlerProcess(spec)
    try:
        ran = process.invoke({"Records": []}, 5, "r1")
        assert ran.kind == "result" and ran.started
        process.signal_kill()
        wait_for(lambda: not process.alive, what="the process to die")
        dead = process.invoke({"Records": []}, 5, "r2")
        assert dead.kind == "crash" and not dead.started  # the worker starts another, retries
        assert "SIGKILL" in dead.error
    finally:
        process.kill()
