"""What breaks at scale, each fixed: re-sent requests, long runs, corrupt final checkpoints,
plain-text inputs, evaluations of unfinished checkpoints, duplicates that pin a worker."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trainmq.errors import PermanentFailure
from trainmq.queue import LocalClient, open_service
from trainmq.store import open_store
from trainmq.training import handlers
from trainmq.training.checkpoints import CheckpointStore
from trainmq.training.dataset import load_split, read_manifest
from trainmq.training.locations import key_of, uri_of
from trainmq.training.messages import EvaluateRequest, OptimizerConfig
from trainmq.training.pipeline import ingest, manifest_ref, prepare_requests
from trainmq.training.prepare import prepare
from trainmq.training.runs import RunRegistry
from trainmq.training.trainer import Trainer
from trainmq.worker.event import sqs_record

from .conftest import build_dataset, tiny_requests, train_request


def _record(body: str, message_id: str) -> dict[str, Any]:
    return {"Records": [{"messageId": message_id, "body": body}]}


# -- 2: published datasets cannot be corrupted ----------------------------------------------------
def test_a_resent_prepare_with_other_shard_size_cannot_change_a_published_version(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    requests = tiny_requests(store)
    for request in requests:
        prepare(store, request)
    ref = manifest_ref(store, requests[0])
    assert ref is not None
    resent = requests[0].model_copy(update={"shard_tokens": 2048, "val_fraction": 0.2})
    with pytest.raises(PermanentFailure, match="immutable"):
        prepare(store, resent)
    manifest = read_manifest(store, ref)
    for split in ("train", "val"):  # every shard still matches the published version
        assert len(load_split(store, manifest, split)) == manifest.tokens[split]
    assert manifest_ref(store, requests[0]) == ref


# -- 3: a corrupt final checkpoint is rewritten ---------------------------------------------------
def test_a_corrupt_final_checkpoint_is_rewritten(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "final", steps=20, checkpoint_every=10)
    first = Trainer(store, request).run()
    checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri))
    state = next(k for k in store.list_keys(checkpoints.directory(20)) if "/state" in k)
    with store.get(state) as stream:
        data = bytearray(stream.read())
    data[len(data) // 2] ^= 0x40
    store.put(state, bytes(data))
    assert checkpoints.load(20) is None
    # The run is delivered again (its completion was never recorded): it resumes from step
    # 10 and must not name the corrupt checkpoint as its last.
    again = Trainer(store, request).run()
    assert again.resumed_from == 10 and again.checkpoints[-1].endswith("step-00000020")
    assert again.weights_sha256 == first.weights_sha256
    loaded = checkpoints.load(20)
    assert loaded is not None and loaded.state["step"] == 20


# -- 4: long runs continue, they are never dead-lettered -----------------------------------------
class _Context:
    """A Lambda context whose time runs out after ``steps`` questions."""

    def __init__(self, steps: int) -> None:
        self.asked = 0
        self.steps = steps

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return 3_600_000 if self.asked <= self.steps else 1_000


def test_a_run_longer_than_max_receives_invocations_continues_and_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "store")
    dataset = build_dataset(store)
    client = LocalClient(open_service(tmp_path / "queues.db"))
    dlq = client.create_queue(QueueName="train-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": "2"}
    url = client.create_queue(QueueName="train", Attributes={"RedrivePolicy": json.dumps(policy)})[
        "QueueUrl"
    ]
    queue_arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    monkeypatch.setenv("TRAINMQ_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("TRAINMQ_DB", str(tmp_path / "queues.db"))
    monkeypatch.delenv("TRAINMQ_BACKEND", raising=False)
    monkeypatch.setenv("TRAINMQ_STALE_AFTER", "600")  # a released attempt needs no waiting
    monkeypatch.setattr(handlers, "_queues", handlers._Queues())
    request = train_request(store, dataset, "long", steps=30, checkpoint_every=10)
    client.send_message(QueueUrl=url, MessageBody=request.to_json())
    registry = RunRegistry(store)
    invocations = []
    started = time.monotonic()
    while registry.completion(request.idempotency_key) is None:
        assert time.monotonic() - started < 300, "the run did not complete"
        messages = client.receive_message(
            QueueUrl=url, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            continue
        (message,) = messages
        invocations.append(int(message["Attributes"]["ApproximateReceiveCount"]))
        answer = handlers.train({"Records": [sqs_record(message, queue_arn)]}, _Context(6))
        assert answer == {"batchItemFailures": [], "permanentFailures": []}
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(invocations) > 2  # more invocations than maxReceiveCount ...
    assert set(invocations) == {1}  # ... and every one a first receive: no failure counted
    assert registry.completion(request.idempotency_key)["steps"] == 30  # type: ignore[index]
    kinds = [e.event for e in registry.events(request.idempotency_key)]
    assert kinds.count("released") == len(invocations) - 1
    depth = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "0"
    client.close()


# -- 5: same key, other request ----------------------------------------------------------------
def test_the_same_key_with_other_settings_is_a_permanent_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_STORE", str(tmp_path))
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "keyed", steps=10, checkpoint_every=5)
    assert handlers.train(_record(request.to_json(), "m-1"), None)["permanentFailures"] == []
    changed = request.model_copy(
        update={"optimizer": OptimizerConfig(steps=10, batch_size=4, seed=7, weight_decay=0.1)}
    )
    answer = handlers.train(_record(changed.to_json(), "m-2"), None)
    (failure,) = answer["permanentFailures"]
    assert "optimizer.weight_decay" in failure["reason"] and "steps" not in failure["reason"]
    same = request.model_copy(update={"trace_id": "another-trace"})
    assert handlers.train(_record(same.to_json(), "m-3"), None)["permanentFailures"] == []


# -- 6: plain-text inputs ------------------------------------------------------------------------
def _plain_text_dataset(store: Any, text: str, name: str) -> list[Any]:
    source_uri, sha, inputs = ingest(store, name, [(f"{name}.txt", text.encode())])
    return prepare_requests(store, name, source_uri, sha, inputs, vocab_size=512, shard_tokens=4096)


def test_a_plain_text_input_gives_validation_tokens(tmp_path: Path) -> None:
    from trainmq.training.pipeline import _stdlib_sources

    store = open_store(tmp_path)
    texts = []
    for _, source in _stdlib_sources():
        texts.append(source)
        if sum(map(len, texts)) > 300_000:
            break
    text = "\n".join(texts)  # one long document, as every plain-text file is
    (request,) = _plain_text_dataset(store, text, "plain")
    result = prepare(store, request)
    assert result.manifest_uri is not None
    ref = manifest_ref(store, request)
    assert ref is not None
    manifest = read_manifest(store, ref)
    assert manifest.tokens["val"] > 0 and manifest.tokens["train"] > manifest.tokens["val"]


def test_a_dataset_with_an_empty_split_is_not_published(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    (request,) = _plain_text_dataset(store, "print('hello')\n" * 40, "short")
    with pytest.raises(PermanentFailure, match="no validation tokens"):
        prepare(store, request)
    assert manifest_ref(store, request) is None


# -- 8: evaluating a checkpoint still being written ---------------------------------------------
def test_evaluation_waits_for_an_unfinished_checkpoint_and_never_reuses_another_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_STORE", str(tmp_path))
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "ev", steps=20, checkpoint_every=10)
    Trainer(store, request).run()
    checkpoints = CheckpointStore(store, key_of(store, request.checkpoint_uri))
    report_uri = uri_of(store, "runs-data/ev/report.json")

    def evaluation(step: int) -> EvaluateRequest:
        return EvaluateRequest(
            run_id="ev",
            idempotency_key=f"ev/{step}",
            dataset=dataset,
            checkpoint_uri=uri_of(store, checkpoints.directory(step)),
            report_uri=report_uri,
        )

    marker = f"{checkpoints.directory(20)}/COMPLETE.json"
    with store.get(marker) as stream:
        saved = stream.read()
    store.delete(marker)  # step 20 as it is while its state is still being written
    with pytest.raises(handlers.RetryLater):
        handlers.evaluate(_record(evaluation(20).to_json(), "e-1"), None)
    store.put(marker, saved)

    first = handlers.evaluate(_record(evaluation(10).to_json(), "e-2"), None)
    assert first["permanentFailures"] == []
    answer = handlers.evaluate(_record(evaluation(20).to_json(), "e-3"), None)
    (failure,) = answer["permanentFailures"]
    assert "step-00000010" in failure["reason"]
    with store.get(key_of(store, report_uri)) as stream:
        assert json.loads(stream.read())["step"] == 10


# -- 9: a duplicate is acknowledged once attached --------------------------------------------------
def test_a_duplicate_of_a_live_run_is_acknowledged_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_STORE", str(tmp_path))
    monkeypatch.setenv("TRAINMQ_STALE_AFTER", "30")
    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "dup", steps=10)
    registry = RunRegistry(store)
    registry.register("dup", request.idempotency_key, request.to_json(), time.time())
    assert registry.acquire(request.idempotency_key, time.time(), "elsewhere", 30) == 1
    stop = threading.Event()

    def holder() -> None:  # the live attempt, stamping itself alive
        while not stop.wait(0.1):
            registry.beat(request.idempotency_key, 1, time.time())

    threading.Thread(target=holder, daemon=True).start()
    answers: list[dict[str, Any]] = []
    duplicate = threading.Thread(
        target=lambda: answers.append(handlers.train(_record(request.to_json(), "m-dup"), None)),
        daemon=True,
    )
    try:
        duplicate.start()
        duplicate.join(timeout=20)
        assert not duplicate.is_alive(), "the duplicate pinned its worker slot"
    finally:
        stop.set()
    assert answers == [{"batchItemFailures": [], "permanentFailures": []}]
    assert len(registry.attempts(request.idempotency_key)) == 1
    kinds = [e.event for e in registry.events(request.idempotency_key)]
    assert kinds == ["attached"]


# -- smaller ---------------------------------------------------------------------------------
def test_weight_decay_spares_norms_biases_and_embeddings(tmp_path: Path) -> None:
    from trainmq.training.model import GPT

    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "wd", steps=1)
    decayed = request.model_copy(
        update={"optimizer": OptimizerConfig(steps=1, batch_size=4, weight_decay=0.1)}
    )
    model = GPT(decayed.model, 512)
    optimizer = Trainer(store, decayed)._optimizer(model)
    names = {id(p): n for n, p in model.named_parameters()}
    by_decay = {
        group["weight_decay"]: {names[id(p)] for p in group["params"]}
        for group in optimizer.param_groups
    }
    assert by_decay[0.1] and all(
        n.endswith(("qkv.weight", "proj.weight", "fc.weight", "out.weight")) for n in by_decay[0.1]
    )
    spared = by_decay[0.0]
    assert {"tokens.weight", "positions.weight", "ln.weight", "ln.bias"} <= spared
    assert all(
        n.endswith("bias") or ".ln" in n or n.startswith(("tokens", "positions", "ln"))
        for n in spared
    )


def test_evaluation_covers_the_whole_validation_split(tmp_path: Path) -> None:
    from trainmq.training.evaluate import evaluate

    store = open_store(tmp_path)
    dataset = build_dataset(store)
    request = train_request(store, dataset, "whole", steps=2, checkpoint_every=2)
    Trainer(store, request).run()
    report = evaluate(
        store,
        EvaluateRequest(
            run_id="whole",
            idempotency_key="whole/evaluate",
            dataset=dataset,
            checkpoint_uri=request.checkpoint_uri,
            report_uri=uri_of(store, "whole/report.json"),
        ),
    )
    val = load_split(store, read_manifest(store, dataset), "val")
    assert report["windows_evaluated"] == report["windows_total"] == (len(val) - 1) // 32
    assert report["tokens_evaluated"] == report["windows_evaluated"] * 32


def test_a_registered_body_that_leaves_defaults_out_is_the_same_request(tmp_path: Path) -> None:
    from trainmq.training.handlers import check_same_request

    store = open_store(tmp_path)
    request = train_request(store, build_dataset(store), "raw", steps=10)
    raw = json.loads(request.to_json())
    del raw["priority"], raw["schema_version"]  # both at their defaults
    raw["model"] = {"layers": 1, "width": 32, "heads": 2, "context": 32}
    check_same_request(json.dumps(raw), request)  # no failure: the same request
    raw["checkpoint_every"] = 7
    with pytest.raises(PermanentFailure, match="checkpoint_every differ"):
        check_same_request(json.dumps(raw), request)
