"""Progress of long handlers: how a worker tells a hung handler from a slow one, and
how it asks a handler to stop early (preemption).

Visibility heartbeats keep a message hidden as long as its handler *lives*;
a handler that hangs (a deadlock, a wedged device, a stopped process) would
hold its message until the function timeout — for training, up to 12 hours.
So a handler may opt in to progress reporting: it calls
:class:`ProgressReporter` whenever it gets something done, which touches a
file the worker named for its process (``$TRAINMQ_PROGRESS_DIR/<pid>``).
With ``WorkerConfig.progress_timeout`` set, a handler that has reported once
and then not for that many seconds (by the worker's monotonic clock) is
treated as hung: the worker stops extending its messages' visibility and
kills its process, so the batch is retried like any failed one.

Handlers that report progress also accept SIGTERM as a *preemption notice*
(:class:`Preemption`): a stopping worker forwards SIGTERM to them and waits
``preempt_grace`` seconds for them to checkpoint and return.  Handlers that
never report are never watched and never signalled: they finish as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

__all__ = [
    "PROGRESS_DIR_ENV",
    "Preemption",
    "ProgressGuard",
    "ProgressReporter",
    "ProgressWatch",
]

log = logging.getLogger("trainmq.worker")

#: The folder a worker's handler processes report their progress in.
PROGRESS_DIR_ENV = "TRAINMQ_PROGRESS_DIR"


def progress_file(directory: str | os.PathLike[str], pid: int) -> Path:
    return Path(directory) / f"{pid}.progress"


class ProgressReporter:
    """Handler side: ``reporter()`` says "progress"; cheap to call at every step."""

    def __init__(self, every: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        directory = os.environ.get(PROGRESS_DIR_ENV)
        self.path = progress_file(directory, os.getpid()) if directory else None
        self.every = every
        self.clock = clock
        self._last = float("-inf")
        self.count = 0

    def __call__(self) -> None:
        now = self.clock()
        if self.path is None or now - self._last < self.every:
            return
        self._last = now
        self.count += 1
        with contextlib.suppress(OSError):  # a report is advisory: never fail the handler
            self.path.write_bytes(str(self.count).encode())


class Preemption:
    """Handler side: while entered (in the main thread), SIGTERM sets ``requested``
    instead of ending the process."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Callable[[int, FrameType | None], object] | int | None = None
        self._installed = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested.set()

    def __call__(self) -> bool:
        return self.requested.is_set()

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)
            self._installed = False


class ProgressWatch:
    """Worker side: whether a handler process stopped making progress."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        stall_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.stall_after = stall_after
        self.clock = clock
        self._seen: dict[int, tuple[bytes, float]] = {}

    def forget(self, pid: int) -> None:
        """A new invocation (or a new process): watch it from scratch."""
        self._seen.pop(pid, None)
        with contextlib.suppress(OSError):
            progress_file(self.directory, pid).unlink()

    def reporting(self, pid: int) -> bool:
        """Whether the handler in ``pid`` reports progress (so it is watched and preemptible)."""
        return progress_file(self.directory, pid).exists()

    def stalled(self, pid: int) -> bool:
        """True once a reporting handler's file went unchanged for ``stall_after`` seconds."""
        try:
            content = progress_file(self.directory, pid).read_bytes()
        except OSError:
            return False  # never reported: not watched
        now = self.clock()
        seen = self._seen.get(pid)
        if seen is None or seen[0] != content:
            self._seen[pid] = (content, now)
            return False
        return now - seen[1] >= self.stall_after


class ProgressGuard:
    """Worker side, all of it: watches the running invocations of progress-reporting
    handlers from its own thread, kills the stalled ones (after ``on_stall`` stops their
    heartbeats), and forwards a stopping worker's preemption notice to them."""

    def __init__(self, stall_after: float, on_stall: Callable[[list[int]], None]) -> None:
        self.watch = ProgressWatch(tempfile.mkdtemp(prefix="trainmq-progress-"), stall_after)
        self.on_stall = on_stall
        self._active: dict[int, tuple[Any, list[int]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def environment(self) -> tuple[str, str]:
        return (PROGRESS_DIR_ENV, str(self.watch.directory))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="trainmq-progress", daemon=True)
        self._thread.start()

    def begin(self, slot: int, process: Any, leases: list[int]) -> None:
        """``process`` (a ``HandlerProcess``) starts an invocation holding ``leases``."""
        self.watch.forget(process.pid)
        self._active[slot] = (process, leases)

    def end(self, slot: int) -> None:
        self._active.pop(slot, None)

    def _run(self) -> None:
        interval = min(1.0, self.watch.stall_after / 4)
        while not self._stop.wait(interval):
            for slot, (process, leases) in list(self._active.items()):
                if not self.watch.stalled(process.pid):
                    continue
                log.warning(
                    "handler process %d made no progress for %.0f s: killing it; its batch "
                    "will be retried",
                    process.pid,
                    self.watch.stall_after,
                )
                self.on_stall(leases)
                process.signal_kill()
                self._active.pop(slot, None)

    def preempt(self) -> bool:
        """SIGTERM every running handler that reports progress; whether there was any."""
        asked = False
        for process, _ in list(self._active.values()):
            if self.watch.reporting(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    process.process.send_signal(signal.SIGTERM)
                asked = True
        return asked

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self.watch.directory, ignore_errors=True)
