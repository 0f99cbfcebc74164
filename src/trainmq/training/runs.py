"""The run registry: exactly one run per idempotency key, whatever the queue delivers.

Delivery is at-least-once, so a ``TrainRequest`` may arrive twice — redelivered
after a crash, or sent twice by a producer.  The registry turns that into
exactly-once *effects*: the first claimant of an idempotency key creates the
run's record with a create-only put (atomic in every store: ``os.link`` on local
files, ``IfNoneMatch`` on S3); everyone after it attaches to that run instead of
starting another.  Each delivery that works on the run records an attempt
(create-only too, numbered), which is how a resumed run shows its history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from ..store import BlobExists, BlobNotFound, BlobStore

__all__ = ["Claim", "RunRecord", "RunRegistry"]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    idempotency_key: str
    created_at: float
    request_sha256: str


@dataclass(frozen=True)
class Claim:
    """What a claim found: ``started`` a new run, or ``attached`` to an existing one."""

    outcome: Literal["started", "attached"]
    run: RunRecord
    attempt: int


def _key_path(idempotency_key: str) -> str:
    # Keys may hold characters a store key may not: name the record by their hash.
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


class RunRegistry:
    """Runs and their attempts, kept in a blob store under ``prefix``."""

    def __init__(self, store: BlobStore, prefix: str = "runs") -> None:
        self.store = store
        self.prefix = prefix.strip("/")

    def _record_key(self, idempotency_key: str) -> str:
        return f"{self.prefix}/by-key/{_key_path(idempotency_key)}.json"

    def _attempt_key(self, idempotency_key: str, attempt: int) -> str:
        return f"{self.prefix}/by-key/{_key_path(idempotency_key)}/attempt-{attempt:06d}.json"

    def claim(
        self, run_id: str, idempotency_key: str, request_json: str, now: float, worker: str
    ) -> Claim:
        """Create the run (first delivery) or attach to it (any later one); record an attempt."""
        record = RunRecord(
            run_id, idempotency_key, now, hashlib.sha256(request_json.encode()).hexdigest()
        )
        try:
            self.store.create(
                self._record_key(idempotency_key), json.dumps(asdict(record)).encode()
            )
            outcome: Literal["started", "attached"] = "started"
        except BlobExists:
            record = self.get(idempotency_key)
            outcome = "attached"
        attempt = self._record_attempt(idempotency_key, now, worker)
        return Claim(outcome, record, attempt)

    def get(self, idempotency_key: str) -> RunRecord:
        with self.store.get(self._record_key(idempotency_key)) as stream:
            data = json.loads(stream.read())
        return RunRecord(**data)

    def exists(self, idempotency_key: str) -> bool:
        try:
            self.store.head(self._record_key(idempotency_key))
        except BlobNotFound:
            return False
        return True

    def _record_attempt(self, idempotency_key: str, now: float, worker: str) -> int:
        attempt = len(self.attempts(idempotency_key)) + 1
        while True:
            try:
                self.store.create(
                    self._attempt_key(idempotency_key, attempt),
                    json.dumps({"attempt": attempt, "started_at": now, "worker": worker}).encode(),
                )
                return attempt
            except BlobExists:
                attempt += 1  # another delivery took this number first

    def attempts(self, idempotency_key: str) -> list[dict[str, object]]:
        prefix = f"{self.prefix}/by-key/{_key_path(idempotency_key)}/attempt-"
        found = []
        for key in self.store.list_keys(prefix):
            with self.store.get(key) as stream:
                found.append(json.loads(stream.read()))
        return sorted(found, key=lambda a: int(str(a["attempt"])))
