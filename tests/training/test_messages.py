"""Message schemas: what validates, what is refused, and how it is refused."""

from __future__ import annotations

import json

import pytest

from trainmq import PermanentFailure
from trainmq.training import (
    DatasetRef,
    EvaluateRequest,
    ModelConfig,
    PrepareRequest,
    TrainingEvent,
    TrainRequest,
    parse_message,
)

SHA = "9f3c" + "0" * 60


def train_request(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "train",
        "schema_version": 1,
        "run_id": "r-17",
        "idempotency_key": "r-17",
        "dataset": {"manifest_uri": "file:///store/datasets/9f3c/manifest.json",
                    "manifest_sha256": SHA},
        "model": {"layers": 2, "width": 64, "heads": 4, "context": 64},
        "optimizer": {"learning_rate": 0.001, "steps": 100, "batch_size": 8},
        "checkpoint_uri": "file:///store/runs/r-17/checkpoints",
        "output_uri": "file:///store/runs/r-17",
    }
    body.update(changes)
    return body


def test_a_train_request_round_trips_through_json() -> None:
    request = parse_message(json.dumps(train_request()))
    assert isinstance(request, TrainRequest)
    assert request.dataset == DatasetRef(
        manifest_uri="file:///store/datasets/9f3c/manifest.json", manifest_sha256=SHA
    )
    assert request.model == ModelConfig(layers=2, width=64, heads=4, context=64)
    again = parse_message(request.to_json())
    assert again == request


def test_every_kind_is_recognised() -> None:
    prepare = PrepareRequest(
        dataset_id="docs", source_uri="file:///in/source.json", source_sha256=SHA,
        input_uri="file:///in/a.txt", output_prefix="file:///out/docs",
        idempotency_key="docs/a.txt",
    )
    evaluate = EvaluateRequest(
        run_id="r-1", idempotency_key="r-1/eval/100",
        dataset=DatasetRef(manifest_uri="s3://b/m.json", manifest_sha256=SHA),
        checkpoint_uri="s3://b/runs/r-1/ckpt-100", report_uri="s3://b/runs/r-1/eval.json",
    )
    event = TrainingEvent(run_id="r-1", event="progress", step=10, train_loss=3.2)
    for message in (prepare, evaluate, event):
        assert parse_message(message.to_json()) == message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"kind": "launch-missiles"}), "unknown message kind"),
        (json.dumps(train_request(schema_version=2)), "schema_version 2"),
        (json.dumps(train_request(run_id="")), "run_id"),
        (json.dumps(train_request(dataset={"manifest_uri": "/tmp/m.json",
                                           "manifest_sha256": SHA})), "dataset.manifest_uri"),
        (json.dumps(train_request(dataset={"manifest_uri": "file:///m.json",
                                           "manifest_sha256": "latest"})),
         "dataset.manifest_sha256"),
        (json.dumps(train_request(model={"width": 100, "heads": 3})), "not divisible"),
        (json.dumps(train_request(optimizer={"learning_rate": -1})), "optimizer.learning_rate"),
        (json.dumps(train_request(surprise=True)), "surprise"),
    ],
)
def test_invalid_bodies_are_permanent_failures(body: str | bytes, fragment: str) -> None:
    with pytest.raises(PermanentFailure) as caught:
        parse_message(body)
    assert fragment in caught.value.reason


def test_expecting_a_kind_refuses_another() -> None:
    event = TrainingEvent(run_id="r-1", event="started").to_json()
    with pytest.raises(PermanentFailure, match="invalid TrainRequest"):
        parse_message(event, expect=TrainRequest)


def test_priority_routes_requests_to_dedicated_workers() -> None:
    from trainmq.training.messages import TrainRequest
    from trainmq.worker.filters import matches_any, parse_pattern

    urgent = parse_pattern('{"body": {"priority": [{"numeric": [">=", 5]}]}}')
    for priority, wanted in ((0, False), (4, False), (5, True), (9, True)):
        request = TrainRequest.model_validate(train_request(priority=priority))
        record = {"body": request.to_json(), "messageAttributes": {}, "attributes": {}}
        assert matches_any([urgent], record) is wanted, priority
