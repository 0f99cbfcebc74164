"""Where the CPU of one SQS request goes in ``trainmq serve``: the per-request budget.

Run as ``python bench/http_budget.py [--quick] [--json PATH] [--dir DIR]``.

Each layer is measured alone, 16 requests in flight, as CPU microseconds
(``time.process_time``: every thread of this process), so the figures add up
and hold on a shared machine better than wall time does:

* **engine**: ``SQSService.dispatch`` called directly (validation, MD5s, SQL,
  commit and its fsync's system time);
* **JSON**: decoding the request body and encoding the response;
* **SigV4**: verifying a boto3-signed request (only with a credentials file);
* **thread hand-off**: the executor round trip that runs the engine off the
  event loop, with 16 requests in flight (as under load);
* **application**: the whole ASGI call (routing, headers, guard, the above,
  metrics), driven without a network;
* **server**: the CPU of a ``trainmq serve --workers 1`` process per request
  under the lean load generator (16 keep-alive connections); the difference to
  the application is HTTP parsing, uvicorn and the event loop.

The database is on the real disk with the default durability (fsync per
commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

from http_lean import Target, closed_loop, request_bytes, run_async, send_step  # noqa: E402
from http_servers import HOST, CpuMeter, start_trainmq  # noqa: E402

BODY = json.dumps({"doc": "d-000000", "text": "lorem ipsum " * 7})
ENDPOINT = f"http://{HOST}:9324"
#: Requests in flight at once, in every measurement below (as under load).
CONCURRENCY = 16


def cpu_us(calls: int, run: Callable[[], Any]) -> float:
    """CPU microseconds per call of ``run`` (which makes ``calls`` calls)."""
    began = time.process_time()
    run()
    return 1e6 * (time.process_time() - began) / calls


def _service(db: Path) -> Any:
    from trainmq.queue.client import open_service

    return open_service(db, endpoint=ENDPOINT, durable_receives=True)


def engine_figures(db: Path, n: int) -> dict[str, float]:
    """Each action from CONCURRENCY threads at once, as the server's pool runs them."""
    from concurrent.futures import ThreadPoolExecutor

    service = _service(db)
    url = service.dispatch("CreateQueue", {"QueueName": "budget-engine"})["QueueUrl"]
    pool = ThreadPoolExecutor(CONCURRENCY)

    def send(_: int) -> None:
        service.dispatch("SendMessage", {"QueueUrl": url, "MessageBody": BODY})

    def receive(_: int) -> str:
        found = service.dispatch("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 0})
        return str(found["Messages"][0]["ReceiptHandle"])

    def delete(handle: str) -> None:
        service.dispatch("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": handle})

    list(pool.map(send, range(CONCURRENCY * 4)))  # warm-up
    handles: list[str] = []
    figures = {
        "send": cpu_us(n, lambda: list(pool.map(send, range(n)))),
        "receive": cpu_us(n, lambda: handles.extend(pool.map(receive, range(n)))),
    }
    figures["delete"] = cpu_us(n, lambda: list(pool.map(delete, handles[:n])))
    pool.shutdown()
    service.backend.close()
    return figures


def json_figures(n: int) -> dict[str, float]:
    from trainmq.server import json_protocol

    body = json.dumps({"QueueUrl": f"{ENDPOINT}/000000000000/q", "MessageBody": BODY}).encode()
    result = {"MD5OfMessageBody": "0" * 32, "MessageId": "0" * 36}

    def codec() -> None:
        for _ in range(n):
            json_protocol.decode_request("SendMessage", body)
            json_protocol.encode_response(result)

    return {"send": cpu_us(n, codec)}


def sigv4_figure(n: int) -> float:
    import datetime as dt

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    from trainmq.server.auth import AccessKey, Credentials, SignedRequest, verify

    key = AccessKey("budget", "AKIDBUDGET", "secret", ())
    body = json.dumps({"QueueUrl": f"{ENDPOINT}/000000000000/q", "MessageBody": BODY})
    request = botocore.awsrequest.AWSRequest(
        "POST", ENDPOINT + "/", data=body, headers={"X-Amz-Target": "AmazonSQS.SendMessage"}
    )
    signer = botocore.credentials.Credentials("AKIDBUDGET", "secret")
    botocore.auth.SigV4Auth(signer, "sqs", "us-east-1").add_auth(request)
    headers = {k.lower(): str(v) for k, v in request.headers.items()}
    headers["host"] = f"{HOST}:9324"
    signed = SignedRequest("POST", "/", "", headers, body.encode())
    credentials = Credentials({"AKIDBUDGET": key})

    def verifies() -> None:
        for _ in range(n):
            verify(signed, credentials, dt.datetime.now(dt.UTC), "us-east-1")

    return cpu_us(n, verifies)


