"""``trainmq.queue.sqs``: the queue contract over a remote endpoint, and the CLI's --backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import trainmq
from tests.server.conftest import ServerProcess
from trainmq.cli.exit_codes import ExitCode


def test_client_over_a_remote_trainmq_serve(server: ServerProcess) -> None:
    with trainmq.client(server.url) as sqs:
        dlq = sqs.create_queue(QueueName="remote-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        url = sqs.create_queue(
            QueueName="remote-jobs",
            Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": 1}
            )},
        )["QueueUrl"]
        assert url.startswith(server.url) and url.endswith("/remote-jobs")
        sent = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "first",
             "MessageAttributes": {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}},
            {"Id": "b", "MessageBody": "second"},
        ])
        assert [e["Id"] for e in sent["Successful"]] == ["a", "b"]
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0,
        )["Messages"]
        bodies = {m["Body"]: m for m in received}
        assert set(bodies) == {"first", "second"}
        assert bodies["first"]["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\xff"
        assert bodies["first"]["Attributes"] == {"ApproximateReceiveCount": "1"}
        # maxReceiveCount 1: the next receive dead-letters both, through the remote engine.
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None
        counts = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "2"
        sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]
        assert [u.rsplit("/", 1)[1] for u in sources] == ["remote-jobs"]
        with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
            sqs.get_queue_url(QueueName="no-such-queue")
        assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_remote_errors_keep_their_codes(server: ServerProcess) -> None:
    with trainmq.client(server.url) as sqs:
        url = sqs.create_queue(QueueName="remote-purge")["QueueUrl"]
        sqs.purge_queue(QueueUrl=url)
        with pytest.raises(trainmq.SQSError) as caught:
            sqs.purge_queue(QueueUrl=url)
        assert caught.value.response["Error"]["Code"] == (
            "AWS.SimpleQueueService.PurgeQueueInProgress"
        )


def test_unreachable_endpoint_is_a_storage_error() -> None:
    from tests.server.conftest import free_port

    with trainmq.client(f"http://127.0.0.1:{free_port()}") as sqs, pytest.raises(
        trainmq.TrainmqError, match="unavailable"
    ):
        sqs.list_queues()


def test_cli_backend_option(server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "TRAINMQ_BACKEND": server.url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trainmq", *args], capture_output=True, text=True, env=env,
            timeout=60,
        )

    assert cli("queue", "create", "cli-remote").returncode == ExitCode.OK
    assert cli("send", "cli-remote", "over http").returncode == ExitCode.OK
    received = cli("receive", "cli-remote", "--json", "--delete")
    assert received.returncode == ExitCode.OK
    assert [m["Body"] for m in json.loads(received.stdout)["Messages"]] == ["over http"]
    both = cli("stats", "--db", str(tmp_path / "q.db"))
    assert both.returncode == ExitCode.USAGE
    assert "either --db or --backend" in both.stderr
