"""One access key cannot hold every long-poll slot: past its share, its receives answer at once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from trainmq.queue.client import open_service
from trainmq.server.app import SQSApp
from trainmq.server.auth import AccessKey, Credentials, Grant

HOST = "127.0.0.1:9324"
HOG = AccessKey("hog", "AKIDHOG", "hog-secret", (Grant(("*",), ("*",)),))
OTHER = AccessKey("other", "AKIDOTHER", "other-secret", (Grant(("*",), ("*",)),))


async def call(app: SQSApp, key: AccessKey, action: str, params: dict[str, Any]) -> float:
    """Send one signed JSON request through the ASGI app; the seconds it took to answer."""
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=json.dumps(params).encode(),
        headers={
            "Host": HOST,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AmazonSQS.{action}",
        },
    )
    SigV4Auth(
        BotoCredentials(key.access_key_id, key.secret_access_key), "sqs", "us-east-1"
    ).add_auth(request)
    body = bytes(request.body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
        "scheme": "http",
        "server": ("127.0.0.1", 9324),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.sleep(3600)  # the client stays connected until answered
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.monotonic()
    await app(scope, receive, send)
    assert statuses == [200]
    return time.monotonic() - started


def test_a_key_holds_at_most_half_the_long_poll_slots(tmp_path: Path) -> None:
    service = open_service(tmp_path / "queues.db")
    app = SQSApp(
        service,
        credentials=Credentials({k.access_key_id: k for k in (HOG, OTHER)}),
        max_long_polls=2,
    )
    url = service.create_queue({"QueueName": "slots"})["QueueUrl"]
    poll = {"QueueUrl": url, "WaitTimeSeconds": 2}

    async def scenario() -> tuple[float, float, float]:
        first = asyncio.create_task(call(app, HOG, "ReceiveMessage", poll))
        await asyncio.sleep(0.3)  # the first poll holds its slot
        second = await call(app, HOG, "ReceiveMessage", poll)
        other = await call(app, OTHER, "ReceiveMessage", poll)
        return await first, second, other

    try:
        first, second, other = asyncio.run(scenario())
    finally:
        app.release_waiters()
        service.backend.close()
    assert first >= 1.5  # a real long poll
    assert second < 1.0  # past the key's share: answered at once, as a short poll
    assert other >= 1.5  # another key still gets the remaining slot
