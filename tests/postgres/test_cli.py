"""``trainmq`` commands on PostgreSQL: ``--db``, ``--backend``, ``TRAINMQ_BACKEND`` and
``trainmq serve --db postgresql://...``, with the password never printed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from tests.postgres.support import fresh_schema
from tests.worker.conftest import wait_for
from trainmq.cli.exit_codes import ExitCode
from trainmq.cli.main import app

SECRET = "pw-not-to-print"  # the test server trusts local connections: any password works


@pytest.fixture
def address() -> Iterator[str]:
    with fresh_schema("cli") as url:
        yield url.replace("postgres@", f"postgres:{SECRET}@")


def test_queue_commands_take_db_backend_and_the_environment(address: str) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["queue", "create", "jobs", "--db", address])
    assert created.exit_code == ExitCode.OK, created.stderr
    sent = runner.invoke(app, ["send", "jobs", "hello"], env={"TRAINMQ_BACKEND": address})
    assert sent.exit_code == ExitCode.OK, sent.stderr
    got = runner.invoke(app, ["receive", "jobs", "--json", "--backend", address])
    assert got.exit_code == ExitCode.OK, got.stderr
    assert [m["Body"] for m in json.loads(got.stdout)["Messages"]] == ["hello"]
    # A read-only command takes a postgresql:// address from TRAINMQ_DB: only SQLite
    # files that do not exist are refused.
    listed = runner.invoke(app, ["queue", "list"], env={"TRAINMQ_DB": address})
    assert listed.exit_code == ExitCode.OK, listed.stderr
    assert listed.stdout.strip().endswith("/jobs")
    for result in (created, sent, got, listed):
        assert SECRET not in result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_on_postgres(address: str, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "trainmq", "serve", "--port", str(port), "--no-console"],
            env={**os.environ, "TRAINMQ_DB": address},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )

        def up() -> bool:
            assert server.poll() is None, log.read_text()
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, 30, "the server")
        url = sqs.create_queue(QueueName="served")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="over http")
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in messages] == ["over http"]
        sqs.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert SECRET not in log.read_text()
    assert server.returncode == 0, log.read_text()
