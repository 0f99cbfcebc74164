"""Workers resolve claim-check pointers (Amazon's Extended Client format) before handlers run."""

from __future__ import annotations

import json

import pytest

from tests.worker.conftest import Env, counts, drain, make_queue, wait_for
from trainmq.store import open_store
from trainmq.store.claimcheck import ClaimCheckClient


def test_the_handler_sees_the_body_and_the_payload_goes_with_the_message(env: Env) -> None:
    store = open_store(env.tmp_path / "store")
    with env.client() as sqs:
        url = make_queue(sqs, "big")
        large = ClaimCheckClient(sqs, store, threshold=1024)
        large.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1, "pad": "x" * 5000}))
        large.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 2}))  # small: inline
        assert len(list(store.list_keys("claimcheck/"))) == 1
        env.start("scripted", "big", "--store", str(env.tmp_path / "store"), "--timeout", "5")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    assert sorted(env.log.numbers()) == [1, 2]  # the pointer was resolved: the body parsed
    assert list(store.list_keys("claimcheck/")) == []  # deleted after its message


def test_keep_payloads_leaves_them(env: Env) -> None:
    store = open_store(env.tmp_path / "store")
    with env.client() as sqs:
        url = make_queue(sqs, "kept")
        ClaimCheckClient(sqs, store, always_through_store=True).send_message(
            QueueUrl=url, MessageBody=json.dumps({"n": 7})
        )
        env.start(
            "scripted",
            "kept",
            "--store",
            str(env.tmp_path / "store"),
            "--keep-payloads",
            "--timeout",
            "5",
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    assert env.log.numbers() == [7]
    assert len(list(store.list_keys("claimcheck/"))) == 1


def test_a_missing_payload_dead_letters_the_pointer_with_a_reason(env: Env) -> None:
    store = open_store(env.tmp_path / "store")
    with env.client() as sqs:
        url = make_queue(sqs, "lost")
        ClaimCheckClient(sqs, store, always_through_store=True).send_message(
            QueueUrl=url, MessageBody=json.dumps({"n": 9})
        )
        (key,) = store.list_keys("claimcheck/")
        store.delete(key)
        env.start("scripted", "lost", "--store", str(env.tmp_path / "store"), "--timeout", "5")
        dlq = url.replace("/lost", "/lost-dlq")
        wait_for(lambda: counts(sqs, dlq)[0] == 1, what="the pointer in the DLQ")
        (message,) = drain(sqs, dlq)
    reason = message["MessageAttributes"]["trainmq.DeadLetterReason"]["StringValue"]
    assert "claim-check payload cannot be read" in reason
    assert "software.amazon.payloadoffloading.PayloadS3Pointer" in message["Body"]
    assert env.log.entries() == []  # the handler never saw it


def test_handlers_reach_the_workers_own_queues_and_store(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that sends (the pipeline's stages) must use the worker's --db and --store,
    even when the environment names others."""
    store_dir = env.tmp_path / "store"
    with env.client() as sqs:
        url = make_queue(sqs, "probe")
        sqs.send_message(QueueUrl=url, MessageBody="{}")
        monkeypatch.setenv("TRAINMQ_STORE", "/elsewhere")
        env.start("probe", "probe", "--store", str(store_dir), "--timeout", "5")
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    (entry,) = env.log.entries()
    assert entry["env"]["TRAINMQ_BACKEND"] == str(env.db)
    assert entry["env"]["TRAINMQ_STORE"] == str(store_dir)
