"""The ``trainmq`` command: queue walkthrough, named exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainmq.cli.exit_codes import ExitCode
from trainmq.cli.main import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "queues.db")


def run(*args: str, db: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--db", db], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_walkthrough(db: str) -> None:
    code, out, _ = run("queue", "create", "jobs", "--dlq", "jobs-dlq", "--max-receives", "1",
                       db=db)
    assert code == ExitCode.OK and out.strip().endswith("/jobs")
    code, out, _ = run("send", "jobs", '{"shard": 7}', "--attribute", "kind=tokenize", db=db)
    assert code == ExitCode.OK and len(out.strip()) == 36
    code, out, _ = run("receive", "jobs", "--json", "--visibility", "0", db=db)
    assert code == ExitCode.OK
    [message] = json.loads(out)["Messages"]
    assert message["Body"] == '{"shard": 7}'
    assert message["MessageAttributes"]["kind"]["StringValue"] == "tokenize"
    # maxReceiveCount 1: the next receive dead-letters it.
    code, _, err = run("receive", "jobs", db=db)
    assert code == ExitCode.NO_MESSAGES and "no messages" in err
    code, out, _ = run("stats", db=db)
    assert code == ExitCode.OK
    jobs_line = next(line for line in out.splitlines() if "│ jobs " in line)
    assert "jobs-dlq" in jobs_line and "│ 1 " in jobs_line
    code, out, _ = run("queue", "list", db=db)
    assert [u.rsplit("/", 1)[1] for u in out.split()] == ["jobs", "jobs-dlq"]


def test_send_from_stdin_and_delete_by_handle(db: str) -> None:
    run("queue", "create", "q", db=db)
    code, _, _ = run("send", "q", "-", db=db, input="from stdin")
    assert code == ExitCode.OK
    code, out, _ = run("receive", "q", "--json", db=db)
    [message] = json.loads(out)["Messages"]
    assert message["Body"] == "from stdin"
    code, out, _ = run("delete", "q", message["ReceiptHandle"], db=db)
    assert code == ExitCode.OK
    code, out, _ = run("queue", "attributes", "q", db=db)
    row = next(line for line in out.splitlines() if "ApproximateNumberOfMessagesNotVisible" in line)
    assert row.replace("│", " ").split() == ["ApproximateNumberOfMessagesNotVisible", "0"]


def test_attributes_set_and_purge_and_delete(db: str) -> None:
    run("queue", "create", "q", db=db)
    code, out, _ = run("queue", "attributes", "q", "--set", "VisibilityTimeout=120", db=db)
    assert code == ExitCode.OK
    assert any("VisibilityTimeout" in line and "120" in line for line in out.splitlines())
    run("send", "q", "x", db=db)
    assert run("queue", "purge", "q", db=db)[0] == ExitCode.OK
    assert run("receive", "q", db=db)[0] == ExitCode.NO_MESSAGES
    code, _, err = run("queue", "purge", "q", db=db)
    assert code == ExitCode.INVALID_REQUEST and "PurgeQueueInProgress" in err
    assert run("queue", "delete", "q", db=db)[0] == ExitCode.OK
    assert run("queue", "list", db=db)[1].strip() == ""


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("send", "missing", "x"), ExitCode.QUEUE_NOT_FOUND, "does not exist"),
        (("receive", "q", "--max", "11"), ExitCode.INVALID_REQUEST, "MaxNumberOfMessages"),
        (("send", "q", "x", "--delay", "901"), ExitCode.INVALID_REQUEST, "DelaySeconds"),
        (("queue", "create", "bad name"), ExitCode.INVALID_REQUEST, "alphanumeric"),
        (("queue", "attributes", "q", "--set", "Nope"), ExitCode.USAGE, "NAME=VALUE"),
        (("queue", "attributes", "q", "--set", "Colour=red"), ExitCode.INVALID_REQUEST,
         "InvalidAttributeName"),
    ],
)
def test_user_mistakes_get_one_line_and_a_named_code(
    db: str, args: tuple[str, ...], code: ExitCode, fragment: str
) -> None:
    run("queue", "create", "q", db=db)
    exit_code, _, err = run(*args, db=db)
    assert exit_code == code
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_foreign_database_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not a database")
    env = {**os.environ, "TRAINMQ_DB": str(path)}
    proc = subprocess.run(
        [sys.executable, "-m", "trainmq", "stats"], capture_output=True, text=True, env=env,
        timeout=60,
    )
    assert proc.returncode == ExitCode.DATABASE_ERROR
    assert "not a trainmq database" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert path.read_bytes() == b"\xff\xd8\xff\xe0 not a database"
