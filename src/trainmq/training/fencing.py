"""Fencing tokens and liveness stamps: only the current attempt of a run writes.

An attempt's number is its fencing token.  A host that was paused (a long GC,
a swapped-out VM, SIGSTOP) while another delivery took the run over must not
wake up and keep writing checkpoints, outputs or a completion over the new
attempt's.  So every write is preceded by :meth:`Fence.check` (one existence
check of the next attempt's record), the liveness thread notices a takeover on
its own, and checkpoint state files carry the attempt in their names, so a
stale writer can never clobber what the current attempt committed.

Liveness is stamped from a background thread, so an attempt stays alive while
it loads and hashes shards, validates or writes a checkpoint, not only between
optimizer steps.  The stamps are compared for *change* by whoever watches them
(``training.attempts``), never read as another host's wall-clock time.
"""

from __future__ import annotations

import logging
import threading
import time

from ..errors import TrainmqError
from .runs import RunRegistry

__all__ = ["Fence", "Liveness", "Superseded"]

log = logging.getLogger("trainmq.training")


class Superseded(TrainmqError):
    """A later attempt took the run over: this one must stop without writing anything more."""

    def __init__(self, attempt: int) -> None:
        super().__init__(f"attempt {attempt} was superseded by a later attempt; it stops here")
        self.attempt = attempt


class Fence:
    """The fencing token of one attempt: ``check()`` before every write."""

    def __init__(self, registry: RunRegistry, idempotency_key: str, attempt: int) -> None:
        self.registry = registry
        self.key = idempotency_key
        self.attempt = attempt
        self.lost = threading.Event()

    def check(self) -> None:
        """Raise ``Superseded`` if a later attempt exists (asks the store)."""
        if not self.lost.is_set() and self.registry.superseded(self.key, self.attempt):
            self.lost.set()
        self.raise_if_lost()

    def raise_if_lost(self) -> None:
        """Raise ``Superseded`` if a takeover was already seen (no store access: every step)."""
        if self.lost.is_set():
            raise Superseded(self.attempt)


class Liveness:
    """Stamps an attempt alive every ``every`` seconds from its own thread, until stopped
    or superseded (then it marks the fence lost and stops stamping)."""

    def __init__(self, fence: Fence, every: float) -> None:
        self.fence = fence
        self.every = max(0.05, every)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.count = 0

    def _stamp(self) -> bool:
        fence = self.fence
        try:
            if fence.registry.superseded(fence.key, fence.attempt):
                fence.lost.set()
                return False
            self.count += 1
            fence.registry.beat(fence.key, fence.attempt, time.time(), self.count)
        except Exception as exc:  # a store hiccup: the next stamp tries again
            log.warning("could not stamp attempt %d alive: %s", fence.attempt, exc)
        return True

    def _run(self) -> None:
        while self._stamp() and not self._stop.wait(self.every):
            pass

    def start(self) -> Liveness:
        self._thread = threading.Thread(target=self._run, name="trainmq-liveness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
