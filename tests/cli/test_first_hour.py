"""The command line as a newcomer meets it: bad --db, half-created queues, output for scripts."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import trainmq
from trainmq.cli.exit_codes import ExitCode
from trainmq.cli.main import app

runner = CliRunner()


def run(*args: str, db: Path, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--db", str(db)], input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "queues.db"


@pytest.mark.parametrize(
    "args", [("stats",), ("queue", "list"), ("receive", "jobs"), ("queue", "attributes", "jobs")]
)
def test_read_only_commands_do_not_create_a_database(db: Path, args: tuple[str, ...]) -> None:
    typo = db.with_name("qeueus.db")
    code, _, err = run(*args, db=typo)
    assert code == ExitCode.NO_DATABASE
    assert str(typo) in err and "trainmq queue create" in err
    assert len(err.strip().splitlines()) == 1
    assert not typo.exists()


def test_an_impossible_db_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run("queue", "create", "jobs", db=blocker / "sub" / "queues.db")
    assert code == ExitCode.DATABASE_ERROR
    assert "cannot open the queue database" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_queue_names_the_queue_the_database_and_the_fix(db: Path) -> None:
    run("queue", "create", "other", db=db)
    code, _, err = run("send", "jobs", "x", db=db)
    assert code == ExitCode.QUEUE_NOT_FOUND
    assert "'jobs'" in err and str(db) in err and "trainmq queue create jobs" in err


def _names(db: Path) -> list[str]:
    with trainmq.client(db) as sqs:
        return sorted(u.rsplit("/", 1)[1] for u in sqs.list_queues().get("QueueUrls", []))


def test_create_on_an_existing_queue_leaves_no_dead_letter_queue_behind(db: Path) -> None:
    assert run("queue", "create", "x", db=db)[0] == ExitCode.OK
    code, _, err = run("queue", "create", "x", "--dlq", "x-dlq", db=db)
    assert code != ExitCode.OK and "already exists" in err
    assert _names(db) == ["x"]


def test_a_fifo_queue_gets_a_fifo_dead_letter_queue(db: Path) -> None:
    code, _, err = run("queue", "create", "jobs.fifo", "--dlq", "jobs-dlq", db=db)
    assert code == ExitCode.USAGE and "FIFO" in err
    assert not db.exists() or _names(db) == []
    code, out, _ = run("queue", "create", "jobs.fifo", "--with-dlq", "--max-receives", "2", db=db)
    assert code == ExitCode.OK, out
    assert _names(db) == ["jobs-dlq.fifo", "jobs.fifo"]
    with trainmq.client(db) as sqs:
        url = sqs.get_queue_url(QueueName="jobs.fifo")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    policy = json.loads(attrs["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(":jobs-dlq.fifo")
    assert policy["maxReceiveCount"] == 2


def test_with_dlq_names_it_name_dlq(db: Path) -> None:
    assert run("queue", "create", "train", "--with-dlq", db=db)[0] == ExitCode.OK
    assert _names(db) == ["train", "train-dlq"]


def test_json_output_for_scripts(db: Path) -> None:
    run("queue", "create", "jobs", "--with-dlq", db=db)
    run("send", "jobs", "hello", db=db)
    code, out, _ = run("queue", "list", "--json", db=db)
    assert code == ExitCode.OK
    assert [u.rsplit("/", 1)[1] for u in json.loads(out)["QueueUrls"]] == ["jobs", "jobs-dlq"]
    code, out, _ = run("queue", "attributes", "jobs", "--json", db=db)
    policy = json.loads(json.loads(out)["Attributes"]["RedrivePolicy"])  # untruncated
    assert policy["deadLetterTargetArn"].endswith(":jobs-dlq")
    code, out, _ = run("stats", "--json", db=db)
    rows = {row["Queue"]: row for row in json.loads(out)["Queues"]}
    assert rows["jobs"]["Depth"] == 1 and rows["jobs"]["DeadLetterQueue"] == "jobs-dlq"
    assert rows["jobs-dlq"]["DeadLetterQueue"] is None
    code, out, _ = run("receive", "jobs", "--json", "--delete", db=db)
    assert code == ExitCode.OK and json.loads(out)["Messages"][0]["Body"] == "hello"
    code, out, _ = run("receive", "jobs", "--json", db=db)
    assert code == ExitCode.OK and json.loads(out) == {}
    assert run("receive", "jobs", db=db)[0] == ExitCode.NO_MESSAGES


def test_send_from_stdin_drops_only_the_final_newline(db: Path) -> None:
    run("queue", "create", "q", db=db)
    run("send", "q", "-", db=db, input='{"run": 1}\n\n')
    _, out, _ = run("receive", "q", "--json", db=db)
    assert json.loads(out)["Messages"][0]["Body"] == '{"run": 1}\n'


def test_number_and_binary_attributes(db: Path) -> None:
    run("queue", "create", "q", db=db)
    blob = base64.b64encode(b"\x00\xff").decode()
    code, _, err = run(
        "send", "q", "x", "-a", "shard:Number=7", "-a", f"raw:Binary={blob}", "-a", "k=v", db=db
    )
    assert code == ExitCode.OK, err
    with trainmq.client(db) as sqs:
        url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
        [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    attributes = message["MessageAttributes"]
    assert attributes["shard"] == {"DataType": "Number", "StringValue": "7"}
    assert attributes["raw"] == {"DataType": "Binary", "BinaryValue": b"\x00\xff"}
    assert attributes["k"] == {"DataType": "String", "StringValue": "v"}
    code, _, err = run("send", "q", "x", "-a", "raw:Binary=not base64!", db=db)
    assert code == ExitCode.USAGE and "base64" in err


def test_a_body_over_the_limit_goes_through_the_store(db: Path, tmp_path: Path) -> None:
    run("queue", "create", "q", "-a", "MaximumMessageSize=1024", db=db)
    big = "x" * 5000
    assert run("send", "q", big, db=db)[0] == ExitCode.INVALID_REQUEST
    store = str(tmp_path / "store")
    assert run("send", "q", big, "--store", store, db=db)[0] == ExitCode.OK
    code, out, _ = run("receive", "q", "--json", "--delete", "--store", store, db=db)
    assert code == ExitCode.OK and json.loads(out)["Messages"][0]["Body"] == big
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]  # payload deleted


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"trainmq {trainmq.__version__}"


def test_a_command_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    result = runner.invoke(app, ["demo", "--out", "unused"])
    assert result.exit_code == ExitCode.MISSING_DEPENDENCY
    assert result.stderr.strip() == (
        "error: trainmq demo needs the train extra (torch is not installed): "
        "pip install 'trainmq[train]'"
    )


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("queue", "create"),
        ("queue", "list"),
        ("queue", "attributes"),
        ("queue", "purge"),
        ("queue", "delete"),
        ("send",),
        ("receive",),
        ("delete",),
        ("stats",),
        ("serve",),
        ("worker",),
        ("demo",),
        ("package", "lambda"),
    ],
    ids=lambda command: " ".join(command) or "trainmq",
)
def test_help_reads_cleanly(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = result.stdout
    assert "<list[" not in text  # repeatable options name what they take
    assert "[env: " not in text  # typer already shows [env var: ...]
    assert not re.search(r"\{[a-z_]+\}", text)  # arguments in capitals, as in the README
    assert not re.search(r"\w \.(\s|$)", text)  # no space before a full stop


def test_a_remote_backend_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    result = runner.invoke(app, ["queue", "list", "--backend", "http://127.0.0.1:9"])
    assert result.exit_code == ExitCode.MISSING_DEPENDENCY
    assert "pip install 'trainmq[aws]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_address_with_a_host_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stats", "--db", "sqlite://host/queues.db"])
    assert result.exit_code == ExitCode.CONFIGURATION_ERROR
    assert "names a host" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_db_takes_a_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["queue", "create", "q", "--db", "sqlite:///data/q.db"])
    assert result.exit_code == ExitCode.OK
    assert (tmp_path / "data" / "q.db").is_file()
