"""Counters summed over the processes of one server (``trainmq serve --workers N``).

Each process keeps its counters in memory, as a single process does, and a
background thread writes a snapshot of them to ``<folder>/<name>.json`` when
they have changed, checking every ``interval`` seconds (and at shutdown). A reader sums its own
live counters with the other processes' latest snapshots, so what one process
answers covers the whole server, at most ``interval`` seconds behind for the
others. A process that is started again under the same name resumes from its
last snapshot, so the sums never go backwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Peers"]


class Peers:
    """Publishes one process's snapshot and reads the others' from a shared folder."""

    def __init__(self, folder: Path, name: str, interval: float = 0.25) -> None:
        self.folder = folder
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot: Callable[[], Any] | None = None
        self._written = ""
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def _own(self) -> Path:
        return self.folder / f"{self.name}.json"

    def previous(self) -> Any:
        """This name's last published snapshot (a restarted process resumes it), or None."""
        return _read(self._own)

    def start(self, snapshot: Callable[[], Any]) -> None:
        """Publish ``snapshot()`` when it changes, until :meth:`stop`."""
        self._snapshot = snapshot
        self._thread = threading.Thread(target=self._run, name="trainmq-peers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.publish()

    def publish(self) -> None:
        if self._snapshot is None:
            return
        text = json.dumps(self._snapshot())
        if text == self._written:
            return
        temporary = self.folder / f".{self.name}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):  # the folder goes when the server stops
            temporary.write_text(text)
            temporary.replace(self._own)
            self._written = text

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.publish()

    def others(self) -> list[Any]:
        """The latest snapshot of every other process of this server."""
        found = []
        with contextlib.suppress(OSError):
            for path in self.folder.glob("*.json"):
                if path.name != self._own.name:
                    data = _read(path)
                    if data is not None:
                        found.append(data)
        return found


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
