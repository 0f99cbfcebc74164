"""Deleting successes in groups: one DeleteMessageBatch, one fsync, for several invocations.

Slots hand the receipt handles of what succeeded to a ``DeleteBatcher`` and
go on to their next batch at once.  Its thread deletes them in groups of up
to 10 (SQS's limit): the first waiting handle waits at most ``linger``
seconds for others (with batches of one, the successes of several
invocations share one commit and its fsync); a full group goes at once.
While a group's delete runs, the next one gathers.

**The window.**  A success is deleted up to ``linger`` plus one delete call
after its handler returned.  If the worker dies in between, those messages are
not lost: they become visible again after their visibility timeout and are
handled again, which is the at-least-once delivery SQS and Lambda promise
anyway.  The heartbeat keeps a batch's messages hidden until their delete is
done, and a stopping worker deletes everything pending before it exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

__all__ = ["DELETE_LINGER", "DeleteBatcher"]

log = logging.getLogger("trainmq.worker")

#: Seconds the first handle of a group waits for more (standard queues).
DELETE_LINGER = 0.003
GROUP = 10


class DeleteBatcher:
    """``add(handles, leases)`` from any thread; ``close()`` deletes what is pending."""

    def __init__(
        self,
        delete: Callable[[Sequence[str]], object],
        untrack: Callable[[list[int]], None],
        *,
        linger: float = DELETE_LINGER,
    ) -> None:
        self._delete = delete
        self._untrack = untrack
        self.linger = linger
        self._cond = threading.Condition()
        self._pending: deque[tuple[list[str], list[int]]] = deque()
        self._count = 0
        self._first_at = 0.0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="trainmq-deletes", daemon=True)
        #: Delete calls made (for the benchmark's budget).
        self.calls = 0

    def start(self) -> None:
        self._thread.start()

    def add(self, handles: Sequence[str], leases: Sequence[int] = ()) -> None:
        """Delete ``handles`` soon; then stop the heartbeat ``leases`` that cover them."""
        if not handles and not leases:
            return
        with self._cond:
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.append((list(handles), list(leases)))
            self._count += len(handles)
            self._cond.notify()

    def close(self) -> None:
        """Delete everything pending, then end the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()
        while (group := self._take()) is not None:  # never started
            self._flush(*group)

    def _take(self) -> tuple[list[str], list[int]] | None:
        """Up to ``GROUP`` handles from the front, and the leases whose handles all go."""
        if not self._pending:
            return None
        handles: list[str] = []
        leases: list[int] = []
        while self._pending and len(handles) < GROUP:
            entry_handles, entry_leases = self._pending[0]
            room = GROUP - len(handles)
            handles += entry_handles[:room]
            if len(entry_handles) > room:
                del entry_handles[:room]
                break
            leases += entry_leases
            self._pending.popleft()
        self._count -= len(handles)
        self._first_at = time.monotonic()
        return handles, leases

    def _next(self) -> tuple[list[str], list[int]] | None:
        with self._cond:
            while not self._pending:
                if self._closing:
                    return None
                self._cond.wait()
            while self._count < GROUP and not self._closing:
                left = self._first_at + self.linger - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._take()

    def _run(self) -> None:
        while (group := self._next()) is not None:
            self._flush(*group)

    def _flush(self, handles: list[str], leases: list[int]) -> None:
        try:
            if handles:
                self.calls += 1
                self._delete(handles)
        except Exception as exc:  # they come back after their visibility timeout
            log.error("deleting %d handled messages failed: %s", len(handles), exc)
        finally:
            self._untrack(leases)
