"""Fencing: a trainer paused while another delivery took its run over writes nothing more.

The pause is real: the first trainer is a separate process, stopped with SIGSTOP
(alive but silent, as a host in a long GC pause or a swapped-out VM) long enough to
be taken over, then resumed with SIGCONT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.worker.conftest import wait_for
from trainmq.store import BlobStore, open_store
from trainmq.training import handlers
from trainmq.training.locations import key_of
from trainmq.training.runs import RunRegistry, key_hash

from .conftest import build_dataset, train_request

REPO = Path(__file__).resolve().parents[2]


def _snapshot(store: BlobStore, prefixes: list[str]) -> dict[str, str]:
    """Every key under ``prefixes`` with its etag (changes whenever a key is rewritten)."""
    return {k: store.head(k).etag for p in prefixes for k in store.list_keys(p)}


def test_a_superseded_trainer_stops_at_its_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    store = open_store(root)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "fenced", steps=400, checkpoint_every=20)
    env = {
        **os.environ,
        "TRAINMQ_STORE": str(root),
        "TRAINMQ_STALE_AFTER": "3",
        "TRAINMQ_BEAT_EVERY": "0.2",
        "TRAINMQ_CACHE": str(tmp_path / "cache"),
    }
    for name, value in env.items():
        if name.startswith("TRAINMQ_"):
            monkeypatch.setenv(name, value)
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.training.train_once", request.to_json(), "message-a"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    checkpoints = key_of(store, request.checkpoint_uri)
    try:
        wait_for(lambda: store.exists(f"{checkpoints}/step-00000020/COMPLETE.json"), 120, "step 20")
        first.send_signal(signal.SIGSTOP)  # alive, but silent: no steps, no stamps
        # A duplicate delivery finds the attempt silent for longer than stale-after, takes
        # the run over as attempt 2 and trains it to the end.
        answer = handlers.train(
            {"Records": [{"messageId": "message-b", "body": request.to_json()}]}, None
        )
        assert answer == {"batchItemFailures": [], "permanentFailures": []}
        registry = RunRegistry(store)
        done = registry.completion(request.idempotency_key)
        assert done is not None and done["attempt"] == 2 and done["steps"] == 400
        run_prefixes = ["runs-data/fenced/", f"runs/{key_hash(request.idempotency_key)}/"]
        before = _snapshot(store, run_prefixes)
        first.send_signal(signal.SIGCONT)
        output, _ = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
    # The first trainer woke up, found itself superseded and stopped: no checkpoint, marker,
    # output, event or completion of it was written after the takeover.
    assert json.loads(output.strip().splitlines()[-1]) == {
        "batchItemFailures": [],
        "permanentFailures": [],
    }
    after = _snapshot(store, run_prefixes)
    # Nothing of the run changed; the only thing that may appear is an event the first
    # trainer had begun to write when it was stopped (made before the takeover).
    taken_over = float(RunRegistry(store).attempts(request.idempotency_key)[1]["started_at"])
    added = {k for k in after if k not in before}
    assert {k: after[k] for k in before} == before
    for key in added:
        assert "/events/000001-" in key, key
        with store.get(key) as stream:
            assert json.loads(stream.read())["at"] < taken_over, key
    events = RunRegistry(store).events(request.idempotency_key)
    assert [e.event for e in events if e.attempt == 1 and e.event == "completed"] == []
    assert [e.attempt for e in events if e.event == "completed"] == [2]
