"""The evaluate stage: held-out loss and perplexity of a checkpoint, as a JSON report.

The validation split is cut into consecutive, non-overlapping windows of the
model's context (up to ``max_windows`` of them, always the same ones), so a
report is reproducible.  The report is written create-only: evaluating the
same checkpoint twice (a redelivered message) finds the report and returns it.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import torch

from ..errors import PermanentFailure
from ..store import BlobExists, BlobStore
from .checkpoints import CheckpointStore
from .dataset import load_split, read_manifest
from .locations import key_of, uri_of
from .messages import EvaluateRequest, ModelConfig
from .model import GPT
from .trainer import pick_device

__all__ = ["evaluate"]


def _checkpoint(store: BlobStore, uri: str) -> tuple[str, dict[str, Any]]:
    """``uri`` names one checkpoint (``.../step-N``) or a run's checkpoints (the newest)."""
    key = key_of(store, uri, "checkpoint").rstrip("/")
    head, _, last = key.rpartition("/")
    if last.startswith("step-") and last[5:].isdigit():
        loaded = CheckpointStore(store, head).load(int(last[5:]))
    else:
        loaded = CheckpointStore(store, key).newest()
    if loaded is None:
        raise PermanentFailure(f"no complete checkpoint at {uri}")
    return uri_of(store, loaded.key), loaded.state


def evaluate(store: BlobStore, request: EvaluateRequest, max_windows: int = 256) -> dict[str, Any]:
    """Evaluate and write the report (or return the one already written)."""
    report_key = key_of(store, request.report_uri, "report")
    if store.exists(report_key):
        with store.get(report_key) as stream:
            existing: dict[str, Any] = json.loads(stream.read())
        return existing
    started = time.perf_counter()
    manifest = read_manifest(store, request.dataset)
    checkpoint_uri, state = _checkpoint(store, request.checkpoint_uri)
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
    val = load_split(store, manifest, "val")
    context = model_config.context
    windows = min(max_windows, (len(val) - 1) // context)
    if windows < 1:
        raise PermanentFailure("the validation split is shorter than one context window")
    rows = np.stack([val[i * context : i * context + context + 1] for i in range(windows)])
    total = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, windows, 16):
            batch = torch.from_numpy(rows[start : start + 16]).to(device)
            total += float(model.loss(batch[:, :-1], batch[:, 1:])) * len(batch)
    loss = total / windows
    report = {
        "run_id": request.run_id,
        "checkpoint_uri": checkpoint_uri,
        "step": int(state["step"]),
        "dataset_version": request.dataset.manifest_sha256,
        "val_loss": loss,
        "perplexity": math.exp(loss),
        "tokens_evaluated": windows * context,
        "seconds": round(time.perf_counter() - started, 3),
    }
    try:
        store.create(report_key, json.dumps(report, indent=2).encode())
    except BlobExists:
        with store.get(report_key) as stream:
            report = json.loads(stream.read())
    return report
