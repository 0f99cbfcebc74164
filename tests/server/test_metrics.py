"""``GET /health`` and the Prometheus text of ``GET /metrics``."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import ServerProcess, StartServer, http

SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> ServerProcess:
    """A server of this module's own: its counters start at zero, whatever other tests sent."""
    return start_module_server()


def metrics(server: ServerProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics by (name, labels), checking the exposition format on the way."""
    answer = http(server.url + "/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in answer.body.decode().splitlines():
        if not line or line.startswith("#"):
            assert not line or line.startswith(("# HELP ", "# TYPE ")), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_health(server: ServerProcess) -> None:
    answer = http(server.url + "/health")
    assert answer.status == 200
    assert json.loads(answer.body) == {"status": "ok"}


def test_queue_depth_gauges_follow_the_queues(server: ServerProcess) -> None:
    client = server.client()
    work = client.create_queue(QueueName="metrics-work")["QueueUrl"]
    other = client.create_queue(QueueName="metrics-other")["QueueUrl"]
    for number in range(5):
        client.send_message(QueueUrl=work, MessageBody=str(number))
    client.send_message(QueueUrl=work, MessageBody="later", DelaySeconds=600)
    client.send_message(QueueUrl=other, MessageBody="x")
    client.receive_message(QueueUrl=work, MaxNumberOfMessages=2, VisibilityTimeout=600)

    samples = metrics(server)
    assert sample(samples, "trainmq_queue_messages", queue="metrics-work") == 3
    assert sample(samples, "trainmq_queue_in_flight", queue="metrics-work") == 2
    assert sample(samples, "trainmq_queue_delayed", queue="metrics-work") == 1
    assert sample(samples, "trainmq_queue_messages", queue="metrics-other") == 1
    assert sample(samples, "trainmq_queue_oldest_message_age_seconds", queue="metrics-work") >= 0

    client.purge_queue(QueueUrl=other)
    assert sample(metrics(server), "trainmq_queue_messages", queue="metrics-other") == 0


def test_dead_letter_gauge(server: ServerProcess) -> None:
    client = server.client()
    dlq = client.create_queue(QueueName="metrics-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 1})
    client.create_queue(QueueName="metrics-source", Attributes={"RedrivePolicy": policy})
    client.send_message(QueueUrl=dlq, MessageBody="dead")
    samples = metrics(server)
    assert sample(samples, "trainmq_queue_dead_letter_messages", queue="metrics-source") == 1


def test_request_counters_by_action_and_error_code(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="metrics-counters")["QueueUrl"]
    before = metrics(server)
    client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(3)]
    )
    client.send_message(QueueUrl=url, MessageBody="one more")
    for _ in range(2):
        with pytest.raises(client.exceptions.QueueDoesNotExist):
            client.get_queue_url(QueueName="metrics-missing")
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    after = metrics(server)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("trainmq_requests_total", action="SendMessage", error="") == 1
    assert grew("trainmq_requests_total", action="SendMessageBatch", error="") == 1
    assert grew("trainmq_requests_total", action="ReceiveMessage", error="") == 1
    assert grew("trainmq_requests_total", action="GetQueueUrl", error="QueueDoesNotExist") == 2
    assert grew("trainmq_requests_total", action="GetQueueUrl", error="") == 0
    assert grew("trainmq_messages_total", action="SendMessageBatch") == 3
    assert grew("trainmq_messages_total", action="SendMessage") == 1
    assert grew("trainmq_messages_total", action="ReceiveMessage") == len(received) == 4


def test_latency_histogram_is_cumulative_and_counts_every_request(server: ServerProcess) -> None:
    client = server.client()
    url = client.create_queue(QueueName="metrics-latency")["QueueUrl"]
    before = metrics(server)
    for _ in range(4):
        client.list_queue_tags(QueueUrl=url)

    samples = metrics(server)
    assert not any(
        name.startswith("trainmq_request_seconds") and ("action", "ListQueueTags") in labels
        for name, labels in before
    )
    buckets = sorted(
        (float("inf") if dict(labels)["le"] == "+Inf" else float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "trainmq_request_seconds_bucket" and dict(labels)["action"] == "ListQueueTags"
    )
    assert len(buckets) > 5
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "buckets must be cumulative"
    assert buckets[-1] == (float("inf"), 4)
    assert sample(samples, "trainmq_request_seconds_count", action="ListQueueTags") == 4
    total = sample(samples, "trainmq_request_seconds_sum", action="ListQueueTags")
    assert 0 < total < 4 * 10


def test_unknown_actions_share_one_series_and_keep_the_format(server: ServerProcess) -> None:
    def actions() -> set[str]:
        return {
            dict(labels)["action"]
            for name, labels in metrics(server)
            if name == "trainmq_requests_total"
        }

    known = actions()
    for number in range(10):
        json_target = f'AmazonSQS.Nope{number}"\\{{é'
        answer = http(
            server.url + "/",
            b"{}",
            {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": json_target},
        )
        assert answer.status == 400
        form = f"Action=Bad{number}%0A%22name%5C".encode()
        answer = http(server.url + "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status == 400
    # metrics() checks every line; fuzzed action names must not add a series each.
    assert len(actions() - known) <= 2
