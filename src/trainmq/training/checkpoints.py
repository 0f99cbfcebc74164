"""Checkpoints in the store: written whole, then marked complete; read back only if intact.

A checkpoint of step 100 written by attempt 2 is
``<prefix>/step-00000100/state-a000002.pt`` (model, optimizer, RNG states,
step, data position) followed by ``COMPLETE.json``, which names the state file
and records its size and sha256, and is written *last*.  A crash between the
two leaves a checkpoint without its marker, which readers skip; a marker whose
state no longer matches its hash is skipped too.  Resuming therefore always
starts from the newest checkpoint that was completely written.

The state file carries the attempt (its fencing token) in its name, so a
superseded attempt that wakes up can never overwrite the state a marker of
the current attempt names; and the marker is written only after the fence
check says the attempt is still current.

Saving streams: ``torch.save`` writes to a temporary file, which the store
reads in chunks (hashing as it goes), so no second copy of the checkpoint is
held in memory.  ``AsyncCheckpointer`` takes the copy off the training path:
the loop is blocked only while the state is copied to host memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..store import BlobExists, BlobNotFound, BlobStore

__all__ = ["AsyncCheckpointer", "CheckpointStore", "LoadedCheckpoint", "host_copy"]

log = logging.getLogger("trainmq.training")
_STEP = re.compile(r"/step-(\d{8})/COMPLETE\.json$")
LEGACY_STATE = "state.pt"


@dataclass(frozen=True)
class LoadedCheckpoint:
    step: int
    key: str
    state: dict[str, Any]


class CheckpointStore:
    """The checkpoints of one run, below ``prefix`` in ``store``.

    ``attempt`` names the state files this writer makes; ``fence`` is called
    before a marker is written (it raises when the attempt was superseded).
    ``keep_last``/``keep_every``: after each save, only the newest ``keep_last``
    checkpoints and those of steps divisible by ``keep_every`` are kept.
    """

    def __init__(
        self,
        store: BlobStore,
        prefix: str,
        *,
        attempt: int = 0,
        fence: Callable[[], None] | None = None,
        keep_last: int | None = None,
        keep_every: int | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.attempt = attempt
        self.fence = fence or (lambda: None)
        self.keep_last = keep_last
        self.keep_every = keep_every

    def directory(self, step: int) -> str:
        return f"{self.prefix}/step-{step:08d}"

    def _state_name(self) -> str:
        return f"state-a{self.attempt:06d}.pt" if self.attempt else LEGACY_STATE

    def save(self, step: int, state: dict[str, Any]) -> str:
        """Write ``state`` as the checkpoint of ``step``; returns its directory key."""
        directory = self.directory(step)
        name = self._state_name()
        self.fence()
        with tempfile.TemporaryFile(prefix="trainmq-checkpoint-") as spool:
            torch.save(state, spool)
            spool.seek(0)
            info = self.store.put(f"{directory}/{name}", spool)
        sha256 = info.sha256 or self.store.sha256(f"{directory}/{name}")
        marker = {
            "step": step,
            "state": name,
            "attempt": self.attempt,
            "bytes": info.size,
            "sha256": sha256,
        }
        self._mark(step, json.dumps(marker).encode(), name)
        self.retain()
        return directory

    def _mark(self, step: int, marker: bytes, name: str) -> None:
        """Write the marker create-only: a writer paused between its fence check and this
        write can never replace a marker another attempt wrote.  Only a marker whose
        checkpoint fails verification is replaced (after the fence check again)."""
        directory = self.directory(step)
        self.fence()  # the marker is what makes it a checkpoint: only the current attempt's
        try:
            self.store.create(f"{directory}/COMPLETE.json", marker)
        except BlobExists:
            if self.verify(step):  # an intact checkpoint of this step is there: keep it
                self.store.delete(f"{directory}/{name}")
                return
            self.fence()
            self.store.put(f"{directory}/COMPLETE.json", marker)

    def complete_steps(self) -> list[int]:
        """Steps with a completion marker, ascending (not verified: see ``load``)."""
        steps = []
        for key in self.store.list_keys(f"{self.prefix}/"):
            found = _STEP.search(key)
            if found:
                steps.append(int(found.group(1)))
        return sorted(steps)

    def _verified_bytes(self, step: int) -> bytes | None:
        directory = self.directory(step)
        try:
            with self.store.get(f"{directory}/COMPLETE.json") as stream:
                marker = json.loads(stream.read())
            name = str(marker.get("state", LEGACY_STATE))
            if "/" in name:
                return None
            with self.store.get(f"{directory}/{name}") as stream:
                data = stream.read()
        except (BlobNotFound, ValueError, AttributeError):
            return None
        if hashlib.sha256(data).hexdigest() != marker.get("sha256"):
            log.warning("checkpoint %s does not match its marker's sha256: skipped", directory)
            return None
        return data

    def verify(self, step: int) -> bool:
        """Whether the checkpoint of ``step`` is complete and its state matches its sha256."""
        return self._verified_bytes(step) is not None

    def load(self, step: int, map_location: str | torch.device = "cpu") -> LoadedCheckpoint | None:
        """The checkpoint of ``step`` if it is complete and intact, else ``None``."""
        data = self._verified_bytes(step)
        if data is None:
            return None
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        return LoadedCheckpoint(step, self.directory(step), state)

    def newest(self, map_location: str | torch.device = "cpu") -> LoadedCheckpoint | None:
        """The newest complete, intact checkpoint."""
        for step in reversed(self.complete_steps()):
            loaded = self.load(step, map_location)
            if loaded is not None:
                return loaded
        return None

    def retain(self) -> list[int]:
        """Delete checkpoints the retention policy does not keep; returns their steps."""
        if self.keep_last is None:
            return []
        steps = self.complete_steps()
        keep = set(steps[-self.keep_last :])
        if self.keep_every:
            keep |= {s for s in steps if s % self.keep_every == 0}
        dropped = [s for s in steps if s not in keep]
        for step in dropped:
            directory = self.directory(step)
            self.store.delete(f"{directory}/COMPLETE.json")  # unmarked first: never half-read
            for key in list(self.store.list_keys(f"{directory}/")):
                self.store.delete(key)
        return dropped

    def remove_unmarked(self) -> int:
        """Delete state files that no marker names (left by writes that were killed), and a
        local store's temporary files of killed writes."""
        named: dict[str, str] = {}
        sweep = getattr(self.store, "remove_temporary_files", None)
        removed = int(sweep(f"{self.prefix}/")) if sweep is not None else 0
        keys = list(self.store.list_keys(f"{self.prefix}/"))
        for key in keys:
            if key.endswith("/COMPLETE.json"):
                try:
                    with self.store.get(key) as stream:
                        named[key.rsplit("/", 1)[0]] = str(
                            json.loads(stream.read()).get("state", LEGACY_STATE)
                        )
                except (BlobNotFound, ValueError, AttributeError):
                    continue
        for key in keys:
            directory, _, name = key.rpartition("/")
            if name.startswith("state") and named.get(directory) != name:
                self.store.delete(key)
                removed += 1
        return removed


