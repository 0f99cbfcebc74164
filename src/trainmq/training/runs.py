"""The run registry: exactly one run per idempotency key, whatever the queue delivers.

Delivery is at-least-once, so a ``TrainRequest`` may arrive twice — redelivered
after a crash, or sent twice by a producer.  The registry turns that into
exactly-once *effects*:

* **register**: the first claimant of an idempotency key creates the run's
  record with a create-only put (atomic in every store: ``os.link`` on local
  files, ``IfNoneMatch`` on S3); everyone after it *attaches* to that run.
* **attempts**: whoever trains the run holds a numbered attempt (create-only,
  so two deliveries can never hold the same number) and keeps it alive by
  rewriting its ``alive`` stamp.  A delivery that finds a live attempt waits
  for it (it is attached); one that finds only a stale attempt takes the run
  over with the next number and resumes from the newest checkpoint.
* **fencing**: an attempt's number is its fencing token.  An attempt is
  *superseded* once a later number exists; its holder checks that before every
  write (:meth:`RunRegistry.superseded`) and stops.  Who may take a run over is
  decided by watching stamps change on the watcher's own monotonic clock
  (``training.attempts``), never by comparing another host's wall clock.
* **completion**: a create-only ``completed.json`` ends the run; every later
  delivery of the key is acknowledged without work.
* **events**: the ``TrainingEvent``s of every attempt, kept in order, are what
  the console and ``trainmq demo`` draw the run from.

Layout below ``prefix`` (default ``runs``), ``<h>`` the sha256 of the key::

    <h>/run.json                      the record (create-only)
    <h>/attempt-000001.json           an attempt (create-only)
    <h>/attempt-000001.alive          its liveness stamp (overwritten)
    <h>/attempt-000001.released       the attempt let go of the run (continuation, preemption)
    <h>/events/000001-00000007.json   event 7 of attempt 1
    <h>/completed.json                the result (create-only)
    by-id/<sha256 of the run id>.json the newest run of that id (its key)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..store import BlobExists, BlobNotFound, BlobStore
from .messages import TrainingEvent

__all__ = ["Claim", "Registration", "RunRecord", "RunRegistry"]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    idempotency_key: str
    created_at: float
    request_sha256: str
    request: str = field(default="", compare=False)


@dataclass(frozen=True)
class Registration:
    """What registering found: ``started`` a new run, or ``attached`` to an existing one."""

    outcome: Literal["started", "attached"]
    run: RunRecord


@dataclass(frozen=True)
class Claim:
    """A registration together with the attempt number it recorded."""

    outcome: Literal["started", "attached"]
    run: RunRecord
    attempt: int


def key_hash(idempotency_key: str) -> str:
    """Keys may hold characters a store key may not: runs are named by their key's hash."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


def _load(store: BlobStore, key: str) -> Any:
    with store.get(key) as stream:
        return json.loads(stream.read())


