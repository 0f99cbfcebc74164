"""A training run as the console shows it, put together from the run registry.

The registry keeps the record (with the ``TrainRequest``), the attempts with
their liveness stamps, the ``TrainingEvent``s and the completion; this module
turns them into a status, the loss series, checkpoints, evaluations and a
timeline of attempts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..training.messages import TrainingEvent
from ..training.runs import RunRecord, RunRegistry, key_hash

__all__ = ["STALE_SECONDS", "URI_PATTERN", "Attempt", "RunView", "find_run", "run_view"]

#: An attempt whose liveness stamp is older than this is no longer training.
STALE_SECONDS = 120.0
URI_PATTERN = re.compile(r"(?:file|s3)://[^\s\"'<>]+")


@dataclass
class Attempt:
    number: int
    started_at: float
    alive_at: float
    worker: str
    resumed_from_step: int | None
    ended: str  # "completed", "failed", "training", "stopped" (no heartbeat: killed or lost)
    last_step: int | None = None


@dataclass
class RunView:
    record: RunRecord
    key_hash: str
    request: dict[str, Any]
    status: str
    attempts: list[Attempt]
    events: list[TrainingEvent]
    completion: dict[str, Any] | None
    step: int = 0
    total_steps: int | None = None
    train: list[tuple[float, float]] = field(default_factory=list)
    validation: list[tuple[float, float]] = field(default_factory=list)
    checkpoints: list[TrainingEvent] = field(default_factory=list)
    evaluations: list[TrainingEvent] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    updated_at: float | None = None
    #: The trainer's own latest validation loss (checkpoints and completion), not the
    #: evaluate stage's, which measures on other batches.
    trainer_val_loss: float | None = None

    @property
    def dataset(self) -> str:
        dataset = self.request.get("dataset") or {}
        return str(dataset.get("manifest_sha256", "")) if isinstance(dataset, dict) else ""

    @property
    def train_loss(self) -> float | None:
        """The final training loss once completed (the figure the demo's summary shows)."""
        final = _number((self.completion or {}).get("train_loss"))
        if final is not None:
            return final
        return self.train[-1][1] if self.train else None

    @property
    def val_loss(self) -> float | None:
        """The trainer's validation loss: its final one once completed, as the summary's."""
        final = _number((self.completion or {}).get("val_loss"))
        return final if final is not None else self.trainer_val_loss

    @property
    def resumes(self) -> list[int]:
        return [a.resumed_from_step for a in self.attempts if a.resumed_from_step is not None]

    @property
    def redeliveries(self) -> int:
        """Deliveries of the request after its first: each later attempt is one (a duplicate
        request that attached is a second message, not a redelivery; see ``attached``)."""
        return max(len(self.attempts) - 1, 0)

    @property
    def attached(self) -> int:
        """Duplicate requests (same idempotency key) that attached to this run."""
        return sum(1 for e in self.events if e.event == "attached")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _request(record: RunRecord) -> dict[str, Any]:
    try:
        data = json.loads(record.request) if record.request else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _status(
    attempts: list[dict[str, Any]],
    events: list[TrainingEvent],
    completion: dict[str, Any] | None,
    now: float,
) -> str:
    if completion is not None or any(e.event == "completed" for e in events):
        return "completed"
    if events and events[-1].event == "failed":
        return "failed"
    if not attempts:
        return "queued"
    return "training" if now - float(attempts[-1]["alive_at"]) < STALE_SECONDS else "stalled"


def _attempts(
    raw: list[dict[str, Any]], events: list[TrainingEvent], status: str, now: float
) -> list[Attempt]:
    out = []
    for index, data in enumerate(raw):
        number = int(data["attempt"])
        own = [e for e in events if e.attempt == number]
        resumed = data.get("resumed_from_step")
        resumed_event = next((e for e in own if e.event == "resumed"), None)
        if resumed is None and resumed_event is not None:
            resumed = resumed_event.step
        last = index == len(raw) - 1
        if any(e.event == "completed" for e in own) or (last and status == "completed"):
            ended = "completed"
        elif any(e.event == "failed" for e in own):
            ended = "failed"
        elif last and status == "training":
            ended = "training"
        else:
            ended = "stopped"
        steps = [e.step for e in own if e.step]
        out.append(
            Attempt(
                number=number,
                started_at=float(data["started_at"]),
                alive_at=float(data.get("alive_at", data["started_at"])),
                worker=str(data.get("worker", "")),
                resumed_from_step=None if resumed is None else int(resumed),
                ended=ended,
                last_step=max(steps) if steps else None,
            )
        )
    return out


def run_view(registry: RunRegistry, record: RunRecord, now: float) -> RunView:
    key = record.idempotency_key
    raw_attempts = registry.attempts(key)
    events = registry.events(key)
    completion = registry.completion(key)
    status = _status(raw_attempts, events, completion, now)
    view = RunView(
        record=record,
        key_hash=key_hash(key),
        request=_request(record),
        status=status,
        attempts=_attempts(raw_attempts, events, status, now),
        events=events,
        completion=completion,
    )
    optimizer = view.request.get("optimizer")
    if isinstance(optimizer, dict) and isinstance(optimizer.get("steps"), int):
        view.total_steps = optimizer["steps"]
    train: dict[float, float] = {}  # by step: a resumed attempt's value replaces the lost one's
    validation: dict[float, float] = {}
    for event in events:
        view.step = max(view.step, event.step)
        if event.total_steps is not None:
            view.total_steps = event.total_steps
        if event.train_loss is not None:
            train[float(event.step)] = event.train_loss
        if event.val_loss is not None:
            validation[float(event.step)] = event.val_loss
            if event.event != "evaluated":
                view.trainer_val_loss = event.val_loss
        if event.event == "checkpoint" and event.checkpoint_uri:
            view.checkpoints.append(event)
        if event.event == "evaluated":
            view.evaluations.append(event)
            view.reports += URI_PATTERN.findall(event.message or "")
        if event.at is not None:
            view.updated_at = max(view.updated_at or 0.0, event.at)
    view.train = sorted(train.items())
    view.validation = sorted(validation.items())
    if completion is not None:
        for name in ("report_uri", "evaluation_report_uri"):
            if isinstance(completion.get(name), str):
                view.reports.append(completion[name])
    view.reports = list(dict.fromkeys(view.reports))
    return view


def find_run(registry: RunRegistry, run: str) -> RunRecord | None:
    """The run named by ``run``: the hash of its idempotency key (how the console links
    runs) or its run id (what a user types, e.g. ``/console/runs/r-17``)."""
    if _KEY_HASH.fullmatch(run):
        for record in registry.list_runs():
            if key_hash(record.idempotency_key) == run:
                return record
    return registry.find(run)


_KEY_HASH = re.compile(r"[0-9a-f]{64}")