def host_copy(value: Any) -> Any:
    """A deep copy of a state dict with every tensor copied to host memory, so training can
    go on changing the originals while the copy is written."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: host_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(host_copy(v) for v in value)
    return value


class AsyncCheckpointer:
    """Writes checkpoints on a background thread, one at a time, the marker last.

    ``submit`` blocks only to finish the previous save (if still running) and
    to copy the state to host memory.  ``on_saved(step, directory)`` runs on
    the writer thread after the marker is written.  A failure of a background
    save (a superseded fence included) is raised by the next ``submit`` or ``wait``.
    """

    def __init__(
        self, checkpoints: CheckpointStore, on_saved: Callable[[int, str], None] | None = None
    ) -> None:
        self.checkpoints = checkpoints
        self.on_saved = on_saved or (lambda step, directory: None)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.blocked_seconds = 0.0
        self.last_write_seconds = 0.0
        self.saved: list[tuple[int, str]] = []

    def _write(self, step: int, state: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            directory = self.checkpoints.save(step, state)
            self.saved.append((step, directory))
            self.on_saved(step, directory)
        except BaseException as exc:  # handed to the training thread at its next call
            self._error = exc
        finally:
            self.last_write_seconds = time.perf_counter() - started

    def submit(self, step: int, state: dict[str, Any]) -> float:
        """Start saving ``state`` as step ``step``; returns the seconds training was blocked."""
        started = time.perf_counter()
        self.wait()
        snapshot = host_copy(state)
        self._thread = threading.Thread(
            target=self._write, args=(step, snapshot), name="trainmq-checkpoint", daemon=True
        )
        self._thread.start()
        blocked = time.perf_counter() - started
        self.blocked_seconds += blocked
        return blocked

    def wait(self, progress: Callable[[], None] | None = None) -> None:
        """Wait for the save in flight (calling ``progress`` now and then: a long write is
        progress too); raise its error, if it failed."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(0.5)
                if progress is not None:
                    progress()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait_quietly(self) -> None:
        """Wait for the save in flight without raising (on the way out of a failure)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