class RunRegistry:
    """Runs, their attempts, events and results, kept in a blob store under ``prefix``."""

    def __init__(self, store: BlobStore, prefix: str = "runs") -> None:
        self.store = store
        self.prefix = prefix.strip("/")

    # -- paths ---------------------------------------------------------------------------
    def _dir(self, idempotency_key: str) -> str:
        return f"{self.prefix}/{key_hash(idempotency_key)}"

    def _attempt_key(self, idempotency_key: str, attempt: int) -> str:
        return f"{self._dir(idempotency_key)}/attempt-{attempt:06d}.json"

    # -- the record ----------------------------------------------------------------------
    def register(
        self, run_id: str, idempotency_key: str, request_json: str, now: float
    ) -> Registration:
        """Create the run (first delivery) or attach to it (any later one)."""
        record = RunRecord(
            run_id,
            idempotency_key,
            now,
            hashlib.sha256(request_json.encode()).hexdigest(),
            request_json,
        )
        try:
            self.store.create(
                f"{self._dir(idempotency_key)}/run.json", json.dumps(asdict(record)).encode()
            )
        except BlobExists:
            return Registration("attached", self.get(idempotency_key))
        # Find a run by its id without reading every record (the newest run of an id wins).
        self.store.put(
            self._by_id(run_id), json.dumps({"idempotency_key": idempotency_key}).encode()
        )
        return Registration("started", record)

    def claim(
        self, run_id: str, idempotency_key: str, request_json: str, now: float, worker: str
    ) -> Claim:
        """Register the run and record an attempt for this delivery."""
        registration = self.register(run_id, idempotency_key, request_json, now)
        attempt = len(self.attempts(idempotency_key)) + 1
        while not self._take(idempotency_key, attempt, now, worker):
            attempt += 1  # another delivery took this number first
        return Claim(registration.outcome, registration.run, attempt)

    def get(self, idempotency_key: str) -> RunRecord:
        data = _load(self.store, f"{self._dir(idempotency_key)}/run.json")
        return RunRecord(**data)

    def exists(self, idempotency_key: str) -> bool:
        return self.store.exists(f"{self._dir(idempotency_key)}/run.json")

    def list_runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        runs = [
            RunRecord(**_load(self.store, key))
            for key in self.store.list_keys(f"{self.prefix}/")
            if key.endswith("/run.json") and key.count("/") == self.prefix.count("/") + 2
        ]
        return sorted(runs, key=lambda r: (r.created_at, r.run_id))

    def _by_id(self, run_id: str) -> str:
        return f"{self.prefix}/by-id/{key_hash(run_id)}.json"

    def find(self, run_id: str) -> RunRecord | None:
        """The newest run with this ``run_id``, if any."""
        try:
            pointer = _load(self.store, self._by_id(run_id))
        except (BlobNotFound, ValueError):
            return None
        return self.get(str(pointer["idempotency_key"]))

    # -- attempts ------------------------------------------------------------------------
    def _take(
        self, idempotency_key: str, attempt: int, now: float, worker: str, **extra: Any
    ) -> bool:
        body = {"attempt": attempt, "started_at": now, "worker": worker, **extra}
        try:
            self.store.create(
                self._attempt_key(idempotency_key, attempt), json.dumps(body).encode()
            )
        except BlobExists:
            return False
        return True

    def attempts(self, idempotency_key: str) -> list[dict[str, Any]]:
        """Every attempt, in order, each with ``alive_at`` (its newest liveness stamp)."""
        base = f"{self._dir(idempotency_key)}/attempt-"
        found: dict[int, dict[str, Any]] = {}
        stamps: dict[int, float] = {}
        released: set[int] = set()
        for key in self.store.list_keys(base):
            number = int(key[len(base) :].split(".", 1)[0])
            if key.endswith(".released"):
                released.add(number)
                continue
            try:
                data = _load(self.store, key)
            except (BlobNotFound, ValueError):
                continue  # an alive stamp being replaced, or one torn by a crash
            if key.endswith(".alive"):
                stamps[number] = float(data["at"])
            elif key.endswith(".json"):
                found[number] = data
        for number, attempt in found.items():
            attempt["alive_at"] = max(stamps.get(number, 0.0), float(attempt["started_at"]))
            attempt["released"] = number in released
        return [found[n] for n in sorted(found)]

    def acquire(
        self, idempotency_key: str, now: float, worker: str, stale_after: float, **extra: Any
    ) -> int | None:
        """Take the run for this delivery: the new attempt's number, or ``None``.

        ``None`` means another attempt is alive (its stamp is newer than
        ``stale_after`` seconds) or won the race for the next number: the caller
        is attached and should wait, then ask again.
        """
        attempts = self.attempts(idempotency_key)
        if attempts and now - float(attempts[-1]["alive_at"]) < stale_after:
            return None
        number = int(attempts[-1]["attempt"]) + 1 if attempts else 1
        return number if self._take(idempotency_key, number, now, worker, **extra) else None

    def beat(self, idempotency_key: str, attempt: int, now: float, count: int = 0) -> None:
        """Keep ``attempt`` alive (``count`` makes every stamp differ from the one before)."""
        key = self._attempt_key(idempotency_key, attempt).removesuffix(".json") + ".alive"
        self.store.put(key, json.dumps({"at": now, "beat": count}).encode())

    def stamp(self, idempotency_key: str, attempt: int) -> bytes | None:
        """The raw liveness stamp of ``attempt`` (compared for change, never for its time)."""
        key = self._attempt_key(idempotency_key, attempt).removesuffix(".json") + ".alive"
        try:
            with self.store.get(key) as stream:
                return stream.read()
        except BlobNotFound:
            return None

    def superseded(self, idempotency_key: str, attempt: int) -> bool:
        """Whether a later attempt exists: ``attempt``'s fencing token is no longer current."""
        return self.store.exists(self._attempt_key(idempotency_key, attempt + 1))

    def release(self, idempotency_key: str, attempt: int, reason: str) -> None:
        """Let go of the run at once, so the next delivery need not wait out the stale period."""
        key = self._attempt_key(idempotency_key, attempt).removesuffix(".json") + ".released"
        self.store.put(key, json.dumps({"reason": reason}).encode())

    def released(self, idempotency_key: str, attempt: int) -> bool:
        key = self._attempt_key(idempotency_key, attempt).removesuffix(".json") + ".released"
        return self.store.exists(key)

    def take_after(
        self, idempotency_key: str, last: int, now: float, worker: str, **extra: Any
    ) -> int | None:
        """Take attempt ``last + 1`` (create-only: of racing takers exactly one wins)."""
        number = last + 1
        return number if self._take(idempotency_key, number, now, worker, **extra) else None

    # -- completion ----------------------------------------------------------------------
    def complete(self, idempotency_key: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record the run's result (the first result wins; later ones get it back)."""
        try:
            self.store.create(
                f"{self._dir(idempotency_key)}/completed.json", json.dumps(result).encode()
            )
        except BlobExists:
            return self.completion(idempotency_key) or result
        return result

    def completion(self, idempotency_key: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = _load(self.store, f"{self._dir(idempotency_key)}/completed.json")
        except BlobNotFound:
            return None
        return data

    # -- events --------------------------------------------------------------------------
    def record_event(
        self, idempotency_key: str, seq: int, event: TrainingEvent, writer: str = ""
    ) -> None:
        """Keep ``event``, number ``seq`` of its attempt; rewriting the same one is harmless.

        The attempt's holder writes without ``writer``; anyone else (a duplicate
        that attached) names itself, so the numbers never collide.
        """
        name = f"{event.attempt:06d}-{seq:08d}" + (f"-{writer}" if writer else "")
        self.store.put(f"{self._dir(idempotency_key)}/events/{name}.json", event.to_json().encode())

    def events(self, idempotency_key: str) -> list[TrainingEvent]:
        """The run's events in the order they happened (by time, then by writer's number)."""
        found: list[tuple[float, str, TrainingEvent]] = []
        for key in self.store.list_keys(f"{self._dir(idempotency_key)}/events/"):
            try:
                with self.store.get(key) as stream:
                    event = TrainingEvent.model_validate_json(stream.read())
            except (BlobNotFound, ValueError):
                continue
            found.append((event.at or 0.0, key, event))
        return [event for _, _, event in sorted(found, key=lambda item: item[:2])]
