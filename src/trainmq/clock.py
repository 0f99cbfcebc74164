"""Clocks: every time-dependent component takes one, so tests never sleep.

``SystemClock`` reads wall time and waits on real events.  ``FakeClock`` only
moves when a test calls :meth:`FakeClock.advance`, or when a component waits on
it: a wait on a fake clock that is not woken by its event returns at once and
moves the fake time forward by the whole timeout, which makes long polling and
retry loops run instantly and deterministically under test.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in seconds since the epoch, and a way to wait on it."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds have passed.

        Returns True when the event was set.
        """
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(0.0, timeout))


class FakeClock:
    """A clock that moves only when told to (or when something waits on it)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds``; returns the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        self.advance(max(0.0, timeout))
        return event.is_set()
