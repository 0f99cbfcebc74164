"""The evaluate stage: held-out loss and perplexity of a checkpoint, as a JSON report.

The whole validation split is cut into consecutive, non-overlapping windows of
the model's context (or, with ``max_windows``, the first that many; the report
says how many of how many), so a report is reproducible.  Its ``val_loss`` is
*the* held-out loss of the checkpoint; the trainer's ``val_loss`` in its events
is only an estimate from a few random batches.

The report is written create-only: evaluating the same checkpoint twice (a
redelivered message) finds the report and returns it — but only a report of
*this* checkpoint; one made for another checkpoint is refused.  A checkpoint
that is still being written (no completion marker yet) is retried later.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import torch

from ..errors import PermanentFailure
from ..store import BlobExists, BlobNotFound, BlobStore
from .checkpoints import CheckpointStore
from .dataset import read_manifest
from .locations import key_of, uri_of
from .messages import EvaluateRequest, ModelConfig
from .model import GPT
from .outcomes import RetryLater
from .shards import ShardCache, TokenSplit, default_cache_dir, map_split
from .trainer import pick_device

__all__ = ["evaluate"]


def _checkpoint(store: BlobStore, uri: str) -> tuple[str, dict[str, Any]]:
    """``uri`` names one checkpoint (``.../step-N``) or a run's checkpoints (the newest)."""
    key = key_of(store, uri, "checkpoint").rstrip("/")
    head, _, last = key.rpartition("/")
    if last.startswith("step-") and last[5:].isdigit():
        if not store.exists(f"{key}/COMPLETE.json"):
            raise RetryLater(f"the checkpoint {uri} is not complete yet (still being written?)")
        loaded = CheckpointStore(store, head).load(int(last[5:]))
        if loaded is None:
            raise PermanentFailure(f"the checkpoint {uri} is corrupt (sha256 mismatch)")
    else:
        loaded = CheckpointStore(store, key).newest()
        if loaded is None:
            raise RetryLater(f"no complete checkpoint at {uri} yet")
    return uri_of(store, loaded.key), loaded.state


def _existing(store: BlobStore, report_key: str, checkpoint_uri: str) -> dict[str, Any] | None:
    """The report already at ``report_key`` if it is one of ``checkpoint_uri``."""
    try:
        with store.get(report_key) as stream:
            existing: dict[str, Any] = json.loads(stream.read())
    except BlobNotFound:
        return None
    if existing.get("checkpoint_uri") != checkpoint_uri:
        raise PermanentFailure(
            f"the report {uri_of(store, report_key)} already holds the evaluation of "
            f"{existing.get('checkpoint_uri')}, not of {checkpoint_uri}"
        )
    return existing


@torch.no_grad()
def _heldout_loss(
    model: GPT, val: TokenSplit, context: int, windows: int, device: torch.device
) -> float:
    """Mean loss over the first ``windows`` consecutive context windows of ``val``."""
    total = 0.0
    model.eval()
    for start in range(0, windows, 16):
        rows = np.stack(
            [
                val[i * context : i * context + context + 1]
                for i in range(start, min(windows, start + 16))
            ]
        ).astype(np.int64)
        batch = torch.from_numpy(rows).to(device)
        total += float(model.loss(batch[:, :-1], batch[:, 1:])) * len(batch)
    return total / windows


def evaluate(
    store: BlobStore,
    request: EvaluateRequest,
    max_windows: int | None = None,
    cache: ShardCache | None = None,
) -> dict[str, Any]:
    """Evaluate and write the report (or return the one already written of this checkpoint)."""
    report_key = key_of(store, request.report_uri, "report")
    started = time.perf_counter()
    checkpoint_uri, state = _checkpoint(store, request.checkpoint_uri)
    existing = _existing(store, report_key, checkpoint_uri)
    if existing is not None:
        return existing
    manifest = read_manifest(store, request.dataset)
    device = pick_device("auto")
    try:
        model_config = ModelConfig.model_validate(state["model_config"])
    except (KeyError, ValueError) as exc:
        raise PermanentFailure(
            f"the checkpoint names no valid model configuration: {exc}"
        ) from None
    model = GPT(model_config, manifest.vocab_size).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise PermanentFailure(
            f"the checkpoint does not fit the model configuration: {exc}"
        ) from None
    val = map_split(store, manifest, "val", cache or ShardCache(default_cache_dir()))
    context = model_config.context
    available = (len(val) - 1) // context
    windows = available if max_windows is None else min(max_windows, available)
    if windows < 1:
        raise PermanentFailure("the validation split is shorter than one context window")
    loss = _heldout_loss(model, val, context, windows, device)
    report = {
        "run_id": request.run_id,
        "checkpoint_uri": checkpoint_uri,
        "step": int(state["step"]),
        "dataset_version": request.dataset.manifest_sha256,
        "val_loss": loss,
        "perplexity": math.exp(loss),
        "tokens_evaluated": windows * context,
        "windows_evaluated": windows,
        "windows_total": available,
        "seconds": round(time.perf_counter() - started, 3),
    }
    try:
        store.create(report_key, json.dumps(report, indent=2).encode())
    except BlobExists:
        return _existing(store, report_key, checkpoint_uri) or report
    return report
