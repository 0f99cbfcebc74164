"""Realistic console state for tests and the README screenshot: queues with traffic,
a dead-letter queue with both kinds of dead letters, and training runs."""

from __future__ import annotations

import json
import math
import random
from typing import Any

from trainmq.store import BlobStore
from trainmq.training.messages import TrainingEvent
from trainmq.training.runs import RunRegistry

DATASET_SHA = "9f3c2b7a41d08e5c6b1f0a9d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c"


def _redrive(client: Any, dlq_url: str, max_receives: int) -> str:
    arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    return json.dumps(
        {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": max_receives}
    )


def seed_queues(client: Any) -> dict[str, str]:
    """Queues ``train-requests`` (DLQ ``train-requests-dlq``), ``prepare-requests`` and
    ``eval-requests``; two messages dead-lettered by receive count, one by a worker."""
    dlq = client.create_queue(QueueName="train-requests-dlq")["QueueUrl"]
    train = client.create_queue(
        QueueName="train-requests",
        Attributes={"RedrivePolicy": _redrive(client, dlq, 2), "VisibilityTimeout": "900"},
    )["QueueUrl"]
    prepare = client.create_queue(QueueName="prepare-requests")["QueueUrl"]
    evaluate = client.create_queue(QueueName="eval-requests")["QueueUrl"]
    for index in range(2):
        body = {"kind": "train", "run_id": f"poison-{index}", "dataset": {"broken": True}}
        client.send_message(QueueUrl=train, MessageBody=json.dumps(body))
    for _ in range(2):  # receive both twice without deleting: the third receive dead-letters
        client.receive_message(QueueUrl=train, MaxNumberOfMessages=10, VisibilityTimeout=0)
    client.receive_message(QueueUrl=train, MaxNumberOfMessages=10, VisibilityTimeout=0)
    train_arn = client.get_queue_attributes(QueueUrl=train, AttributeNames=["QueueArn"])
    client.send_message(
        QueueUrl=dlq,
        MessageBody='{"kind": "train", "run_id": "r-bad", "schema_version": 7}',
        MessageAttributes={
            "trainmq.DeadLetterReason": {
                "DataType": "String",
                "StringValue": "schema_version 7 is not supported (this trainmq reads 1)",
            },
            "trainmq.SourceQueue": {
                "DataType": "String",
                "StringValue": train_arn["Attributes"]["QueueArn"],
            },
        },
    )
    for shard in range(12):
        client.send_message(
            QueueUrl=prepare,
            MessageBody=json.dumps(
                {"kind": "prepare", "dataset_id": "wiki-2026", "input": f"raw/part-{shard:03d}"}
            ),
        )
    client.receive_message(QueueUrl=prepare, MaxNumberOfMessages=3, VisibilityTimeout=600)
    client.send_message(QueueUrl=evaluate, MessageBody='{"kind": "evaluate"}', DelaySeconds=300)
    for index in range(3):
        client.send_message(
            QueueUrl=train, MessageBody=json.dumps({"kind": "train", "run_id": f"r-{20 + index}"})
        )
    return {"train": train, "dlq": dlq, "prepare": prepare, "eval": evaluate}


def _train_request(store: BlobStore, run_id: str, steps: int) -> str:
    base = store.address.rstrip("/")
    return json.dumps(
        {
            "kind": "train",
            "schema_version": 1,
            "run_id": run_id,
            "idempotency_key": f"train-{run_id}",
            "dataset": {
                "manifest_uri": f"{base}/datasets/wiki-2026/manifest.json",
                "manifest_sha256": DATASET_SHA,
            },
            "model": {"layers": 4, "width": 256, "heads": 4, "context": 256},
            "optimizer": {
                "name": "adamw",
                "learning_rate": 0.0003,
                "batch_size": 32,
                "steps": steps,
            },
            "checkpoint_uri": f"{base}/runs/{run_id}/checkpoints",
            "output_uri": f"{base}/runs/{run_id}/model",
        }
    )


def _loss(step: int, rng: random.Random) -> float:
    return 2.1 + 6.2 * math.exp(-step / 260) + rng.gauss(0, 0.04)


def seed_run(
    store: BlobStore,
    run_id: str,
    now: float,
    *,
    steps: int = 1500,
    reached: int = 1500,
    killed_at: int | None = 740,
    resume_from: int = 600,
    finished: bool = True,
) -> str:
    """A run of ``steps`` steps: attempt 1 killed at ``killed_at`` (last checkpoint at
    ``resume_from``), attempt 2 resumed and reached ``reached``; completed and evaluated
    when ``finished``.  Returns the run's idempotency key."""
    registry = RunRegistry(store)
    key = f"train-{run_id}"
    base = store.address.rstrip("/")
    rng = random.Random(run_id)
    per_step = 0.9
    # attempt 2 starts 200 s after attempt 1 stopped, and replays the steps after the checkpoint
    offset = 0.0 if killed_at is None else (killed_at - resume_from) * per_step + 200
    start = now - reached * per_step - offset - 120
    registry.register(run_id, key, _train_request(store, run_id, steps), start)
    seq = 0

    def record(event: str, attempt: int, step: int, **fields: Any) -> None:
        nonlocal seq
        seq += 1
        at = start + step * per_step + (offset if attempt > 1 else 0)
        registry.record_event(
            key,
            seq,
            TrainingEvent(
                run_id=run_id,
                event=event,
                attempt=attempt,
                at=at,
                step=step,
                total_steps=steps,
                **fields,  # type: ignore[arg-type]
            ),
        )

    def train(attempt: int, first: int, last: int) -> None:
        for step in range(first, last + 1, 10):
            record(
                "progress",
                attempt,
                step,
                train_loss=round(_loss(step, rng), 4),
                tokens=step * 32 * 256,
            )
            if step and step % 250 == 0:
                record("progress", attempt, step, val_loss=round(_loss(step, rng) + 0.12, 4))
            if step and step % 200 == 0:
                uri = f"{base}/runs/{run_id}/checkpoints/step-{step:06d}.pt"
                store.put(uri[len(base) + 1 :], b"checkpoint " + str(step).encode())
                record("checkpoint", attempt, step, checkpoint_uri=uri)

    registry.acquire(key, start, "worker-a/4211", stale_after=120)
    record("started", 1, 0, message="training from scratch")
    if killed_at is None:
        train(1, 0, reached)
        registry.beat(key, 1, now)
    else:
        train(1, 0, killed_at)
        registry.beat(key, 1, start + killed_at * per_step)
        registry.acquire(
            key,
            start + killed_at * per_step + 200,
            "worker-b/5120",
            stale_after=120,
            resumed_from_step=resume_from,
        )
        record("resumed", 2, resume_from, message=f"resumed from checkpoint step {resume_from}")
        train(2, resume_from + 10, reached)
        registry.beat(key, 2, now if not finished else start + reached * per_step + offset)
    if finished:
        attempt = 1 if killed_at is None else 2
        report_key = f"runs/{run_id}/eval/report.json"
        final = round(_loss(reached, rng) + 0.1, 4)
        store.put(
            report_key,
            json.dumps(
                {
                    "run_id": run_id,
                    "val_loss": final,
                    "perplexity": round(math.exp(final), 2),
                    "tokens": 2_000_000,
                }
            ).encode(),
        )
        record("completed", attempt, reached, train_loss=round(_loss(reached, rng), 4))
        record(
            "evaluated",
            attempt,
            reached,
            val_loss=final,
            message=f"held-out loss; report {base}/{report_key}",
        )
        registry.complete(key, {"run_id": run_id, "final_step": reached})
    return key
