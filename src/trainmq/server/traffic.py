"""Per-queue message rates over the last minutes, for the console's sparklines.

The endpoint counts the messages each request sent, received or deleted, per
queue, in buckets of ``bucket_seconds``; only the newest ``buckets`` are kept,
so memory stays bounded however long the server runs.  The counts cover
traffic through this server (a worker that opens the database file directly
is not seen here); with ``peers`` (``serve --workers N``), through all of its
processes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ..clock import Clock, SystemClock
from .peers import Peers

__all__ = ["KINDS", "Traffic"]

#: What is counted: messages sent, received and deleted.
KINDS = ("sent", "received", "deleted")


class Traffic:
    """Message counts per queue and kind, in a ring of time buckets."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        bucket_seconds: int = 10,
        buckets: int = 30,
        peers: Peers | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self._lock = threading.Lock()
        # (queue, kind) -> {bucket number: count}
        self._counts: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        self._peers = peers
        if peers is not None:
            for queue, kind, counts in peers.previous() or []:
                self._counts[(queue, kind)] = {int(b): n for b, n in counts.items()}
            peers.start(self.snapshot)

    def _bucket(self) -> int:
        return int(self.clock.now() // self.bucket_seconds)

    def record(self, queue: str, kind: str, count: int) -> None:
        if count <= 0 or kind not in KINDS:
            return
        bucket = self._bucket()
        with self._lock:
            counts = self._counts[(queue, kind)]
            counts[bucket] = counts.get(bucket, 0) + count
            if len(counts) > self.buckets:
                for old in [b for b in counts if b <= bucket - self.buckets]:
                    del counts[old]

    def rates(self, queue: str) -> dict[str, list[float]]:
        """Messages per second of each kind, oldest bucket first (the newest is partial)."""
        newest = self._bucket()
        span = range(newest - self.buckets + 1, newest + 1)
        with self._lock:
            own = {kind: dict(self._counts.get((queue, kind), {})) for kind in KINDS}
        for snapshot in self._peers.others() if self._peers is not None else []:
            for name, kind, counts in snapshot:
                if name == queue and kind in own:
                    for bucket, count in counts.items():
                        own[kind][int(bucket)] = own[kind].get(int(bucket), 0) + count
        return {kind: [own[kind].get(b, 0) / self.bucket_seconds for b in span] for kind in KINDS}

    def snapshot(self) -> list[Any]:
        """The counts as plain JSON data (what peers publish and sum)."""
        with self._lock:
            return [[queue, kind, dict(c)] for (queue, kind), c in self._counts.items()]

    def close(self) -> None:
        if self._peers is not None:
            self._peers.stop()

    def forget(self, queue: str) -> None:
        with self._lock:
            for kind in KINDS:
                self._counts.pop((queue, kind), None)
