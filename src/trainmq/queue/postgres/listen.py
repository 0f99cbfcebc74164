"""Waking long polls across hosts: ``LISTEN`` on the schema's channel.

Every transaction that makes a message visible (a send, a visibility change to
zero) calls ``pg_notify`` with the queue's name; PostgreSQL delivers it to every
listening connection when, and only if, that transaction commits.  One
listener connection per process forwards those to the waiting long polls.  The
listener is a hint, never the only path: long polls also re-check on a bounded
fallback interval, so a lost connection or notification delays a receive by at
most that interval and never loses a message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

__all__ = ["Listener"]

_IDLE_WAIT = 0.2  # how often the listener thread looks at its stop flag
_RECONNECT_PAUSE = 1.0


class Listener:
    """A thread holding one ``LISTEN`` connection; calls ``on_notify(queue_name)``."""

    def __init__(self, conninfo: str, channel: str, on_notify: Callable[[str], None]) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_notify = on_notify
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainmq-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=_IDLE_WAIT):
                            self._on_notify(note.payload)
            except psycopg.Error:
                self.listening.clear()
                self._on_notify("")  # waiters re-check at once rather than trust a dead line
                self._stop.wait(_RECONNECT_PAUSE)
        self.listening.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
