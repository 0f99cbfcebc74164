"""Receiving for the slots: feeder threads, and the batches they hold until a slot is free.

Feeders long-poll the queue and cut what arrives into batches of at most the
batch size; a slot takes the next batch the moment its handler returns, so a
receive is never on the slot's critical path.  On a standard queue one
ReceiveMessage of up to 10 messages feeds several batches of a smaller batch
size (as Celery's prefetch does); a FIFO batch is always one receive, never
split, so a message group stays in one batch; with a batching window each
batch is gathered as Lambda gathers it.

**Prefetch and its bounds.**  While every slot is busy, feeders receive ahead.
Every message is tracked by the heartbeat from the moment it was received
(held or running), so its visibility timeout is extended and cannot run out
while it waits.  How much is held is bounded twice: by count (``PREFETCH``
messages, or one batch per slot if that is more), and by time: from the
average duration of recent invocations, no more than the slots will start
within ``HOLD_SECONDS``, so a worker with slow handlers does not sit on
messages another worker could run now (with a 10-second handler, nothing is
held ahead).  Until a first invocation ended, one batch per slot is held.
Without heartbeats (``--no-heartbeat``), with a batching window, and for
``--long-running`` handlers, nothing is received ahead: only as much as idle
slots will start at once.  On stop, the worker releases what is held.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..store import BlobNotFound, InvalidPointer, StoreError
from ..store.claimcheck import ClaimCheckClient
from .heartbeat import Heartbeat

__all__ = ["RETRY_PAUSE", "UNAVAILABLE", "UNRESOLVED", "Batch", "Receiver", "untrack"]

log = logging.getLogger("trainmq.worker")

#: Marks a received message whose claim-check payload could not be fetched.
UNRESOLVED = "trainmq.unresolved"
UNAVAILABLE = "trainmq.unavailable"
RETRY_PAUSE = 1.0
#: Messages one ReceiveMessage can return (SQS's limit).
RECEIVE_MAX = 10
#: Messages held ahead of the slots at most (standard queues, heartbeats on), unless
#: one batch per slot is more.
PREFETCH = 20
#: Held messages should start within about this many seconds (see the module's text).
HOLD_SECONDS = 1.0
#: Weight of the latest invocation in the average duration.
_SMOOTHING = 0.2


def untrack(heartbeat: Heartbeat | None, leases: list[int]) -> None:
    """Stop extending the visibility of ``leases`` (settled or released) and forget them."""
    if heartbeat is not None:
        for lease in leases:
            heartbeat.untrack(lease)
    leases.clear()


@dataclass
class Batch:
    """Messages for one invocation, and the heartbeat leases that keep them hidden."""

    messages: list[dict[str, Any]]
    leases: list[int] = field(default_factory=list)


class Receiver:
    """Feeder threads filling a bounded buffer of batches; slots ``take()`` from it."""

    def __init__(
        self,
        client: ClaimCheckClient,
        queue_url: str,
        *,
        batch_size: int,
        batching_window: float,
        concurrency: int,
        fifo: bool,
        wait_seconds: int,
        heartbeat: Heartbeat | None,
        clock: Clock,
        stopping: threading.Event,
        queue_name: str = "",
        long_running: bool = False,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.window = batching_window
        self.fifo = fifo
        self.wait_seconds = wait_seconds
        self.heartbeat = heartbeat
        self.clock = clock
        self.stopping = stopping
        self.queue_name = queue_name
        whole = fifo or batching_window > 0
        #: Messages one fetch asks for: a whole batch, or one full receive cut into batches.
        self.unit = batch_size if whole else batch_size * (RECEIVE_MAX // batch_size)
        self.concurrency = concurrency
        if heartbeat is None or batching_window > 0 or long_running:
            self.most = 0
        else:
            self.most = max(concurrency * batch_size, self.unit if fifo else PREFETCH)
        #: Messages that may be held ahead now (``observe`` adjusts it).
        self.prefetch = min(self.most, concurrency * batch_size)
        self._duration: float | None = None
        self.feeders = concurrency if whole else max(
            1, min(concurrency, -(-concurrency * batch_size // RECEIVE_MAX))
        )
        lock = threading.Lock()
        self._batches = threading.Condition(lock)  # slots wait here for a batch
        self._room = threading.Condition(lock)  # feeders wait here for room
        self._ready: deque[Batch] = deque()
        self._held = 0  # messages in ready batches plus those feeders are receiving
        self._idle = 0  # slots waiting in take()
        self._threads: list[threading.Thread] = []

    # -- the slots' side -----------------------------------------------------------------------
    def take(self) -> Batch | None:
        """The next batch, waiting for one; None once the worker stops."""
        with self._batches:
            self._idle += 1
            try:
                if not self._ready:
                    self._room.notify()
                while not self._ready:
                    if self.stopping.is_set():
                        return None
                    self._batches.wait()
                if self.stopping.is_set():
                    return None
                batch = self._ready.popleft()
                self._held -= len(batch.messages)
                self._room.notify()
                return batch
            finally:
                self._idle -= 1

    def observe(self, seconds: float) -> None:
        """An invocation took ``seconds``: hold no more than the slots start in HOLD_SECONDS."""
        with self._room:
            average = self._duration
            average = seconds if average is None else average + _SMOOTHING * (seconds - average)
            self._duration = average
            rate = self.concurrency * self.batch_size / max(average, 1e-6)  # messages started/s
            previous = self.prefetch
            self.prefetch = min(self.most, int(rate * HOLD_SECONDS))
            if self.prefetch > previous:
                self._room.notify()

    def wake(self) -> None:
        """Let waiting slots and feeders see that the worker stops."""
        with self._batches:
            self._batches.notify_all()
            self._room.notify_all()

    def drain(self) -> list[Batch]:
        """The batches still held (after the feeders stopped): the worker releases them."""
        with self._batches:
            batches = list(self._ready)
            self._ready.clear()
            self._held = 0
            return batches

    # -- the feeders ---------------------------------------------------------------------------
    def start(self) -> None:
        for number in range(self.feeders):
            thread = threading.Thread(
                target=self._feed, name=f"trainmq-feeder-{number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the feeders to end; True when they all did."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _reserve(self) -> int:
        """Block until there is room for a receive; how many messages to ask for (0: stop)."""
        with self._room:
            while not self.stopping.is_set():
                demand = self._idle * self.batch_size
                room = max(self.prefetch, demand) - self._held
                if room >= self.unit or (demand > self._held and room > 0):
                    want = min(self.unit, room)
                    self._held += want
                    return want
                self._room.wait()
            return 0

    def _put(self, batches: list[Batch], reserved: int) -> None:
        with self._batches:
            self._held += sum(len(b.messages) for b in batches) - reserved
            self._ready.extend(batches)
            for _ in batches:
                self._batches.notify()
            if len(batches) * self.batch_size < reserved:
                self._room.notify()  # room is left: another feeder may receive

    def _feed(self) -> None:
        while True:
            want = self._reserve()
            if not want:
                return
            batches: list[Batch] = []
            try:
                batches = self._fetch(want)
            except Exception as exc:  # a backend hiccup must not end the worker
                log.error("receive failed: %s", exc, extra={"queue": self.queue_name})
                self.clock.wait(self.stopping, RETRY_PAUSE)
            finally:
                self._put(batches, want)

    def _fetch(self, want: int) -> list[Batch]:
        if self.window > 0:
            batch = Batch([])
            try:
                batch.messages = self._collect(batch.leases)
            except BaseException:
                untrack(self.heartbeat, batch.leases)
                raise
            return [batch] if batch.messages else []
        received_at = self.clock.now()
        messages = self._receive(want, self.wait_seconds)
        size = self.batch_size
        batches = [Batch(messages[i : i + size]) for i in range(0, len(messages), size)]
        if self.heartbeat is not None:
            for batch in batches:
                handles = [m["ReceiptHandle"] for m in batch.messages]
                batch.leases.append(self.heartbeat.track(handles, received_at))
        return batches

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.client.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = list(response.get("Messages", []))
        for message in messages:
            try:
                self.client.resolve(message)
            except (BlobNotFound, InvalidPointer) as exc:  # the payload can never be had
                message[UNRESOLVED] = f"the message's claim-check payload cannot be read: {exc}"
            except StoreError as exc:  # the store is unreachable now: retry later
                log.warning("claim-check payload of %s unavailable: %s", message["MessageId"], exc)
                message[UNAVAILABLE] = True
        return messages

    def _received(self, count: int, wait: int, leases: list[int]) -> list[dict[str, Any]]:
        """Receive, and heartbeat what arrived from the moment it arrived (so messages
        held while a batching window fills stay hidden, and the 12-hour cap counts
        from a time no later than the real receipt)."""
        received_at = self.clock.now()
        messages = self._receive(count, wait)
        if messages and self.heartbeat is not None:
            leases.append(
                self.heartbeat.track([m["ReceiptHandle"] for m in messages], received_at)
            )
        return messages

    def _collect(self, leases: list[int]) -> list[dict[str, Any]]:
        """One batch of a batching window: a long poll, then more until full or closed."""
        size = self.batch_size
        batch = self._received(min(RECEIVE_MAX, size), self.wait_seconds, leases)
        if not batch:
            return batch
        deadline = self.clock.now() + self.window
        while len(batch) < size and not self.stopping.is_set():
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                break
            more = self._received(
                min(RECEIVE_MAX, size - len(batch)), min(20, int(remaining)), leases
            )
            if not more and remaining < 1:
                self.clock.wait(self.stopping, min(remaining, 0.05))
            batch += more
        return batch

