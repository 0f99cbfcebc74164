"""Permanent failures, FIFO order, startup refusals, and a real aws-lambda-powertools handler."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.worker.conftest import REPO, Env, counts, drain, make_queue, send, wait_for
from trainmq.cli.exit_codes import ExitCode


def test_permanent_failure_raised_dead_letters_at_once(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "poison", max_receives=5)
        dlq = url.replace("/poison", "/poison-dlq")
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"n": 0, "do": "raise_permanent", "reason": "bad schema"}),
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "crawler"}},
        )
        env.start("scripted", "poison")
        # The copy reaches the DLQ first, then the original is deleted: wait for both.
        wait_for(
            lambda: counts(sqs, dlq)[0] == 1 and counts(sqs, url) == (0, 0),
            what="the message in the DLQ and gone from its queue",
        )
        [dead] = drain(sqs, dlq)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes == {
        "origin": "crawler",
        "trainmq.DeadLetterReason": "bad schema",
        "trainmq.SourceQueue": arn["Attributes"]["QueueArn"],
        "trainmq.SourceMessageId": sent["MessageId"],
    }
    assert dead["MessageId"] != sent["MessageId"]
    assert [e["receives"] for e in env.log.entries()] == [1]


def test_permanent_failure_per_item(any_env: Env) -> None:
    with any_env.client() as sqs:
        url = make_queue(sqs, "items", max_receives=5)
        dlq = url.replace("/items", "/items-dlq")
        send(sqs, url, [
            {"n": 0}, {"n": 1, "do": "permanent", "reason": "unparseable"}, {"n": 2},
        ])
        any_env.start("scripted", "items", "--report-batch-item-failures")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
        [dead] = drain(sqs, dlq)
    assert json.loads(dead["Body"])["n"] == 1
    assert dead["MessageAttributes"]["trainmq.DeadLetterReason"]["StringValue"] == "unparseable"
    assert sorted(any_env.log.numbers()) == [0, 1, 2]


def test_fifo_groups_stay_in_order_under_concurrency(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "ordered.fifo", visibility=1, fifo=True, max_receives=5)
        for group in "abc":
            bodies = [
                {"n": f"{group}{i}", "do": "fail" if i == 1 else "ok", "first": True}
                for i in range(8)
            ]
            for body in bodies:
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body), MessageGroupId=group)
        env.start(
            "scripted", "ordered.fifo", "--concurrency", "3", "--batch-size", "4",
            "--report-batch-item-failures", "--timeout", "1",
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), timeout=30, what="the queue to empty")
    last_run: dict[str, list[str]] = defaultdict(list)
    for entry in env.log.entries():  # in the order the handlers ran them
        sequence = last_run[entry["group"]]
        if entry["n"] in sequence:
            sequence.remove(entry["n"])
        sequence.append(entry["n"])
    for group in "abc":
        assert last_run[group] == [f"{group}{i}" for i in range(8)]
    retried = sorted(e["n"] for e in env.log.entries() if e["receives"] > 1)
    assert {"a1", "a2", "b1", "b2", "c1", "c2"} <= set(retried)  # failure + rest of batch


def test_powertools_batch_processor_runs_unchanged(any_env: Env) -> None:
    with any_env.client() as sqs:
        url = make_queue(sqs, "powertools", visibility=1, max_receives=5)
        send(sqs, url, [{"n": i, "do": "fail" if i in (2, 5) else "ok"} for i in range(8)])
        any_env.start("powertools", "powertools", "--report-batch-item-failures", "--timeout", "1")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    handled = sorted((e["n"], e["receives"]) for e in any_env.log.entries())
    assert handled == sorted([(i, 1) for i in range(8)] + [(2, 2), (5, 2)])


def _worker(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainmq", "worker", *args, "--db", str(tmp_path / "queues.db")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )


def test_refuses_a_visibility_timeout_below_the_function_timeout(env: Env) -> None:
    with env.client() as sqs:
        make_queue(sqs, "short", visibility=60)
    result = _worker(env.tmp_path, "tests.worker.handlers:scripted", "--queue", "short",
                     "--timeout", "300")
    assert result.returncode == ExitCode.CONFIGURATION_ERROR
    assert result.stderr.strip() == (
        "error: Queue visibility timeout: 60 seconds is less than Function timeout: 300 seconds"
    )


def test_warns_below_six_times_the_function_timeout(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "tight", visibility=10)
        send(sqs, url, [{"n": 1}])
        worker = env.start("scripted", "tight", "--timeout", "5")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    assert (
        "visibility timeout 10 s is less than 6 × the function timeout 5 s = 30 s"  # noqa: RUF001
        in worker.output()
    )


def test_refuses_a_queue_without_a_dead_letter_queue(env: Env) -> None:
    with env.client() as sqs:
        make_queue(sqs, "nodlq", max_receives=None)
    refused = _worker(env.tmp_path, "tests.worker.handlers:scripted", "--queue", "nodlq")
    assert refused.returncode == ExitCode.CONFIGURATION_ERROR
    assert "no dead-letter queue" in refused.stderr and "--no-dlq" in refused.stderr
    with env.client() as sqs:
        url = sqs.get_queue_url(QueueName="nodlq")["QueueUrl"]
        send(sqs, url, [{"n": 1}])
        env.start("scripted", "nodlq", "--no-dlq")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")


def test_user_mistakes_are_one_line_and_a_named_code(env: Env) -> None:
    with env.client() as sqs:
        make_queue(sqs, "jobs")
    cases = [
        (("tests.worker.broken_handler:handle", "--queue", "jobs"), ExitCode.HANDLER_ERROR,
         "missing dependency"),
        (("tests.worker.handlers:scripted", "--queue", "missing"), ExitCode.QUEUE_NOT_FOUND,
         "does not exist"),
        (("tests.worker.handlers:scripted", "--queue", "jobs", "--batch-size", "11"),
         ExitCode.CONFIGURATION_ERROR, "--batch-size"),
        (("no-colon", "--queue", "jobs"), ExitCode.CONFIGURATION_ERROR, "MODULE:FUNCTION"),
        (("tests.worker.handlers:scripted", "--queue", "jobs", "--filter", "{bad"),
         ExitCode.CONFIGURATION_ERROR, "--filter"),
    ]
    for args, code, text in cases:
        result = _worker(env.tmp_path, *args)
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert text in result.stderr, result.stderr
