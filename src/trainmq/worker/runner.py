"""``run(config)``: a worker in the foreground until SIGTERM or SIGINT.

The first signal stops gracefully (no new batches, running ones finish within
the function timeout, unstarted messages are released at once) and ``run``
returns normally; a second signal kills the handler processes and raises
``WorkerAborted``, whose messages come back after their visibility timeout.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from ..clock import Clock
from .config import WorkerConfig
from .mapping import Worker

__all__ = ["WorkerAborted", "run"]


class WorkerAborted(BaseException):
    """A second stop signal: the worker abandoned its running batches.

    A ``BaseException`` so that no ``except Exception`` on the way out swallows it.
    """


def run(
    config: WorkerConfig,
    *,
    clock: Clock | None = None,
    stop_event: threading.Event | None = None,
    install_signal_handlers: bool = True,
) -> None:
    """Run a worker until ``stop_event`` is set or a stop signal arrives."""
    stop = stop_event or threading.Event()
    worker = Worker(config, clock=clock, stop_event=stop)
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {}
    main_thread = threading.current_thread() is threading.main_thread()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            worker.abort()
            raise WorkerAborted(signal.Signals(signum).name)
        stop.set()

    if install_signal_handlers and main_thread:
        previous = {s: signal.signal(s, on_signal) for s in signals}
    try:
        worker.start()
        while not stop.wait(0.2):
            pass
        worker.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
