"""The intake stage in process: trainmq's own queue and a local store stand in for SQS and S3."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trainmq
from trainmq.errors import ConfigurationError
from trainmq.store import LocalStore
from trainmq.training.intake import IDEMPOTENCY_KEY, Intake, Routes, forwarded_marker
from trainmq.training.runs import RunRegistry
from trainmq.worker import DEAD_LETTER_REASON, SOURCE_QUEUE

EVENT = Path(__file__).parent / "fixtures" / "sqs_event.json"
QUEUES = ("prepare", "train", "evaluate", "intake-dlq")


def recorded_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT.read_text())
    return event


def records() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = recorded_event()["Records"]
    return found


TRAIN, PREPARE, TRAIN_AGAIN, INVALID, EVALUATE = records()


class Pipeline:
    def __init__(self, root: Path, *, dead_letter: bool = True, fifo_train: bool = False) -> None:
        self.sqs = trainmq.client(root / "queues.db")
        self.urls = {}
        for name in QUEUES:
            queue = f"{name}.fifo" if name == "train" and fifo_train else name
            attributes = {"FifoQueue": "true"} if queue.endswith(".fifo") else {}
            self.urls[name] = self.sqs.create_queue(QueueName=queue, Attributes=attributes)[
                "QueueUrl"
            ]
        self.store = LocalStore(root / "store")
        self.routes = Routes(
            store=str(root / "store"),
            prepare=self.urls["prepare"],
            train=self.urls["train"],
            evaluate=self.urls["evaluate"],
            dead_letter=self.urls["intake-dlq"] if dead_letter else None,
        )
        self.intake = Intake(self.sqs, self.store, self.routes, now=lambda: 1_714_560_000.0)

    def messages(self, queue: str) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.urls[queue],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=0,
        )
        found: list[dict[str, Any]] = response.get("Messages", [])
        return found


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    made = Pipeline(tmp_path)
    yield made
    made.sqs.close()


def test_the_recorded_event_is_shaped_like_aws_sends_it() -> None:
    for record in records():
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert record["eventSource"] == "aws:sqs"
        assert set(record) == {
            "messageId", "receiptHandle", "body", "attributes", "messageAttributes",
            "md5OfBody", "eventSource", "eventSourceARN", "awsRegion",
        }  # fmt: skip


def test_a_batch_is_routed_deduplicated_and_dead_lettered(pipeline: Pipeline) -> None:
    assert pipeline.intake.handle_batch(recorded_event()) == {"batchItemFailures": []}
    [train] = pipeline.messages("train")
    assert train["Body"] == TRAIN["body"]
    assert train["MessageAttributes"][IDEMPOTENCY_KEY]["StringValue"] == "train/r-17"
    [prepare] = pipeline.messages("prepare")
    assert prepare["Body"] == PREPARE["body"]
    assert prepare["MessageAttributes"][IDEMPOTENCY_KEY]["StringValue"] == "prepare/wiki"
    [evaluate] = pipeline.messages("evaluate")
    assert evaluate["Body"] == EVALUATE["body"]
    [dead] = pipeline.messages("intake-dlq")
    assert dead["Body"] == INVALID["body"]
    reason = dead["MessageAttributes"][DEAD_LETTER_REASON]["StringValue"]
    assert reason.startswith("invalid TrainRequest: dataset: Field required")
    assert dead["MessageAttributes"][SOURCE_QUEUE]["StringValue"] == INVALID["eventSourceARN"]
    run = RunRegistry(pipeline.store).get("train/r-17")
    assert (run.run_id, run.request, run.created_at) == ("r-17", TRAIN["body"], 1_714_560_000.0)
    assert pipeline.store.exists(forwarded_marker("train/r-17"))


def test_a_later_duplicate_attaches_and_is_not_forwarded(pipeline: Pipeline) -> None:
    assert pipeline.intake.handle_record(TRAIN) == "forwarded"
    again = dict(TRAIN_AGAIN, body=TRAIN["body"].replace('"r-17", "idem', '"r-17b", "idem'))
    assert '"r-17b"' in again["body"]
    assert pipeline.intake.handle_record(again) == "duplicate"
    assert pipeline.intake.handle_record(TRAIN) == "duplicate"
    assert len(pipeline.messages("train")) == 1
    assert RunRegistry(pipeline.store).get("train/r-17").run_id == "r-17"


def test_a_run_registered_but_never_forwarded_is_forwarded_by_its_redelivery(
    pipeline: Pipeline,
) -> None:
    # The first delivery registered the run and died before sending it on.
    RunRegistry(pipeline.store).register("r-17", "train/r-17", TRAIN["body"], 1.0)
    assert pipeline.intake.handle_record(TRAIN_AGAIN) == "forwarded"
    assert [m["Body"] for m in pipeline.messages("train")] == [TRAIN["body"]]
    assert pipeline.intake.handle_record(TRAIN_AGAIN) == "duplicate"
    assert len(pipeline.messages("train")) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "message body is not JSON"),
        ('["a list"]', "message body is not a JSON object"),
        ('{"kind": "shred"}', "unknown message kind 'shred'"),
        ('{"kind": "train", "schema_version": 2}', "schema_version 2 is not supported"),
        ('{"kind": "event", "run_id": "r", "event": "started"}', "not 'event'"),
    ],
)
def test_invalid_messages_go_to_the_dead_letter_queue_with_their_reason(
    pipeline: Pipeline, body: str, reason: str
) -> None:
    record = dict(INVALID, body=body)
    assert pipeline.intake.handle_batch({"Records": [record]}) == {"batchItemFailures": []}
    [dead] = pipeline.messages("intake-dlq")
    assert dead["Body"] == body
    assert reason in dead["MessageAttributes"][DEAD_LETTER_REASON]["StringValue"]
    assert not pipeline.messages("train")


def test_without_a_dead_letter_queue_an_invalid_message_is_a_failed_record(
    tmp_path: Path,
) -> None:
    pipeline = Pipeline(tmp_path, dead_letter=False)
    result = pipeline.intake.handle_batch(recorded_event())
    assert result == {"batchItemFailures": [{"itemIdentifier": INVALID["messageId"]}]}
    assert len(pipeline.messages("train")) == 1  # the rest of the batch went through
    pipeline.sqs.close()


def test_a_failed_send_fails_only_its_record(pipeline: Pipeline) -> None:
    pipeline.sqs.delete_queue(QueueUrl=pipeline.urls["prepare"])
    result = pipeline.intake.handle_batch(recorded_event())
    assert result == {"batchItemFailures": [{"itemIdentifier": PREPARE["messageId"]}]}
    assert len(pipeline.messages("train")) == 1
    assert len(pipeline.messages("evaluate")) == 1


def test_a_failed_train_send_leaves_no_marker_so_the_retry_forwards(pipeline: Pipeline) -> None:
    real = pipeline.sqs

    class Refusing:
        def send_message(self, **params: Any) -> dict[str, Any]:
            raise ConnectionError("SQS is unreachable")

    pipeline.intake.sqs = Refusing()
    assert pipeline.intake.handle_batch({"Records": [TRAIN]}) == {
        "batchItemFailures": [{"itemIdentifier": TRAIN["messageId"]}]
    }
    assert not pipeline.store.exists(forwarded_marker("train/r-17"))
    pipeline.intake.sqs = real
    assert pipeline.intake.handle_batch({"Records": [TRAIN_AGAIN]}) == {"batchItemFailures": []}
    assert len(pipeline.messages("train")) == 1


def test_fifo_targets_get_a_group_and_deduplication_id(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, fifo_train=True)
    assert pipeline.intake.handle_record(TRAIN) == "forwarded"
    [message] = pipeline.messages("train")
    assert message["Attributes"]["MessageGroupId"] == "r-17"
    assert (
        message["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"train/r-17").hexdigest()
    )
    pipeline.sqs.close()


def test_routes_name_the_missing_environment_variable() -> None:
    environ = {
        "TRAINMQ_STORE": "s3://bucket/prefix",
        "TRAINMQ_PREPARE_QUEUE_URL": "https://sqs/1/prepare",
        "TRAINMQ_TRAIN_QUEUE_URL": "https://sqs/1/train",
        "TRAINMQ_EVALUATE_QUEUE_URL": "https://sqs/1/evaluate",
    }
    assert Routes.from_environment(environ).dead_letter is None
    for name in environ:
        incomplete = {k: v for k, v in environ.items() if k != name}
        with pytest.raises(ConfigurationError, match=f"^{name} is not set"):
            Routes.from_environment(incomplete)


def test_intake_imports_without_the_training_extras_or_pulumi() -> None:
    blocked = ["torch", "numpy", "tokenizers", "matplotlib", "pulumi", "pulumi_aws", "typer"]
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # importing any of them now raises ImportError\n"
        "import trainmq.training.intake as intake\n"
        "assert callable(intake.handler)\n"
        "import boto3\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
