"""The AWS CLI (``aws sqs ...``) against a real ``trainmq serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import REGION, ServerProcess


def aws(server: ServerProcess, home: Path, *args: str) -> Any:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "cli-key",
        "AWS_SECRET_ACCESS_KEY": "cli-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "sqs",
            *args,
            "--endpoint-url",
            server.url,
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout) if completed.stdout.strip() else None


def test_aws_cli_drives_a_queue(server: ServerProcess, tmp_path: Path) -> None:
    url = aws(
        server,
        tmp_path,
        "create-queue",
        "--queue-name",
        "cli-queue",
        "--attributes",
        "VisibilityTimeout=50",
    )["QueueUrl"]
    assert url.endswith("/cli-queue")

    sent = aws(
        server,
        tmp_path,
        "send-message",
        "--queue-url",
        url,
        "--message-body",
        '{"run": "r-1"}',
        "--message-attributes",
        '{"stage": {"DataType": "String", "StringValue": "prepare"}}',
    )
    assert sent["MessageId"]

    received = aws(
        server,
        tmp_path,
        "receive-message",
        "--queue-url",
        url,
        "--attribute-names",
        "All",
        "--message-attribute-names",
        "All",
    )
    message = received["Messages"][0]
    assert message["MessageId"] == sent["MessageId"]
    assert json.loads(message["Body"]) == {"run": "r-1"}
    assert message["MessageAttributes"]["stage"]["StringValue"] == "prepare"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"

    attributes = aws(
        server, tmp_path, "get-queue-attributes", "--queue-url", url, "--attribute-names", "All"
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == "50"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"

    aws(
        server,
        tmp_path,
        "delete-message",
        "--queue-url",
        url,
        "--receipt-handle",
        message["ReceiptHandle"],
    )
    counts = server.client().get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
