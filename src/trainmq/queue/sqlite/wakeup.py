"""Waking long polls when the database changes, without polling it.

A long poll waits for one of four things: a commit by this process, a commit by
another process, a delayed or in-flight message coming due, or its deadline.
The first is a call from the group committer; the last two are timers.  A
commit by another process leaves no trace in this one except in the file
system, so on Linux an inotify watch on the database's *directory* reports
every write to the ``-wal`` file (``IN_MODIFY``), and its creation or
replacement (``IN_CREATE``, ``IN_MOVED_TO``): a commit in WAL mode always
writes the ``-wal`` file, and watching the directory rather than the file
survives the file being deleted (when the last connection closes) and created
again.  One thread per open database blocks in ``poll()`` on the inotify
descriptor while something waits, so an idle waiter costs no CPU at all.

An inotify watch holds no descriptor of the database or its ``-wal`` file: it
names the directory by path and the kernel reports names.  Closing the inotify
descriptor therefore cannot drop SQLite's POSIX locks (closing *any* descriptor
of a locked file drops every lock the process holds on it: see ``files``); the
database file is only ever opened by SQLite.

Where inotify is missing (macOS, BSD, a full ``max_user_instances``), the
watcher falls back to reading ``PRAGMA data_version`` every
``FALLBACK_INTERVAL`` seconds while something waits: a cross-process send is
then noticed up to 25 ms late, for about 40 cheap queries a second.

A wake-up is a hint, never a promise: a waiter re-checks its queue (by
claiming, under SQLite's write lock) after every one.  So the watcher may wake
waiters for writes that delivered nothing (another consumer's claim, this
process's own commit echoed by inotify) but must never sleep through a commit.
A write to the ``-wal`` file happens under the writer's lock, so a claim that
starts after the event waits for that writer's commit and sees it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ...clock import Clock, SystemClock

__all__ = [
    "COMMIT_WAIT",
    "FALLBACK_INTERVAL",
    "AsyncChanges",
    "Changes",
    "DirectoryWatch",
    "open_watch",
]

log = logging.getLogger("trainmq.queue")

#: How often a waiting process reads ``PRAGMA data_version`` where inotify is missing.
FALLBACK_INTERVAL = 0.025
#: How long after a write to the ``-wal`` file the watcher waits for its commit.
COMMIT_WAIT = 0.01
_COMMIT_POLL = 0.0001

_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_READ_SIZE = 64 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018  (both must exist)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class DirectoryWatch:
    """An inotify watch on a database's directory, for events naming its ``-wal`` file."""

    def __init__(self, database: Path) -> None:
        if _LIBC is None:
            raise OSError(errno.ENOSYS, "inotify is not available on this platform")
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        directory = str(database.parent.resolve()).encode()
        mask = _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO
        if _LIBC.inotify_add_watch(fd, directory, mask) < 0:
            error = ctypes.get_errno()
            os.close(fd)
            raise OSError(error, f"inotify_add_watch failed on {database.parent}")
        self._fd = int(fd)
        self._names = frozenset({(database.name + "-wal").encode()})
        #: The watch was removed by the kernel (the directory went away): nothing more comes.
        self.lost = False

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> bool:
        """Read every pending event without blocking; True if one may mean a commit."""
        relevant = False
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return relevant
            except OSError:
                return True  # closed under us: let the waiters look
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                if mask & _IN_IGNORED:
                    self.lost = True
                if mask & (_IN_Q_OVERFLOW | _IN_IGNORED) or name in self._names:
                    relevant = True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_watch(database: Path) -> DirectoryWatch | None:
    """A watch on ``database``'s commits, or None where inotify cannot be used here."""
    try:
        return DirectoryWatch(database)
    except OSError as exc:
        log.info("no inotify for %s (%s): long polls read data_version instead", database, exc)
        return None


