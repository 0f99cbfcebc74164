"""Visibility heartbeats: a running handler's messages stay invisible while it lives.

Every third of the queue's visibility timeout, the heartbeat thread resets the
visibility of every in-flight message to the full timeout
(ChangeMessageVisibilityBatch).  A handler that runs for hours is therefore
never redelivered while it is alive, and when the worker dies the beats stop,
so its messages come back at most one visibility timeout later.  SQS caps a
message's invisibility at 12 hours from its receipt; the extensions stop there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..clock import Clock

__all__ = ["MAX_VISIBLE_SPAN", "Heartbeat"]

log = logging.getLogger("trainmq.worker")

MAX_VISIBLE_SPAN = 43_200
MIN_INTERVAL = 0.2


@dataclass(frozen=True)
class _Lease:
    handles: tuple[str, ...]
    received_at: float


class Heartbeat:
    """Extends the visibility of tracked messages on its own thread."""

    def __init__(self, client: Any, queue_url: str, visibility: int, clock: Clock) -> None:
        self.client = client
        self.queue_url = queue_url
        self.visibility = visibility
        self.clock = clock
        self.interval = max(MIN_INTERVAL, visibility / 3)
        self._leases: dict[int, _Lease] = {}
        self._lock = threading.Lock()
        self._next_key = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def track(self, handles: Sequence[str], received_at: float) -> int:
        """Start extending these messages; returns the key to ``untrack`` them with."""
        with self._lock:
            self._next_key += 1
            self._leases[self._next_key] = _Lease(tuple(handles), received_at)
            return self._next_key

    def untrack(self, key: int) -> None:
        with self._lock:
            self._leases.pop(key, None)

    def beat(self) -> int:
        """Extend every tracked message once; returns how many extensions were asked for."""
        now = self.clock.now()
        with self._lock:
            leases = list(self._leases.values())
        changes: list[tuple[str, int]] = []
        for lease in leases:
            left = int(lease.received_at + MAX_VISIBLE_SPAN - now)
            timeout = min(self.visibility, left)
            if timeout > 0:
                changes.extend((handle, timeout) for handle in lease.handles)
        for start in range(0, len(changes), 10):
            self._extend(changes[start : start + 10])
        self.beats += 1
        return len(changes)

    def _extend(self, changes: list[tuple[str, int]]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": timeout}
            for i, (handle, timeout) in enumerate(changes)
        ]
        try:
            result = self.client.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=entries
            )
        except Exception as exc:  # the next beat tries again; a failed beat must not stop them
            log.warning("heartbeat failed: %s", exc, extra={"queue_url": self.queue_url})
            return
        for failure in result.get("Failed", []):
            log.debug("heartbeat not applied: %s", failure.get("Message"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="trainmq-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.clock.wait(self._stop, self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
