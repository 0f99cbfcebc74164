"""The basic flow and failure flows, with real worker processes on both backends."""

from __future__ import annotations

import base64
import urllib.request

from tests.server.conftest import free_port
from tests.worker.conftest import Env, counts, drain, make_queue, send, wait_for


def test_every_message_is_handled_once_and_deleted(any_env: Env) -> None:
    with any_env.client() as sqs:
        url = make_queue(sqs, "jobs")
        ids = send(sqs, url, [{"n": i} for i in range(25)])
        any_env.start("scripted", "jobs", "--concurrency", "2", "--timeout", "5")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    entries = any_env.log.entries()
    assert sorted(e["id"] for e in entries) == sorted(ids)
    assert all(e["batch"] <= 10 and e["receives"] == 1 for e in entries)


def test_whole_batch_fails_on_an_exception_then_dead_letters(any_env: Env) -> None:
    with any_env.client() as sqs:
        url = make_queue(sqs, "flaky", visibility=1, max_receives=2)
        dlq = url.replace("/flaky", "/flaky-dlq")
        ids = send(sqs, url, [{"n": 0, "do": "ok"}, {"n": 1, "do": "raise"}])
        any_env.start("scripted", "flaky", "--timeout", "1", "--batch-size", "10")
        wait_for(lambda: counts(sqs, dlq)[0] == 2, what="both messages in the DLQ")
        assert counts(sqs, url) == (0, 0)
        assert {m["MessageId"] for m in drain(sqs, dlq)} == set(ids)
    # Both were handled on each of the two receives: the good one was not deleted either.
    receives = sorted((e["n"], e["receives"]) for e in any_env.log.entries())
    assert receives == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_partial_failures_retry_only_the_reported_messages(any_env: Env) -> None:
    with any_env.client() as sqs:
        url = make_queue(sqs, "partial", visibility=1, max_receives=5)
        bodies = [{"n": i, "do": "fail" if i % 3 == 0 else "ok", "first": True} for i in range(9)]
        send(sqs, url, bodies)
        any_env.start(
            "scripted", "partial", "--report-batch-item-failures", "--timeout", "1",
            "--batch-size", "10",
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    handled: dict[int, list[int]] = {}
    for entry in any_env.log.entries():
        handled.setdefault(entry["n"], []).append(entry["receives"])
    assert handled == {i: [1, 2] if i % 3 == 0 else [1] for i in range(9)}


def test_malformed_item_failures_fail_the_whole_batch(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "malformed", visibility=1, max_receives=2)
        send(sqs, url, [{"n": 1}, {"n": 2}])
        dlq = url.replace("/malformed", "/malformed-dlq")
        worker = env.start(
            "malformed", "malformed", "--report-batch-item-failures", "--timeout", "1"
        )
        wait_for(lambda: counts(sqs, dlq)[0] == 2, what="both messages in the DLQ")
    assert "invalid_response" in worker.output()


def test_event_and_context_are_lambdas(env: Env) -> None:
    port = free_port()
    with env.client() as sqs:
        url = make_queue(sqs, "probe", visibility=60)
        sqs.send_message(
            QueueUrl=url,
            MessageBody='{"hello": "world"}',
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "train"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
            },
        )
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        env.start("probe", "probe", "--timeout", "7", "--metrics-port", str(port))
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    [entry] = env.log.entries()
    [record] = entry["event"]["Records"]
    assert list(record) == [
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    ]
    assert record["body"] == '{"hello": "world"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn["Attributes"]["QueueArn"]
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "train", "stringListValues": [], "binaryListValues": [],
        "dataType": "String",
    }
    blob = record["messageAttributes"]["blob"]
    assert base64.b64decode(blob["binaryValue"]) == b"\x00\xff"
    context = entry["context"]
    assert context["function_name"] == "trainmq-probe"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:trainmq-probe"
    )
    assert context["memory_limit_in_mb"] == 128
    assert context["log_group_name"] == "/aws/lambda/trainmq-probe"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 6000 < context["remaining_ms"] <= 7000
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'trainmq_worker_batches_total{queue="probe",outcome="success"} 1' in metrics
    assert 'trainmq_worker_messages_total{queue="probe",fate="deleted"} 1' in metrics


def test_filters_delete_what_they_reject(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "filtered")
        send(sqs, url, [
            {"n": 1, "kind": "train"}, {"n": 2, "kind": "eval"}, {"n": 3, "kind": "train"},
            {"n": 4},
        ])
        env.start(
            "scripted", "filtered", "--filter", '{"body": {"kind": ["train"]}}',
            "--filter", '{"body": {"n": [{"numeric": [">", 3]}]}}',
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    assert sorted(env.log.numbers()) == [1, 3, 4]
