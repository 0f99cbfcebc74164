"""The pipeline end to end, on real ``trainmq worker`` processes: prepare -> train -> evaluate.

One set of workers serves the module: a prepare worker (two handlers), a train
worker and an evaluate worker, on an embedded queue database and a local store.
Every wait is a bounded poll.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.worker.conftest import wait_for
from trainmq.store import BlobStore
from trainmq.training.dataset import read_manifest
from trainmq.training.local import LocalPipeline
from trainmq.training.locations import key_of
from trainmq.training.messages import DatasetRef, ModelConfig, TrainRequest
from trainmq.training.pipeline import manifest_ref
from trainmq.training.prepare import prepare
from trainmq.training.runs import RunRegistry

from .conftest import tiny_requests, train_request


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    root = tmp_path_factory.mktemp("pipeline")
    env = {"TRAINMQ_STALE_AFTER": "3", "TRAINMQ_BEAT_EVERY": "0.5"}
    with LocalPipeline(root, train_visibility=5, env=env) as running:
        running.start_worker("prepare", concurrency=2)
        running.start_worker("train")
        running.start_worker("evaluate")
        yield running


@pytest.fixture(scope="module")
def dataset(pipeline: LocalPipeline) -> DatasetRef:
    """The tiny dataset, prepared by the prepare worker (fan-out, one message per file)."""
    requests = tiny_requests(pipeline.store)
    for request in requests:
        pipeline.send("prepare", request)
    ref = wait_for(lambda: manifest_ref(pipeline.store, requests[0]), 60, "the manifest")
    assert isinstance(ref, DatasetRef)
    return ref


def _completion(pipeline: LocalPipeline, request: TrainRequest) -> dict[str, Any] | None:
    pipeline.check_workers()
    return RunRegistry(pipeline.store).completion(request.idempotency_key)


def _report(store: BlobStore, request: TrainRequest) -> dict[str, Any] | None:
    key = key_of(store, request.output_uri).rstrip("/") + "/evaluation.json"
    if not store.exists(key):
        return None
    with store.get(key) as stream:
        report: dict[str, Any] = json.loads(stream.read())
    return report


def test_prepare_train_evaluate_and_a_duplicate_attaches(
    pipeline: LocalPipeline, dataset: DatasetRef
) -> None:
    store = pipeline.store
    manifest = read_manifest(store, dataset)
    assert len({s.input_sha256 for s in manifest.shards}) == 3  # every input file, one message each

    request = train_request(store, dataset, "e2e", steps=30, checkpoint_every=10)
    pipeline.send("train", request)
    pipeline.send("train", request)  # the same request again: at-least-once delivery's duplicate
    report = wait_for(lambda: _report(store, request), 90, "the evaluation report")
    wait_for(pipeline.idle, 60, "every queue to drain")

    registry = RunRegistry(store)
    runs = [r for r in registry.list_runs() if r.idempotency_key == request.idempotency_key]
    assert len(runs) == 1
    assert len(registry.attempts(request.idempotency_key)) == 1  # no second run, no second attempt
    completion = registry.completion(request.idempotency_key)
    assert completion is not None and completion["steps"] == 30
    kinds = [e.event for e in registry.events(request.idempotency_key)]
    assert kinds[0] == "started" and "completed" in kinds and "evaluated" in kinds
    assert kinds.count("checkpoint") == 3 and "attached" in kinds
    progress = [e for e in registry.events(request.idempotency_key) if e.event == "progress"]
    assert [e.step for e in progress] == sorted(e.step for e in progress) and progress[
        -1
    ].step == 30

    assert report["step"] == 30 and report["dataset_version"] == dataset.manifest_sha256
    assert math.isclose(report["perplexity"], math.exp(report["val_loss"]))
    assert 0 < report["val_loss"] < math.log(512) + 1
    assert pipeline.dead_letters() == {"prepare": 0, "train": 0, "evaluate": 0}


def test_kill_and_resume_gives_bit_identical_weights(
    pipeline: LocalPipeline, dataset: DatasetRef
) -> None:
    store = pipeline.store
    model = ModelConfig(layers=2, width=64, heads=2, context=64)
    uninterrupted = train_request(
        store, dataset, "exact-a", steps=240, checkpoint_every=40, model=model, batch_size=8
    )
    interrupted = train_request(
        store, dataset, "exact-b", steps=240, checkpoint_every=40, model=model, batch_size=8
    )
    pipeline.send("train", uninterrupted)
    reference = wait_for(lambda: _completion(pipeline, uninterrupted), 180, "the first run")

    pipeline.send("train", interrupted)
    checkpoints = key_of(store, interrupted.checkpoint_uri)
    wait_for(
        lambda: store.exists(f"{checkpoints}/step-00000080/COMPLETE.json"), 120, "checkpoint 80"
    )
    for worker in pipeline.running("train"):
        worker.kill()  # SIGKILL, worker and handler process alike
    registry = RunRegistry(store)
    assert registry.completion(interrupted.idempotency_key) is None, "killed too late"
    pipeline.start_worker("train")
    resumed = wait_for(lambda: _completion(pipeline, interrupted), 180, "the resumed run")

    assert resumed["weights_sha256"] == reference["weights_sha256"]
    assert resumed["steps"] == reference["steps"] == 240
    attempts = registry.attempts(interrupted.idempotency_key)
    assert len(attempts) == 2
    events = registry.events(interrupted.idempotency_key)
    resumes = [e for e in events if e.event == "resumed"]
    assert len(resumes) == 1 and resumes[0].attempt == 2 and 80 <= resumes[0].step < 240
    assert resumed["resumed_from"] == resumes[0].step


def test_a_corrupt_shard_dead_letters_with_the_reason(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    store = pipeline.store
    requests = tiny_requests(store, dataset_id="corrupt")
    for request in requests:
        prepare(store, request)
    ref = manifest_ref(store, requests[0])
    assert ref is not None
    manifest = read_manifest(store, ref)
    shard = next(s for s in manifest.shards if s.split == "train")
    key = key_of(store, manifest.locate(shard.path))
    with store.get(key) as stream:
        data = bytearray(stream.read())
    data[10] ^= 0x01
    store.put(key, bytes(data))

    request = train_request(store, ref, "corrupt-run")
    pipeline.send("train", request)
    wait_for(lambda: pipeline.dead_letters()["train"] == 1, 60, "the dead-lettered request")
    (message,) = pipeline.dead_letter_messages("train")
    reason = message["MessageAttributes"]["trainmq.DeadLetterReason"]["StringValue"]
    assert "is corrupt: sha256" in reason and manifest.locate(shard.path) in reason
    assert json.loads(message["Body"])["run_id"] == "corrupt-run"  # the request itself, kept
    events = RunRegistry(store).events(request.idempotency_key)
    assert events[-1].event == "failed" and "corrupt" in (events[-1].message or "")
    _empty_dlq(pipeline, "train")


def test_an_invalid_message_dead_letters_at_once(pipeline: LocalPipeline) -> None:
    url = pipeline.urls[pipeline.layout.queue("train")]
    pipeline.client.send_message(QueueUrl=url, MessageBody='{"kind": "train", "run_id": "x"}')
    wait_for(lambda: pipeline.dead_letters()["train"] == 1, 60, "the dead-lettered message")
    (message,) = pipeline.dead_letter_messages("train")
    reason = message["MessageAttributes"]["trainmq.DeadLetterReason"]["StringValue"]
    assert reason.startswith("invalid TrainRequest:")
    assert message["Body"] == '{"kind": "train", "run_id": "x"}'
    # Delivered once and never retried: the worker logged one permanent failure, first receive.
    log = "\n".join(w.log_path.read_text() for w in pipeline.workers if w.stage == "train")
    last = [line for line in log.splitlines() if " batch queue=train " in line][-1]
    assert re.search(r"dead_lettered=1 receive_counts=\[1\]$", last), last
    _empty_dlq(pipeline, "train")


def _empty_dlq(pipeline: LocalPipeline, stage: str) -> None:
    url = pipeline.urls[pipeline.layout.dlq(stage)]
    for message in pipeline.dead_letter_messages(stage):
        pipeline.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert pipeline.dead_letters()[stage] == 0
