"""Long polls that wait on the event loop instead of holding a thread each.

A ReceiveMessage that may wait is a loop of short tries: validate and claim
once on the executor; if nothing came, await the database's next change (a
commit by this process or another, see ``queue.sqlite.wakeup``), the moment
the queue's next delayed or in-flight message comes due, or the deadline,
whichever is first; then claim again.  Between tries a waiting poll is a
future on the loop, so a thousand of them cost memory, not threads.  The
deadline and due times are read from the engine's clock, so a test's fake
clock drives a served long poll as it drives the engine's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from ..clock import Clock
from ..queue.messaging import PreparedReceive
from ..queue.service import SQSService

__all__ = ["ChangeSignal", "LoopWaitable", "wait_on_loop"]

Response = dict[str, Any]


class ChangeSignal(Protocol):
    """A database's changes on one loop (``queue.sqlite.wakeup.AsyncChanges``)."""

    @property
    def generation(self) -> int: ...

    def watching_changes(self) -> AbstractContextManager[None]: ...

    async def wait(self, generation: int, timeout: float, clock: Clock) -> None: ...


class LoopWaitable(Protocol):
    """What a backend offers for waiting on the loop (the embedded engine does)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def released(self) -> bool: ...

    def next_due(self, name: str) -> float | None: ...

    def async_changes(self, loop: asyncio.AbstractEventLoop) -> ChangeSignal: ...


async def wait_on_loop(
    service: SQSService, params: Mapping[str, Any], executor: Executor
) -> Response:
    """ReceiveMessage over a ``LoopWaitable`` backend, with SQS's long-poll semantics:
    it answers as soon as it holds a message, or empty at WaitTimeSeconds (the
    queue's ReceiveMessageWaitTimeSeconds when the request names none) or when the
    backend releases its waiters at shutdown."""
    loop = asyncio.get_running_loop()
    backend = cast(LoopWaitable, service.backend)
    clock = backend.clock
    started = clock.now()
    prepared, answer = await loop.run_in_executor(executor, _prepare, service, params)
    if answer is not None:  # no wait after all (the queue's default is 0)
        return answer
    deadline = started + prepared.request.wait_seconds
    changes = backend.async_changes(loop)
    with changes.watching_changes():
        while True:
            generation = changes.generation
            result, due = await loop.run_in_executor(executor, _try, service, backend, prepared)
            now = clock.now()
            if result or now >= deadline or backend.released:
                return result
            wake_at = deadline if due is None else min(deadline, due)
            await changes.wait(generation, wake_at - now, clock)
            if backend.released:
                return {}


def _prepare(
    service: SQSService, params: Mapping[str, Any]
) -> tuple[PreparedReceive, Response | None]:
    """The validated request and, if it turns out not to wait, its answer."""
    prepared = service.prepare_receive(params)
    if prepared.request.wait_seconds > 0:
        return prepared, None
    return prepared, service.receive_prepared(prepared)


def _try(
    service: SQSService, backend: LoopWaitable, prepared: PreparedReceive
) -> tuple[Response, float | None]:
    """One claim, and if it found nothing, when the queue's next message comes due."""
    result = service.receive_prepared(prepared, wait=False)
    return result, (None if result else backend.next_due(prepared.queue))
