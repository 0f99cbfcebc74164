"""Served long polls wait on the event loop: no thread each, woken by any process's send.

The app is driven in-process through ASGI (as in test_long_poll_slots); a
second process sends, to show that a commit elsewhere reaches a waiting poll.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engine.other_process import OtherProcessSender
from trainmq.queue.client import open_service
from trainmq.queue.service import SQSService
from trainmq.queue.sqlite import SqliteBackend, wakeup
from trainmq.server.app import SQSApp

POLLS = 1000
HOST = "127.0.0.1:9324"


async def receive_message(app: SQSApp, params: dict[str, Any]) -> dict[str, Any]:
    """One unsigned JSON ReceiveMessage through the ASGI app; its decoded answer."""
    body = json.dumps(params).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [
            (b"host", HOST.encode()),
            (b"content-type", b"application/x-amz-json-1.0"),
            (b"x-amz-target", b"AmazonSQS.ReceiveMessage"),
        ],
        "scheme": "http",
        "server": ("127.0.0.1", 9324),
    }
    delivered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if delivered.is_set():
            await asyncio.Event().wait()  # the client stays connected until answered
        delivered.set()
        return {"type": "http.request", "body": body, "more_body": False}

    answer: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = json.loads(message["body"] or b"{}")

    await app(scope, receive, send)
    assert answer["status"] == 200, answer
    return dict(answer["body"])


async def _until_watching(service: SQSService, count: int) -> None:
    """Poll (bounded) until ``count`` long polls await the database's changes."""
    backend = service.backend
    assert isinstance(backend, SqliteBackend)
    changes = backend.async_changes(asyncio.get_running_loop())
    deadline = time.monotonic() + 60
    while changes.watching < count:
        assert time.monotonic() < deadline, f"only {changes.watching} of {count} polls wait"
        await asyncio.sleep(0.01)


def test_a_thousand_long_polls_hold_no_thread_each(tmp_path: Path) -> None:
    service = open_service(tmp_path / "queues.db")
    app = SQSApp(service, max_long_polls=POLLS)
    url = service.create_queue({"QueueName": "many"})["QueueUrl"]
    threads_before = threading.active_count()

    async def scenario() -> tuple[int, list[dict[str, Any]]]:
        polls = [
            asyncio.create_task(receive_message(app, {"QueueUrl": url, "WaitTimeSeconds": 20}))
            for _ in range(POLLS)
        ]
        await _until_watching(service, POLLS)
        threads_waiting = threading.active_count()
        service.send_message({"QueueUrl": url, "MessageBody": "one for a thousand"})
        done, _ = await asyncio.wait(polls, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert done, "no poll woke for the message"
        app.release_waiters()  # the rest answer empty at once
        return threads_waiting, await asyncio.wait_for(asyncio.gather(*polls), 60)

    try:
        threads_waiting, answers = asyncio.run(scenario())
    finally:
        app.release_waiters()
        service.backend.close()
    # The SQS executor (16 threads) and one database watcher, not a thread per poll.
    assert threads_waiting - threads_before <= 16 + 2, threads_waiting - threads_before
    bodies = [m["Body"] for answer in answers for m in answer.get("Messages", [])]
    assert bodies == ["one for a thousand"]


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "data_version"])
def test_a_send_by_another_process_wakes_a_served_long_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inotify: bool
) -> None:
    if not inotify:
        monkeypatch.setattr(wakeup, "_LIBC", None)  # as on a platform without inotify
    service = open_service(tmp_path / "queues.db")
    app = SQSApp(service)
    url = service.create_queue({"QueueName": "afar"})["QueueUrl"]
    sender = OtherProcessSender(tmp_path / "queues.db", url)

    async def scenario() -> tuple[dict[str, Any], float]:
        poll = asyncio.create_task(receive_message(app, {"QueueUrl": url, "WaitTimeSeconds": 20}))
        await _until_watching(service, 1)
        sent_at = await asyncio.to_thread(sender.send, "from another process")
        answer = await asyncio.wait_for(poll, 15)
        return answer, time.time() - sent_at

    try:
        answer, latency = asyncio.run(scenario())
        assert isinstance(service.backend, SqliteBackend)
        mode = service.backend._database.changes.mode
    finally:
        sender.close()
        app.release_waiters()
        service.backend.close()
    assert [m["Body"] for m in answer["Messages"]] == ["from another process"]
    assert mode == ("inotify" if inotify else "data_version")
    assert latency < 1.0


def test_a_served_long_poll_waits_for_the_queues_default_wait_time(tmp_path: Path) -> None:
    """No WaitTimeSeconds: the queue's ReceiveMessageWaitTimeSeconds is the wait (AWS)."""
    service = open_service(tmp_path / "queues.db")
    app = SQSApp(service)
    url = service.create_queue(
        {"QueueName": "patient", "Attributes": {"ReceiveMessageWaitTimeSeconds": "1"}}
    )["QueueUrl"]

    async def scenario() -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        answer = await receive_message(app, {"QueueUrl": url})
        return answer, time.monotonic() - started

    try:
        answer, elapsed = asyncio.run(scenario())
    finally:
        service.backend.close()
    assert answer == {} and 0.9 <= elapsed < 5.0
