"""``trainmq serve --workers N``: N server processes answering on one listening socket.

One process is bound by one core (Python runs one thread at a time), so the
endpoint scales by processes. The parent binds the socket once and starts N
children (spawned, not forked: a fork would copy the parent's threads and open
files); each child builds its own application over the same database file, as
any number of processes may open one, and accepts connections from the
inherited socket. The kernel hands each new connection to whichever child
accepts first, so a busy child takes fewer.

The parent only supervises:

* a child that exits unexpectedly is started again; more than ``MAX_RESTARTS``
  restarts within ``RESTART_WINDOW`` seconds (a child that cannot start) stop
  the whole server with an error;
* SIGTERM or SIGINT (Ctrl-C) to the parent stops every child gracefully (each
  ends its long polls and finishes its requests), then the parent exits 0;
* a parent that dies without stopping them (``kill -9``) takes them along: each
  child asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``),
  as if the whole server had been killed, and no child serves without its parent.

State that lives in a process is shared through ``state_dir`` (a folder the
parent makes and removes): request metrics and traffic counts are published
there by each child and summed when read, and the console's sessions live
there, so a browser signed in through one child is signed in on all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW", "WorkerContext", "bind_socket", "run_workers"]

log = logging.getLogger("trainmq.server")

#: Restarts within RESTART_WINDOW seconds beyond which the server gives up.
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
#: Seconds the parent waits for its children's graceful shutdown before killing them.
STOP_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerContext:
    """What a child knows about its place among the server's processes."""

    index: int  # 0 .. workers-1; a restarted child keeps its index
    workers: int
    state_dir: Path  # shared by the server's processes; removed when the parent exits


#: Builds and serves one child's application on the inherited socket; it returns when the
#: child has stopped. Must be picklable (a module-level function, or a partial of one).
ChildMain = Callable[[socket.socket, WorkerContext], None]


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket every child accepts from (``OSError`` when it cannot be bound)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child(main: ChildMain, sock: socket.socket, context: WorkerContext, parent: int) -> None:
    _die_with_parent(parent)
    # Ctrl-C in a terminal reaches the parent only; the parent stops the children.
    os.setpgid(0, 0)
    main(sock, context)


class _Supervisor:
    def __init__(self, main: ChildMain, sock: socket.socket, workers: int, state: Path) -> None:
        self.main = main
        self.sock = sock
        self.workers = workers
        self.state = state
        self.spawn = multiprocessing.get_context("spawn")
        self.children: dict[int, BaseProcess] = {}
        self.restarts: list[float] = []
        self.stopping = False
        self.failed = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def start(self, index: int) -> None:
        context = WorkerContext(index, self.workers, self.state)
        child = self.spawn.Process(
            target=_child,
            args=(self.main, self.sock, context, os.getpid()),
            name=f"trainmq-serve-{index}",
        )
        child.start()
        self.children[index] = child

    def on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def supervise(self) -> None:
        """Until a signal (or too many restarts): start again each child that exits."""
        while not self.stopping:
            sentinels: list[Any] = [c.sentinel for c in self.children.values()]
            ready = wait([*sentinels, self._wake_read], timeout=1.0)
            if self.stopping:
                return
            for index, child in list(self.children.items()):
                if child.sentinel not in ready:
                    continue
                child.join()
                log.error(
                    "server process %d (pid %s) exited with %s; starting it again",
                    index,
                    child.pid,
                    child.exitcode,
                )
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW]
                self.restarts.append(now)
                if len(self.restarts) > MAX_RESTARTS:
                    log.error(
                        "server processes exited %d times in %.0f s: stopping the server",
                        len(self.restarts),
                        RESTART_WINDOW,
                    )
                    self.failed = True
                    return
                self.start(index)

    def stop(self) -> None:
        """SIGTERM every child (a graceful stop), then SIGKILL what is left after a while."""
        for child in self.children.values():
            if child.is_alive() and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in self.children.values():
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                child.kill()
                child.join()
        os.close(self._wake_read)
        os.close(self._wake_write)


def run_workers(main: ChildMain, sock: socket.socket, workers: int) -> bool:
    """Serve ``sock`` with ``workers`` children running ``main`` until SIGTERM or SIGINT.

    True after a requested stop; False when children kept dying and the server gave up.
    """
    state = Path(tempfile.mkdtemp(prefix="trainmq-serve-"))
    supervisor = _Supervisor(main, sock, workers, state)
    previous = {
        sig: signal.signal(sig, supervisor.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        for index in range(workers):
            supervisor.start(index)
        supervisor.supervise()
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        shutil.rmtree(state, ignore_errors=True)
    return not supervisor.failed
