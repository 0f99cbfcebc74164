"""Sharded checkpoints of multi-process runs, with ``torch.distributed.checkpoint`` (DCP).

A run whose state is spread over ranks (FSDP, tensor parallelism) cannot be
gathered into one ``torch.save`` file without holding all of it on one host.
Here every rank saves its own shards with DCP into a local folder, uploads
the files it wrote to ``<prefix>/step-N/dcp/`` (their names carry the rank,
and rank 0 alone writes DCP's ``.metadata``), then the ranks exchange names
and sha256s, and rank 0 writes the checkpoint's ``COMPLETE.json`` — listing
every file with its hash — last, after the fence check.  So the marker
rule holds as for single-file checkpoints: a checkpoint without its marker,
or with a file that does not match it, is never loaded.

Without an initialized process group (one process), the same functions save
and load a DCP checkpoint of that process alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch.distributed.checkpoint.filesystem import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save

from ..store import BlobNotFound
from .checkpoints import CheckpointStore

__all__ = ["load_sharded", "save_sharded"]

FORMAT = "torch.distributed.checkpoint"


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


@contextlib.contextmanager
def _single_process_is_meant() -> Iterator[None]:
    """DCP warns when it runs without a process group; here that is deliberate."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def save_sharded(checkpoints: CheckpointStore, step: int, state: dict[str, Any]) -> str:
    """Save this rank's part of ``state`` as the checkpoint of ``step`` (every rank calls
    it together); returns the checkpoint's directory key."""
    distributed = _distributed()
    rank = dist.get_rank() if distributed else 0
    directory = checkpoints.directory(step)
    checkpoints.fence()
    with tempfile.TemporaryDirectory(prefix="trainmq-dcp-") as spool:
        with _single_process_is_meant():
            dcp_save(state, storage_writer=FileSystemWriter(spool), no_dist=not distributed)
        mine: dict[str, dict[str, Any]] = {}
        for path in sorted(Path(spool).iterdir()):
            if not path.is_file() or (path.name == ".metadata" and rank != 0):
                continue
            with open(path, "rb") as stream:
                info = checkpoints.store.put(f"{directory}/dcp/{path.name}", stream)
            mine[path.name] = {"sha256": info.sha256, "bytes": info.size}
    every: list[dict[str, dict[str, Any]]] = [mine]
    if distributed:
        every = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(every, mine)
    if rank == 0:
        files = {name: entry for part in every for name, entry in part.items()}
        marker = {"step": step, "format": FORMAT, "attempt": checkpoints.attempt, "files": files}
        checkpoints.fence()
        checkpoints.store.put(f"{directory}/COMPLETE.json", json.dumps(marker).encode())
    if distributed:
        dist.barrier()  # every rank returns once the checkpoint is complete
    return directory


def load_sharded(checkpoints: CheckpointStore, step: int, state: dict[str, Any]) -> bool:
    """Load the sharded checkpoint of ``step`` into ``state`` in place (every rank calls
    it together); ``False`` if it is incomplete or a file does not match its marker."""
    directory = checkpoints.directory(step)
    try:
        with checkpoints.store.get(f"{directory}/COMPLETE.json") as stream:
            marker = json.loads(stream.read())
    except (BlobNotFound, ValueError):
        return False
    if marker.get("format") != FORMAT:
        return False
    with tempfile.TemporaryDirectory(prefix="trainmq-dcp-") as spool:
        for name, entry in marker["files"].items():
            if "/" in name:
                return False
            digest = hashlib.sha256()
            try:
                with (
                    checkpoints.store.get(f"{directory}/dcp/{name}") as stream,
                    open(Path(spool) / name, "wb") as out,
                ):
                    for chunk in stream.iter_chunks():
                        digest.update(chunk)
                        out.write(chunk)
            except BlobNotFound:
                return False
            if digest.hexdigest() != entry["sha256"]:
                return False
        with _single_process_is_meant():
            dcp_load(state, storage_reader=FileSystemReader(spool), no_dist=not _distributed())
    return True
