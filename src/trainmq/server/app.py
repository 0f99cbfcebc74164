"""The SQS-compatible HTTP endpoint, as a plain ASGI application.

``POST`` requests speak SQS: the JSON 1.0 protocol when ``X-Amz-Target`` names
an action, the Query protocol (form-encoded ``Action=...``, also as ``GET``)
otherwise.  ``GET /health`` and ``GET /metrics`` serve operators.  SQS work
runs on a thread pool so that concurrent requests share the engine's group
commits; long polls are bounded in number (beyond the bound a receive
answers at once, as a short poll) and, over the embedded engine, wait on the
event loop rather than on a thread each (``long_poll``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import html
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from ..errors import (
    AccessDenied,
    InternalError,
    InvalidAction,
    InvalidParameterValue,
    RequestEntityTooLarge,
    SQSError,
    StorageError,
)
from ..queue.regions import Regions
from ..queue.service import ACTIONS, SQSService
from . import json_protocol, query_protocol
from .addressing import endpoint_region, queue_path_parts, region_endpoint, request_region
from .auth import AccessKey, Credentials, SignedRequest, verify
from .authorize import MODELLED_MEMBERS, authorize_request, check_members
from .guard import HostPolicy, cross_site_reason, refuse_unknown_key
from .long_poll import wait_on_loop
from .metrics import Metrics, authorize_scrape
from .traffic import Traffic

__all__ = ["MAX_REQUEST_BYTES", "SQSApp"]

log = logging.getLogger("trainmq.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Largest request body accepted: a 1 MiB batch, base64 and protocol overhead included.
MAX_REQUEST_BYTES = 3 * 1024 * 1024
_ACTION_SET = frozenset(ACTIONS)
#: Actions on the service, not a queue: AWS refuses them at a queue's URL.
_SERVICE_ACTIONS = frozenset({"CreateQueue", "ListQueues"})
_UNKNOWN_OPERATION = b"<UnknownOperationException/>"
_MESSAGE_ACTIONS = {
    "SendMessage": "sent",
    "SendMessageBatch": "sent",
    "ReceiveMessage": "received",
    "DeleteMessage": "deleted",
    "DeleteMessageBatch": "deleted",
}


class SQSApp:
    """ASGI application serving the SQS API over one ``SQSService``."""

    def __init__(
        self,
        service: SQSService,
        *,
        credentials: Credentials | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_long_polls: int = 256,
        max_long_polls_per_key: int | None = None,
        workers: int = 16,
        hosts: HostPolicy | None = None,
        metrics_public: bool = False,
    ) -> None:
        self.service = service
        self.credentials = credentials
        self.max_request_bytes = max_request_bytes
        self.hosts = hosts or HostPolicy()
        self.metrics_public = metrics_public
        self.metrics = Metrics()
        self.traffic = Traffic()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trainmq-sqs")
        self._poll_executor = ThreadPoolExecutor(
            max_workers=max_long_polls, thread_name_prefix="trainmq-poll"
        )
        self._max_long_polls = max_long_polls
        self._long_polls = 0
        # One key may hold at most half the slots, so that it cannot starve the others.
        self._max_long_polls_per_key = max_long_polls_per_key or max(1, max_long_polls // 2)
        self._key_polls: dict[str, int] = {}
        self.extra_routes: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {}
        self._views: dict[str, SQSService] = {}
        self.regions = Regions()
        self._regions_home: object = service.backend

    # -- ASGI entry --------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/health":
            await _respond(send, 200, b"application/json", b'{"status":"ok"}')
            return
        if await self._refused(scope, send):
            return
        if method == "GET" and path == "/metrics":
            if not await self._metrics_allowed(scope, send):
                return
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(self._executor, self.metrics.render, self.service)
            await _respond(send, 200, b"text/plain; version=0.0.4", text.encode())
            return
        if method == "GET" and path == "/favicon.ico":  # browsers ask; not an SQS action
            await _respond(send, 204, b"image/x-icon", b"")
            return
        if method == "GET" and path == "/" and not scope.get("query_string"):
            await _respond(send, 200, b"text/html; charset=utf-8", self._landing_page(scope))
            return
        for prefix, route in self.extra_routes.items():
            if path == prefix or path.startswith(prefix + "/"):
                await route(scope, receive, send)
                return
        await self._api(scope, receive, send)

    def _landing_page(self, scope: Scope) -> bytes:
        """``GET /`` in a browser: where the API and the console are (a query string is SQS)."""
        headers = dict(scope.get("headers") or [])
        host = html.escape(headers.get(b"host", b"").decode("latin-1") or "this server")
        console = (
            '<p>The web console: <a href="/console">/console</a></p>'
            if "/console" in self.extra_routes
            else "<p>The web console is off (--no-console).</p>"
        )
        return (
            "<!doctype html><title>trainmq</title><h1>trainmq</h1>"
            f"<p>An SQS-compatible endpoint: point boto3, the AWS CLI or Celery at "
            f"<code>http://{host}</code> (for example <code>aws --endpoint-url "
            f"http://{host} sqs list-queues</code>).</p>{console}"
            '<p><a href="/health">/health</a> · <a href="/metrics">/metrics</a></p>'
        ).encode()

    async def _refused(self, scope: Scope, send: Send) -> bool:
        """Answer 403 to a foreign Host (DNS rebinding) or a cross-site browser request."""
        headers = _headers(scope)
        console = any(
            scope["path"] == p or scope["path"].startswith(p + "/") for p in self.extra_routes
        )
        if not self.hosts.allows(headers.get("host")):
            reason = (
                f"Host {headers.get('host', '')[:100]!r} is not a name of this server "
                "(serve it with --allowed-host)."
            )
        else:
            why = cross_site_reason(headers, method=scope["method"], allow_navigation=console)
            if why is None:
                return False
            reason = f"Request refused: {why}. Browsers may only use this server's own pages."
        log.warning("refused %s %s: %s", scope["method"], scope["path"][:200], reason)
        if console:  # a browser: plain text rather than an SQS error document
            await _respond(send, 403, b"text/plain; charset=utf-8", reason.encode())
        else:
            error = AccessDenied(reason)
            await self._error(send, error, _is_json(headers), "", time.perf_counter())
        return True

    async def _metrics_allowed(self, scope: Scope, send: Send) -> bool:
        """With credentials, /metrics names every queue: it needs a signed request whose key
        has the ``trainmq:GetMetrics`` grant on every queue, unless ``--metrics-public``."""
        if self.credentials is None or self.metrics_public:
            return True
        try:
            key = self._authenticate(scope, _headers(scope), b"")
            assert key is not None
            authorize_scrape(key)
        except SQSError as error:
            await self._error(send, error, False, "", time.perf_counter())
            return False
        return True

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.release_waiters()
                self._executor.shutdown(wait=True)
                self._poll_executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _view(self, scope: Scope, headers: dict[str, str], params: dict[str, Any]) -> SQSService:
        """The service of the request's region, answering with URLs under the host it used."""
        home = self.service
        if self._regions_home is not home.backend:  # a new database: forget the old regions
            self.regions.close()
            self._views.clear()
            self._regions_home = home.backend
        own = home.backend.region
        region = request_region(scope, headers, params, own)
        host = headers.get("host") or f"{scope['server'][0]}:{scope['server'][1]}"
        endpoint = region_endpoint(scope.get("scheme", "http"), host, region, own)
        view = self._views.get(endpoint)
        if view is None:
            if len(self._views) > 64:  # hosts are client-chosen: keep the cache bounded
                self._views.clear()
            base = self.regions.service(home, region)
            view = self._views[endpoint] = base.with_endpoint(endpoint)
        return view

    def release_waiters(self) -> None:
        """End every long poll now (they answer with no messages); used at shutdown."""
        release = getattr(self.service.backend, "release_waiters", None)
        if release is not None:
            release()
        self.regions.release_waiters()

    # -- the SQS API -------------------------------------------------------------------------
    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        target = headers.get("x-amz-target", "")
        is_json = _is_json(headers)
        action = target.removeprefix("AmazonSQS.") if is_json else ""
        request_id = query_protocol.new_request_id()
        try:
            if self.credentials is not None:  # before the body is read: see server.guard
                refuse_unknown_key(
                    headers, scope.get("query_string", b"").decode("latin-1"), self.credentials
                )
            body = await _read_body(receive, headers, self.max_request_bytes)
            key = self._authenticate(scope, headers, body)  # before parsing, as AWS does
            if is_json:
                if action not in _ACTION_SET:
                    raise InvalidAction(f"The action {action or '(none)'} is not valid.")
                params = json_protocol.decode_request(action, body)
                check_members(action, params, query=False)
            else:
                decoded = _decode_query(scope, headers, body)
                if decoded is None:  # a GET of a queue's URL that names no action
                    await _respond(send, 404, b"text/xml", _UNKNOWN_OPERATION, request_id)
                    return
                action, params = decoded
            params = _with_trace_header(action, params, headers)
            result = await self._dispatch(scope, headers, action, params, key)
            content_type, payload = _encode_result(is_json, headers, action, result, request_id)
            await _respond(send, 200, content_type, payload, request_id)
            count = _message_count(action, params, result)
            self.metrics.observe(action or "unknown", None, time.perf_counter() - started, count)
            if count:
                queue = _target_queue(self.service, action, params)
                self.traffic.record(queue or "", _MESSAGE_ACTIONS[action], count)
        except SQSError as error:
            await self._error(send, error, is_json, action, started, request_id)
        except StorageError as exc:
            log.error("storage error in %s: %s", action, exc)
            await self._error(send, InternalError(), is_json, action, started, request_id)
        except Exception:
            log.exception("unexpected error in %s", action)
            await self._error(send, InternalError(), is_json, action, started, request_id)

    async def _error(
        self,
        send: Send,
        error: SQSError,
        is_json: bool,
        action: str,
        started: float,
        request_id: str | None = None,
    ) -> None:
        request_id = request_id or query_protocol.new_request_id()
        if is_json:
            status, headers, payload = json_protocol.encode_error(error)
        else:
            status, headers, payload = query_protocol.encode_error(error, request_id)
        headers = [
            *headers,
            (b"content-length", str(len(payload)).encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        label = action if action in _ACTION_SET else "unknown"  # never a client-chosen label
        self.metrics.observe(label, error.code, time.perf_counter() - started, 0)

    def _authenticate(self, scope: Scope, headers: dict[str, str], body: bytes) -> AccessKey | None:
        if self.credentials is None:
            return None
        request = SignedRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?")[0],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        region = endpoint_region(scope, headers) or self.service.backend.region
        return verify(request, self.credentials, dt.datetime.now(dt.UTC), region)

    async def _dispatch(
        self,
        scope: Scope,
        headers: dict[str, str],
        action: str,
        params: dict[str, Any],
        key: AccessKey | None,
    ) -> dict[str, Any]:
        service = self._view(scope, headers, params)
        if key is not None:
            signed = endpoint_region(scope, headers) or self.service.backend.region
            _check_signed_region(signed, service.backend.region)
        loop = asyncio.get_running_loop()
        if key is not None:
            await loop.run_in_executor(
                self._executor, authorize_request, key, service, action, params
            )
            if action == "ListQueues":
                visible = functools.partial(key.allows, "ListQueues")
                call = functools.partial(service.list_queues, params, visible=visible)
                return await loop.run_in_executor(self._executor, call)
        long_poll = action == "ReceiveMessage" and str(params.get("WaitTimeSeconds", "")) != "0"
        holder = None if key is None else key.access_key_id
        if long_poll and self._take_poll_slot(holder):
            try:
                result = await self._long_poll(service, action, params)
            finally:
                self._release_poll_slot(holder)
        else:
            if long_poll:
                params = {**params, "WaitTimeSeconds": 0}
            result = await loop.run_in_executor(self._executor, service.dispatch, action, params)
        return result

    async def _long_poll(
        self, service: SQSService, action: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """A ReceiveMessage that may wait.  Over the embedded engine the wait is a
        coroutine on the event loop (``wait_on_loop``), each try a short call on the
        executor; other backends wait on a thread of their own."""
        loop = asyncio.get_running_loop()
        if not callable(getattr(service.backend, "async_changes", None)):
            return await loop.run_in_executor(
                self._poll_executor, service.dispatch, action, params
            )
        return await wait_on_loop(service, params, self._executor)

    def _take_poll_slot(self, holder: str | None) -> bool:
        """A long-poll slot for an access key id (None: open mode), if one is free to it."""
        held = self._key_polls.get(holder or "", 0)
        if self._long_polls >= self._max_long_polls or (
            holder is not None and held >= self._max_long_polls_per_key
        ):
            return False
        self._long_polls += 1
        self._key_polls[holder or ""] = held + 1
        return True

    def _release_poll_slot(self, holder: str | None) -> None:
        self._long_polls -= 1
        self._key_polls[holder or ""] -= 1
        if not self._key_polls[holder or ""]:
            del self._key_polls[holder or ""]


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, decoded once per request."""
    decoded: dict[str, str] | None = scope.get("trainmq.headers")
    if decoded is None:
        decoded = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scope["trainmq.headers"] = decoded
    return decoded


def _is_json(headers: dict[str, str]) -> bool:
    target = headers.get("x-amz-target", "")
    return target.startswith("AmazonSQS.") or "json" in headers.get("content-type", "")


def _with_trace_header(
    action: str, params: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """SQS turns SendMessage's ``X-Amzn-Trace-Id`` header into the message's
    ``AWSTraceHeader`` system attribute; an attribute sent explicitly wins."""
    trace = headers.get("x-amzn-trace-id")
    if action != "SendMessage" or not trace or not isinstance(params, dict):
        return params
    system = params.get("MessageSystemAttributes") or {}
    if not isinstance(system, dict) or "AWSTraceHeader" in system:
        return params
    traced = {**system, "AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    return {**params, "MessageSystemAttributes": traced}


def _decode_query(
    scope: Scope, headers: dict[str, str], body: bytes
) -> tuple[str, dict[str, Any]] | None:
    """(action, parameters) of a Query request; None for a queue URL's GET with no action."""
    form = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if body:
        form += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    action, params = query_protocol.decode_request(dict(form))
    at_queue = _queue_path(scope)
    if at_queue and not action and scope["method"] == "GET":
        return None
    if action not in _ACTION_SET or (at_queue and action in _SERVICE_ACTIONS):
        raise InvalidAction(f"The action {action or '(none)'} is not valid for this endpoint.")
    _queue_url_from_path(scope, headers, action, params)
    check_members(action, params, query=True)
    return action, params


def _encode_result(
    is_json: bool, headers: dict[str, str], action: str, result: dict[str, Any], request_id: str
) -> tuple[bytes, bytes]:
    """(content type, body) of a success; a Query client that accepts JSON gets its JSON form."""
    if is_json:
        return json_protocol.CONTENT_TYPE.encode(), json_protocol.encode_response(result)
    if "application/json" in headers.get("accept", ""):
        payload = query_protocol.encode_response(action, result, request_id, as_json=True)
        return b"application/json", payload
    payload = query_protocol.encode_response(action, result, request_id)
    return query_protocol.CONTENT_TYPE.encode(), payload


def _check_signed_region(signed: str, acted_on: str) -> None:
    """A signed request acts only in the region its signature was verified for (the region its
    endpoint names, else the server's own): a queue URL or ARN of another region is refused,
    as AWS refuses a request signed for one regional endpoint and sent to another."""
    if signed != acted_on:
        raise AccessDenied(
            f"The request is signed for region {signed} but addresses a queue in {acted_on}."
        )


def _queue_path(scope: Scope) -> bool:
    """Whether the request's path is a queue's (``/<account>/<name>``), not the service's."""
    return queue_path_parts(scope["path"]) is not None


def _queue_url_from_path(
    scope: Scope, headers: dict[str, str], action: str, params: dict[str, Any]
) -> None:
    """Query requests may address the queue by the request path instead of QueueUrl;
    only for actions that model QueueUrl (a path never stands in for a SourceArn)."""
    parts = queue_path_parts(scope["path"])
    modelled = "QueueUrl" in MODELLED_MEMBERS.get(action, ())
    if modelled and "QueueUrl" not in params and parts is not None:
        host = headers.get("host", "localhost")
        params["QueueUrl"] = f"{scope.get('scheme', 'http')}://{host}/{'/'.join(parts)}"


def _target_queue(service: SQSService, action: str, params: dict[str, Any]) -> str | None:
    """The queue a message action acted on, for the traffic counters."""
    if isinstance(params.get("QueueUrl"), str):
        return str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    return None


def _message_count(action: str, params: dict[str, Any], result: dict[str, Any]) -> int:
    if action not in _MESSAGE_ACTIONS:
        return 0
    if action == "ReceiveMessage":
        return len(result.get("Messages", []))
    if action.endswith("Batch"):
        return len(result.get("Successful", []))
    return 1


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "").strip()
    if declared and (not declared.isascii() or not declared.isdigit() or len(declared) > 18):
        raise InvalidParameterValue("The Content-Length header is not a number of bytes.")
    if declared and int(declared) > limit:
        raise RequestEntityTooLarge(f"Request body of {declared} bytes exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge(f"Request body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, content_type: bytes, body: bytes, request_id: str | None = None
) -> None:
    """One whole response; every one carries a request id, as AWS's do."""
    request_id = request_id or query_protocol.new_request_id()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-amzn-requestid", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