class Changes:
    """Who in this process waits on one database, and the one thread that wakes them.

    ``changed`` is replaced and set at every change a waiter may care about;
    a waiter takes it *before* looking at its queue and waits on it after, so a
    change in between is never missed.  ``waiting`` counts waiters: while it is
    zero, commits cost nothing extra and the watcher thread sleeps.  Listeners
    (``subscribe``) are called on each change, from whichever thread saw it.
    """

    def __init__(
        self,
        database: Path,
        data_version: Callable[[], int | None],
        *,
        use_inotify: bool = True,
        fallback_interval: float = FALLBACK_INTERVAL,
        commit_wait: float = COMMIT_WAIT,
    ) -> None:
        self._database = database
        self._commit_wait = commit_wait
        self._data_version = data_version
        self._use_inotify = use_inotify
        self._fallback_interval = fallback_interval
        self.changed = threading.Event()
        self.waiting = 0
        self._lock = threading.Condition()
        self._listeners: tuple[Callable[[], None], ...] = ()
        self._thread: threading.Thread | None = None
        self._watch: DirectoryWatch | None = None
        self._wake_r, self._wake_w = -1, -1
        self._seen: int | None = None
        self._closed = False
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncChanges]
        self._async = weakref.WeakKeyDictionary()

    @property
    def mode(self) -> str:
        """How other processes' commits are noticed: "inotify", "data_version" or "" (not yet)."""
        if self._thread is None:
            return ""
        watching = self._watch is not None and not self._watch.lost
        return "inotify" if watching else "data_version"

    # -- waiters ------------------------------------------------------------------------------
    @contextmanager
    def waiting_for_change(self) -> Iterator[None]:
        """Count the caller as a waiter (and start the watcher) for the block's duration."""
        self._begin_wait()
        try:
            yield
        finally:
            self._end_wait()

    def _begin_wait(self) -> None:
        with self._lock:
            self.waiting += 1
            if self._thread is None and not self._closed:
                self._start_watcher()
            self._lock.notify_all()
        if self._refresh():  # writes nobody was told of yet: tell the other waiters
            self.wake_all()

    def _end_wait(self) -> None:
        with self._lock:
            self.waiting -= 1

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` at every change until ``unsubscribe``; it counts as a waiter."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
        self._begin_wait()

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)
        self._end_wait()

    def async_changes(self, loop: asyncio.AbstractEventLoop) -> AsyncChanges:
        """This database's changes as seen by coroutines on ``loop``."""
        with self._lock:
            found = self._async.get(loop)
            if found is None:
                found = self._async[loop] = AsyncChanges(self)
            return found

    # -- signals ------------------------------------------------------------------------------
    def notify(self) -> None:
        """A commit of this process: wake every waiter (they re-check their queue).

        Called by the committer after each commit, so it stays cheap: it drains the
        commit's inotify echo but leaves ``data_version`` unread, marking the
        watcher's reference unknown (the next event then wakes waiters at once)."""
        if self.waiting:
            watch = self._watch
            if watch is not None:
                watch.drain()  # safe: see _refresh
                self._seen = None
            self.wake_all()

    def wake_all(self) -> None:
        changed, self.changed = self.changed, threading.Event()
        changed.set()
        for listener in self._listeners:
            listener()

    def _refresh(self) -> bool:
        """Take the pending inotify events (True if any), then the ``data_version``
        the watcher compares with to tell when the next write is committed.

        Only call it right before waking every waiter: the events taken are writes
        that the waiters' next claims see (a writer holds SQLite's write lock while
        it writes the ``-wal`` file, so a claim after the write waits for its commit).
        Draining first keeps the version from counting a commit whose event is
        still unread, which would make the watcher wait for it in vain."""
        watch = self._watch
        if watch is None:
            return False
        drained = watch.drain()
        self._seen = self._data_version()
        return drained

    # -- the watcher thread ------------------------------------------------------------------
    def _start_watcher(self) -> None:
        if self._use_inotify:
            self._watch = open_watch(self._database)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(
            target=self._watch_loop, name="trainmq-db-watch", daemon=True
        )
        self._thread.start()

    def _watch_loop(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        watch = self._watch
        if watch is not None:
            poller.register(watch.fileno(), select.POLLIN)
        timeout_ms = None if watch is not None else int(self._fallback_interval * 1000)
        version = self._data_version()
        while True:
            with self._lock:
                while not self.waiting and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
            ready = poller.poll(timeout_ms)
            if self._closed:
                return
            if watch is not None:
                if ready and watch.drain():
                    if self._commit_wait > 0:
                        self._until_committed(self._seen)
                    if self.waiting:
                        self._refresh()
                        self.wake_all()
                if watch.lost:  # the directory was replaced: keep going by polling
                    poller.unregister(watch.fileno())
                    watch, timeout_ms = None, int(self._fallback_interval * 1000)
            else:
                current = self._data_version()
                if current != version:
                    version = current
                    self.notify()
            _drain_pipe(self._wake_r)

    def _until_committed(self, seen: int | None) -> None:
        """After a write to the ``-wal`` file, wait (``commit_wait`` at most) until
        ``data_version`` moves past ``seen``: the writer has committed.  Inotify reports
        the write before the writer's fsync; a claim started then meets the writer's
        lock and sleeps in SQLite's busy handler (1, 2, then 5 ms), later than this.
        Where writers queue on ``writer_lock`` (``commit_wait`` 0), the claim waits
        for the writer there and is woken the moment it commits: no wait is needed."""
        deadline = time.monotonic() + self._commit_wait
        while True:
            version = self._data_version()
            if version != seen or time.monotonic() >= deadline or self._closed:
                return
            time.sleep(_COMMIT_POLL)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        if thread is None:
            return
        os.write(self._wake_w, b"x")
        thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self._watch is not None:
            self._watch.close()


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


class AsyncChanges:
    """One database's changes for coroutines on one event loop: waiting holds no thread.

    A long poll takes ``generation`` before it looks at its queue, then awaits
    ``wait(generation, timeout)``, which returns at once if anything changed
    in between.  Changes reach the loop through ``call_soon_threadsafe`` from
    the committer (this process's commits) or the watcher thread (others').
    """

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self.generation = 0
        self.watching = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._futures: set[asyncio.Future[None]] = set()

    @contextmanager
    def watching_changes(self) -> Iterator[None]:
        """Listen for changes for the block's duration (enter before the first look)."""
        if not self.watching:
            self._loop = asyncio.get_running_loop()
            self._changes.subscribe(self._changed_elsewhere)
        self.watching += 1
        try:
            yield
        finally:
            self.watching -= 1
            if not self.watching:
                self._changes.unsubscribe(self._changed_elsewhere)

    def _changed_elsewhere(self) -> None:
        """Called from the committer's or the watcher's thread: never raise into a commit."""
        loop = self._loop
        if loop is not None:
            # A loop closed with polls still counted raises: nobody is left to wake there.
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(self._changed)

    def _changed(self) -> None:
        self.generation += 1
        for future in self._futures:
            if not future.done():
                future.set_result(None)
        self._futures.clear()

    async def wait(self, generation: int, timeout: float, clock: Clock) -> None:
        """Until a change after ``generation`` or ``timeout`` seconds of ``clock``.

        On a clock other than the system's (a test's fake clock) the timeout is
        ``clock.wait``'s: a fake clock moves forward by it at once.
        """
        if generation != self.generation or timeout <= 0:
            return
        if not isinstance(clock, SystemClock):
            clock.wait(threading.Event(), timeout)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._futures.add(future)
        timer = loop.call_later(timeout, _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            self._futures.discard(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
