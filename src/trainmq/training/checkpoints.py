"""Checkpoints in the store: written whole, then marked complete; read back only if complete.

A checkpoint is ``<prefix>/step-00000100/state.pt`` (model, optimizer, RNG
states, step, data position) followed by ``COMPLETE.json``, which records the
state file's size and sha256 and is written *last*.  A crash between the two
leaves a checkpoint without its marker, which readers skip; a marker whose
state no longer matches its hash is skipped too.  Resuming therefore always
starts from the newest checkpoint that was completely written.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import torch

from ..store import BlobNotFound, BlobStore

__all__ = ["CheckpointStore", "LoadedCheckpoint"]

log = logging.getLogger("trainmq.training")
_STEP = re.compile(r"/step-(\d{8})/COMPLETE\.json$")


@dataclass(frozen=True)
class LoadedCheckpoint:
    step: int
    key: str
    state: dict[str, Any]


class CheckpointStore:
    """The checkpoints of one run, below ``prefix`` in ``store``."""

    def __init__(self, store: BlobStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")

    def directory(self, step: int) -> str:
        return f"{self.prefix}/step-{step:08d}"

    def save(self, step: int, state: dict[str, Any]) -> str:
        """Write ``state`` as the checkpoint of ``step``; returns its directory key."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        directory = self.directory(step)
        self.store.put(f"{directory}/state.pt", data)
        marker = {"step": step, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        self.store.put(f"{directory}/COMPLETE.json", json.dumps(marker).encode())
        return directory

    def complete_steps(self) -> list[int]:
        """Steps with a completion marker, ascending."""
        steps = []
        for key in self.store.list_keys(f"{self.prefix}/"):
            found = _STEP.search(key)
            if found:
                steps.append(int(found.group(1)))
        return sorted(steps)

    def load(self, step: int, map_location: str | torch.device = "cpu") -> LoadedCheckpoint | None:
        """The checkpoint of ``step`` if it is complete and intact, else ``None``."""
        directory = self.directory(step)
        try:
            with self.store.get(f"{directory}/COMPLETE.json") as stream:
                marker = json.loads(stream.read())
            with self.store.get(f"{directory}/state.pt") as stream:
                data = stream.read()
        except (BlobNotFound, ValueError):
            return None
        if hashlib.sha256(data).hexdigest() != marker.get("sha256"):
            log.warning("checkpoint %s does not match its marker's sha256: skipped", directory)
            return None
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        return LoadedCheckpoint(step, directory, state)

    def newest(self, map_location: str | torch.device = "cpu") -> LoadedCheckpoint | None:
        """The newest complete, intact checkpoint."""
        for step in reversed(self.complete_steps()):
            loaded = self.load(step, map_location)
            if loaded is not None:
                return loaded
        return None
