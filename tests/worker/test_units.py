"""The worker's rules in isolation: filters, response rules, configuration, heartbeats, backoff."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainmq.clock import FakeClock
from trainmq.errors import ConfigurationError
from trainmq.worker import WorkerConfig
from trainmq.worker.filters import matches_any, parse_pattern
from trainmq.worker.heartbeat import Heartbeat
from trainmq.worker.outcome import judge
from trainmq.worker.pool import Invocation
from trainmq.worker.settle import Settler


def record(message_id: str, body: Any = None, group: str | None = None) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": "1"}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {"messageId": message_id, "body": json.dumps(body or {}), "attributes": attributes}


@pytest.mark.parametrize(
    ("pattern", "body", "expected"),
    [
        ({"body": {"kind": ["train"]}}, {"kind": "train"}, True),
        ({"body": {"kind": ["train"]}}, {"kind": "eval"}, False),
        ({"body": {"kind": [{"prefix": "tr"}]}}, {"kind": "train"}, True),
        ({"body": {"kind": [{"suffix": "al"}]}}, {"kind": "eval"}, True),
        ({"body": {"kind": [{"equals-ignore-case": "TRAIN"}]}}, {"kind": "train"}, True),
        ({"body": {"kind": [{"anything-but": ["eval", "test"]}]}}, {"kind": "train"}, True),
        ({"body": {"kind": [{"anything-but": "train"}]}}, {"kind": "train"}, False),
        ({"body": {"kind": [{"anything-but": {"prefix": "ev"}}]}}, {"kind": "eval"}, False),
        ({"body": {"size": [{"numeric": [">", 0, "<=", 5]}]}}, {"size": 5}, True),
        ({"body": {"size": [{"numeric": [">", 0, "<=", 5]}]}}, {"size": 6}, False),
        ({"body": {"size": [{"numeric": ["=", 3]}]}}, {"size": 3.0}, True),
        ({"body": {"run": [{"exists": True}]}}, {"run": "r-1"}, True),
        ({"body": {"run": [{"exists": False}]}}, {"run": "r-1"}, False),
        ({"body": {"run": [{"exists": False}]}}, {}, True),
        ({"body": {"tags": ["gpu"]}}, {"tags": ["cpu", "gpu"]}, True),
        ({"body": {"meta": {"lang": ["en"]}}}, {"meta": {"lang": "en"}}, True),
        ({"body": {"meta": {"lang": ["en"]}}}, {"meta": "en"}, False),
        ({"body": {"n": [1]}}, {"n": True}, False),
    ],
)
def test_filter_patterns(pattern: dict[str, Any], body: Any, expected: bool) -> None:
    parsed = parse_pattern(json.dumps(pattern))
    assert matches_any([parsed], record("m", body)) is expected


def test_plain_text_bodies_and_any_of_several_patterns() -> None:
    plain = {"messageId": "m", "body": "hello", "attributes": {}}
    assert matches_any([parse_pattern('{"body": ["hello"]}')], plain)
    patterns = [parse_pattern('{"body": {"a": [1]}}'), parse_pattern('{"body": {"b": [2]}}')]
    assert matches_any(patterns, record("m", {"b": 2}))
    assert not matches_any(patterns, record("m", {"c": 3}))


@pytest.mark.parametrize(
    "text", ["{", "[]", "{}", '{"body": "x"}', '{"body": {"k": [{"nope": 1}]}}',
             '{"body": {"k": [{"numeric": [">"]}]}}', '{"body": {"k": []}}'],
)
def test_malformed_patterns_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="--filter"):
        parse_pattern(text)


RECORDS = [record("a"), record("b"), record("c")]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": None}, []),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["b"]),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, ["a", "b", "c"]),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, ["a", "b", "c"]),
        ({"batchItemFailures": [{"itemId": "b"}]}, ["a", "b", "c"]),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ["a", "b", "c"]),
        ({"batchItemFailures": "b"}, ["a", "b", "c"]),
        ("not an object", ["a", "b", "c"]),
    ],
)
def test_report_batch_item_failures_rules(response: Any, failed: list[str]) -> None:
    verdict = judge(Invocation("result", response=response), RECORDS,
                    report_item_failures=True, fifo=False)
    assert verdict.failed == failed
    assert verdict.succeeded == [i for i in "abc" if i not in failed]


def test_without_the_flag_only_an_exception_fails() -> None:
    ok = judge(Invocation("result", response={"batchItemFailures": [{"itemIdentifier": "a"}]}),
               RECORDS, report_item_failures=False, fifo=False)
    assert ok.succeeded == ["a", "b", "c"]
    for kind in ("error", "timeout", "crash"):
        assert judge(Invocation(kind), RECORDS, report_item_failures=False,
                     fifo=False).failed == ["a", "b", "c"]


def test_permanent_failures_and_fifo_groups() -> None:
    response = {"permanentFailures": [{"itemIdentifier": "b", "reason": "bad"}]}
    verdict = judge(Invocation("result", response=response), RECORDS,
                    report_item_failures=True, fifo=False)
    assert verdict.permanent == {"b": "bad"} and verdict.succeeded == ["a", "c"]
    raised = judge(Invocation("permanent", reason="no"), RECORDS,
                   report_item_failures=True, fifo=False)
    assert raised.permanent == {"a": "no", "b": "no", "c": "no"}
    fifo = [record("1", group="g"), record("2", group="h"), record("3", group="g")]
    verdict = judge(Invocation("result", response={"batchItemFailures": [{"itemIdentifier": "1"}]}),
                    fifo, report_item_failures=True, fifo=True)
    assert verdict.failed == ["1", "3"] and verdict.succeeded == ["2"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 11}, "--batch-size"),
        ({"batch_size": 10_001, "batching_window": 1}, "--batch-size"),
        ({"batching_window": 301}, "--batching-window"),
        ({"concurrency": 0}, "--concurrency"),
        ({"timeout": 901}, "--long-running"),
        ({"timeout": 0}, "--timeout"),
        ({"backoff": 0}, "--backoff"),
    ],
)
def test_configuration_is_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorkerConfig(handler="app:handle", queue="jobs", **options)


def test_lambda_limits_that_are_allowed() -> None:
    assert WorkerConfig("app:handle", "jobs", batch_size=10_000, batching_window=1).batch_size
    assert WorkerConfig("app:handle", "jobs", timeout=7200, long_running=True).timeout == 7200


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]
                                        ) -> dict[str, Any]:
        self.calls.append(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_heartbeats_extend_until_twelve_hours_after_receipt() -> None:
    clock, client = FakeClock(), RecordingClient()
    heartbeat = Heartbeat(client, "url", visibility=600, clock=clock)
    key = heartbeat.track([f"h{i}" for i in range(12)], received_at=clock.now())
    assert heartbeat.beat() == 12 and [len(c) for c in client.calls] == [10, 2]
    assert {e["VisibilityTimeout"] for c in client.calls for e in c} == {600}
    clock.advance(43_200 - 100)
    client.calls.clear()
    heartbeat.beat()
    assert {e["VisibilityTimeout"] for c in client.calls for e in c} == {100}
    clock.advance(100)
    assert heartbeat.beat() == 0
    heartbeat.untrack(key)
    assert heartbeat.beat() == 0


def test_backoff_doubles_per_receive_up_to_the_cap() -> None:
    client = RecordingClient()
    settler = Settler(client, "url", "arn", None, fifo=False, backoff=2, backoff_max=30)
    messages = [{"ReceiptHandle": f"h{n}", "Attributes": {"ApproximateReceiveCount": str(n)}}
                for n in (1, 2, 3, 6)]
    settler.back_off(messages)
    assert [e["VisibilityTimeout"] for e in client.calls[0]] == [2, 4, 8, 30]