def _scope(target: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "scheme": "http",
        "server": (HOST, 9324),
        "headers": [
            (b"host", f"{HOST}:9324".encode()),
            (b"x-amz-target", f"AmazonSQS.{target}".encode()),
            (b"content-type", b"application/x-amz-json-1.0"),
            (b"content-length", str(len(body)).encode()),
        ],
    }


async def _asgi_sends(app: Any, url: str, n: int, concurrency: int) -> None:
    body = json.dumps({"QueueUrl": url, "MessageBody": BODY}).encode()
    scope = _scope("SendMessage", body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"HTTP {message['status']}")

    async def one_by_one(count: int) -> None:
        for _ in range(count):
            await app(scope, receive, send)

    await asyncio.gather(*(one_by_one(n // concurrency) for _ in range(concurrency)))


def app_figure(db: Path, n: int) -> float:
    from trainmq.server import SQSApp

    app = SQSApp(_service(db))
    url = app.service.dispatch("CreateQueue", {"QueueName": "budget-app"})["QueueUrl"]
    try:
        run_async(_asgi_sends(app, url, CONCURRENCY * 4, CONCURRENCY))  # type: ignore[arg-type]
        sends = _asgi_sends(app, url, n, CONCURRENCY)
        return cpu_us(n, lambda: run_async(sends))  # type: ignore[arg-type]
    finally:
        app.service.backend.close()


def hop_figure(n: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(CONCURRENCY)

    async def hops() -> None:
        loop = asyncio.get_running_loop()

        async def chain(count: int) -> None:
            for _ in range(count):
                await loop.run_in_executor(executor, int)

        await asyncio.gather(*(chain(n // CONCURRENCY) for _ in range(CONCURRENCY)))

    try:
        return cpu_us(n, lambda: run_async(hops()))  # type: ignore[arg-type]
    finally:
        executor.shutdown()


def server_figure(workdir: Path, seconds: float) -> float:
    server = start_trainmq(workdir / "server.db", workdir, workers=1)
    try:
        import boto3

        client = boto3.client(
            "sqs",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="budget",
            aws_secret_access_key="budget",
        )
        url = client.create_queue(QueueName="budget-server")["QueueUrl"]
        step = send_step(Target(HOST, server.port, url, BODY))
        run_async(closed_loop(HOST, server.port, step, CONCURRENCY, 0.0, 0.5))  # warm-up
        meter = CpuMeter([server.process.pid])
        meter.start()
        result = run_async(closed_loop(HOST, server.port, step, CONCURRENCY, 0.0, seconds))
        (used,) = meter.stop()
        assert used is not None
        return 1e6 * used / result.all_ops
    finally:
        server.stop()


def measure(workdir: Path, quick: bool) -> dict[str, Any]:
    n = 300 if quick else 2_000
    engine = engine_figures(workdir / "engine.db", n)
    app = app_figure(workdir / "app.db", n)
    server = server_figure(workdir, 2.0 if quick else 8.0)
    codec = json_figures(n * 5)["send"]
    hop = hop_figure(n * 5)
    return {
        "engine_us": engine,
        "json_send_us": codec,
        "sigv4_us": sigv4_figure(n),
        "thread_hop_us": hop,
        "app_send_us": app,
        "server_send_us": server,
        "app_other_send_us": max(0.0, app - engine["send"] - codec - hop),
        "http_send_us": max(0.0, server - app),
        "request_bytes": len(request_bytes(HOST, 9324, "SendMessage", {"MessageBody": BODY})),
    }


def render(figures: dict[str, Any]) -> str:
    engine = figures["engine_us"]
    rows = [
        ("server process, whole SendMessage", figures["server_send_us"]),
        ("  HTTP parsing, uvicorn, event loop", figures["http_send_us"]),
        ("  application (ASGI call, no network)", figures["app_send_us"]),
        ("    JSON decode + encode", figures["json_send_us"]),
        ("    thread hand-off (executor round trip)", figures["thread_hop_us"]),
        ("    routing, headers, guard, metrics", figures["app_other_send_us"]),
        ("    engine: SendMessage", engine["send"]),
        ("engine: ReceiveMessage (1 message)", engine["receive"]),
        ("engine: DeleteMessage", engine["delete"]),
        ("SigV4 verification (with --credentials)", figures["sigv4_us"]),
    ]
    lines = [f"CPU microseconds per request ({CONCURRENCY} in flight; fsync per commit)"]
    lines += [f"{label:<46}{value:>8.0f}" for label, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--dir", type=Path, default=Path(".trainmq/bench"))
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="budget-", dir=args.dir))
    try:
        figures = measure(workdir, args.quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
