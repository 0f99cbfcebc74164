"""Which delivery of a ``TrainRequest`` trains its run, and what the others do.

A delivery ends in one of three ways:

* ``Acquired``: it holds the next attempt (its fencing token) and trains;
* ``Attached``: another delivery's attempt is alive, so this one is a duplicate:
  it is acknowledged at once (the registry and the events tell its sender the
  outcome), instead of pinning a worker slot — a GPU — while polling;
* ``Finished``: the run is complete; its result is returned.

Liveness is judged by watching the current attempt's stamp *change*, timed by
this process's own monotonic clock: a stamp unchanged for ``stale_after``
seconds means the attempt is gone (or hung), and the run is taken over.  No
other host's clock is trusted.  A released attempt (it checkpointed and let go:
a continuation, a preemption) is taken over at once.  The redelivery of the very
message an attempt was started for is never a duplicate: that message's holder
lost it, so the redelivery waits for the attempt to go stale and takes over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .runs import RunRegistry

__all__ = ["Acquired", "Attached", "Finished", "StillTraining", "acquire"]

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Acquired:
    attempt: int


@dataclass(frozen=True)
class Attached:
    attempt: int


@dataclass(frozen=True)
class Finished:
    result: dict[str, Any]


class StillTraining(Exception):
    """The invocation is nearly over and the run's live attempt is someone else's."""


@dataclass
class _Watch:
    """The stamp last seen and when (monotonic) it was first seen."""

    attempt: int = 0
    stamp: bytes | None = None
    since: float = 0.0

    def observe(self, attempt: int, stamp: bytes | None, now: float) -> bool:
        """Record what was seen; whether it changed since a previous look at the same attempt."""
        changed = attempt == self.attempt and stamp != self.stamp
        if attempt != self.attempt or stamp != self.stamp:
            self.attempt, self.stamp, self.since = attempt, stamp, now
        return changed


def acquire(
    registry: RunRegistry,
    key: str,
    *,
    worker: str,
    message_id: str | None,
    stale_after: float,
    remaining: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Acquired | Attached | Finished:
    """Decide this delivery's part in the run of ``key`` (see the module docstring)."""
    watch = _Watch()
    extra = {"message_id": message_id} if message_id else {}
    while True:
        done = registry.completion(key)
        if done is not None:
            return Finished(done)
        attempts = registry.attempts(key)
        last = int(attempts[-1]["attempt"]) if attempts else 0
        if not attempts or attempts[-1].get("released"):
            taken = registry.take_after(key, last, time.time(), worker, **extra)
            if taken is not None:
                return Acquired(taken)
            continue  # another delivery took that number first: look again
        now = clock()
        if watch.observe(last, registry.stamp(key, last), now):
            if message_id is None or attempts[-1].get("message_id") != message_id:
                return Attached(last)
        elif watch.attempt == last and now - watch.since >= stale_after:
            taken = registry.take_after(key, last, time.time(), worker, **extra)
            if taken is not None:
                return Acquired(taken)
            continue
        if remaining is not None and remaining() < 15:
            raise StillTraining(f"attempt {last} of the run is still training elsewhere")
        sleep(POLL_SECONDS)
