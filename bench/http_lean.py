"""A lean load generator: pre-built JSON-protocol requests over keep-alive sockets.

It measures what the server can do rather than what boto3 can: the requests
are built once (with a well-formed but unchecked SigV4 header: neither a
loopback trainmq without a credentials file, nor moto, nor LocalStack checks
signatures, and moto and LocalStack read the service and region from it),
written whole to raw asyncio connections, and the
responses are parsed only as far as the status line, the length and, for
ReceiveMessage, the receipt handle. uvloop is used when it is installed.

``closed_loop`` keeps every connection busy (capacity); ``open_loop`` offers
a fixed rate whatever the server does (latency at a load), timing each request
from the moment it was due so that a slow response delays the clock, not the
measurement (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

BATCH = 10
TARGET_PREFIX = "AmazonSQS."
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
)


def request_bytes(host: str, port: int, action: str, params: dict[str, Any]) -> bytes:
    body = json.dumps(params, separators=(",", ":")).encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"X-Amz-Target: {TARGET_PREFIX}{action}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        "X-Amz-Date: 20260101T000000Z\r\n"
        f"Authorization: {AUTHORIZATION}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection with one request in flight at a time."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: Any = None  # uvloop's transports do not derive from asyncio's
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        at = head.find(b"content-length:")
        line_end = head.find(b"\r\n", at)
        length = int(head[at + 15 : line_end if line_end >= 0 else len(head)])
        if len(self._buffer) < end + 4 + length:
            return
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        if b"connection: close" in head:  # a server that does not keep connections alive
            self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpConnection:
    """A keep-alive connection to one server, opened again when the server closes it
    after a response (moto's server does)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._protocol: _Protocol | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._protocol = await loop.create_connection(_Protocol, self.host, self.port)

    async def request(self, data: bytes) -> bytes:
        """Sends ``data``; returns the body of a 200 response (anything else raises)."""
        if self._protocol is None or self._protocol.closed:
            await self.open()
        assert self._protocol is not None
        status, body = await self._protocol.request(data)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()


async def connect(host: str, port: int) -> HttpConnection:
    connection = HttpConnection(host, port)
    await connection.open()
    return connection


# --- the operations ----------------------------------------------------------------

Step = Callable[[HttpConnection], Awaitable[int]]  # messages handled; 0: queue empty


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    queue_url: str
    body: str


def send_step(target: Target) -> Step:
    params = {"QueueUrl": target.queue_url, "MessageBody": target.body}
    request = request_bytes(target.host, target.port, "SendMessage", params)

    async def step(conn: HttpConnection) -> int:
        await conn.request(request)
        return 1

    return step


def send_batch_step(target: Target) -> Step:
    entries = [{"Id": str(i), "MessageBody": target.body} for i in range(BATCH)]
    params = {"QueueUrl": target.queue_url, "Entries": entries}
    request = request_bytes(target.host, target.port, "SendMessageBatch", params)

    async def step(conn: HttpConnection) -> int:
        response = json.loads(await conn.request(request))
        if response.get("Failed") or len(response.get("Successful", [])) != BATCH:
            raise RuntimeError(f"batch not fully sent: {response}")
        return BATCH

    return step


def receive_delete_step(target: Target) -> Step:
    params = {"QueueUrl": target.queue_url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 0}
    receive = request_bytes(target.host, target.port, "ReceiveMessage", params)

    async def step(conn: HttpConnection) -> int:
        messages = json.loads(await conn.request(receive)).get("Messages", [])
        if not messages:
            return 0
        handle = messages[0]["ReceiptHandle"]
        params = {"QueueUrl": target.queue_url, "ReceiptHandle": handle}
        await conn.request(request_bytes(target.host, target.port, "DeleteMessage", params))
        return 1

    return step


def batch_cycle_step(target: Target) -> Step:
    """SendMessageBatch of 10, then ReceiveMessage of up to 10 and DeleteMessageBatch of
    what came: messages sent plus messages received and deleted (three requests)."""
    entries = [{"Id": str(i), "MessageBody": target.body} for i in range(BATCH)]
    send_params = {"QueueUrl": target.queue_url, "Entries": entries}
    send = request_bytes(target.host, target.port, "SendMessageBatch", send_params)
    receive_params = {"QueueUrl": target.queue_url, "MaxNumberOfMessages": BATCH}
    receive = request_bytes(
        target.host, target.port, "ReceiveMessage", {**receive_params, "WaitTimeSeconds": 0}
    )

    async def step(conn: HttpConnection) -> int:
        sent = json.loads(await conn.request(send))
        if sent.get("Failed") or len(sent.get("Successful", [])) != BATCH:
            raise RuntimeError(f"batch not fully sent: {sent}")
        messages = json.loads(await conn.request(receive)).get("Messages", [])
        if not messages:
            return BATCH
        handles = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        params = {"QueueUrl": target.queue_url, "Entries": handles}
        deleted = json.loads(
            await conn.request(
                request_bytes(target.host, target.port, "DeleteMessageBatch", params)
            )
        )
        if deleted.get("Failed"):
            raise RuntimeError(f"batch not fully deleted: {deleted}")
        return BATCH + len(messages)

    return step


# --- the generators ------------------------------------------------------------------


@dataclass
class LoadResult:
    ops: int = 0  # measured (after the warm-up)
    all_ops: int = 0  # warm-up included
    messages: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds
    drained: bool = False
    offered_per_s: float = 0.0  # open loop only


async def closed_loop(
    host: str, port: int, step: Step, connections: int, warmup: float, seconds: float
) -> LoadResult:
    """Every connection runs ``step`` back to back; counts the steps that end inside the
    measured window (after the warm-up, before the deadline), which is the throughput
    even of a server whose single step takes longer than the window."""
    conns = [await connect(host, port) for _ in range(connections)]
    result = LoadResult()
    measure_from = time.perf_counter() + warmup
    deadline = measure_from + seconds

    async def run(conn: HttpConnection) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            handled = await step(conn)
            ended = time.perf_counter()
            if handled == 0:
                result.drained = True
                return
            result.all_ops += 1
            if measure_from <= ended <= deadline:
                result.ops += 1
                result.messages += handled
                result.latencies.append(ended - began)

    tasks = [asyncio.ensure_future(run(conn)) for conn in conns]
    try:
        done, pending = await asyncio.wait(tasks, timeout=deadline - time.perf_counter())
        for task in pending:  # steps still running at the deadline are not counted
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a step's error fails the measurement
    finally:
        for conn in conns:
            conn.close()
    result.seconds = seconds
    return result


async def open_loop(
    host: str, port: int, step: Step, rate: float, warmup: float, seconds: float, pool: int
) -> LoadResult:
    """Starts ``step`` at ``rate`` per second, on an idle connection from a pool.

    Latency runs from when a request was due to when its response arrived, so
    waiting for a connection or for the timer counts against the server.
    """
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    conns = [await connect(host, port) for _ in range(pool)]
    for conn in conns:
        idle.put_nowait(conn)
    result = LoadResult()
    start = time.perf_counter() + 0.05
    measure_from = start + warmup
    total = int(rate * (warmup + seconds))
    errors: list[BaseException] = []

    async def one(due: float) -> None:
        conn = await idle.get()
        try:
            await step(conn)
        except BaseException as exc:
            errors.append(exc)
            return
        ended = time.perf_counter()
        idle.put_nowait(conn)
        result.all_ops += 1
        if due >= measure_from:
            result.ops += 1
            result.messages += 1
            result.latencies.append(ended - due)
            result.seconds = max(result.seconds, ended - measure_from)

    tasks: list[asyncio.Task[None]] = []
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due)))
    try:
        await asyncio.gather(*tasks)
    finally:
        for conn in conns:
            conn.close()
    if errors:
        raise errors[0]
    result.offered_per_s = rate
    return result


def run_async(main: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """Runs a generator on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def event_loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
