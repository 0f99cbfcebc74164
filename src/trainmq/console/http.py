"""Requests and responses of the console, over plain ASGI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

__all__ = [
    "ConsoleError",
    "Request",
    "Response",
    "read_body",
    "redirect",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The console's mount point below the server's root.
ROOT = "/console"


class ConsoleError(Exception):
    """A request the console answers with an error page (``status``, a title, details)."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


@dataclass
class Request:
    """One request: ``path`` is below the console's root (``/queues/jobs``)."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    cookies: dict[str, str]
    headers: dict[str, str]
    browser_id: str = ""
    new_browser: bool = False

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default

    def fields(self, name: str) -> list[str]:
        return list(self.form.get(name, []))


@dataclass
class Response:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: A body sent in chunks as they are read (a blob download) instead of ``body``.
    stream: Iterator[bytes] | None = None


def redirect(location: str, **params: str) -> Response:
    """A 303 to ``location`` (below the console's root) with a query of ``params``."""
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
    target = ROOT + location + (("?" + query) if query else "")
    return Response(status=303, headers=[("location", target)])


def parse_request(scope: Scope, body: bytes) -> Request:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    cookies: dict[str, str] = {}
    try:
        jar = SimpleCookie(headers.get("cookie", ""))
        cookies = {name: morsel.value for name, morsel in jar.items()}
    except CookieError:
        cookies = {}
    form: dict[str, list[str]] = {}
    if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    path = scope["path"][len(ROOT) :] or "/"
    return Request(scope["method"], path, query, form, cookies, headers)


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ConsoleError(413, "Request too large", f"The request is over {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


#: Sent with every console response: no framing, no inline script, no sniffing.
SECURITY_HEADERS = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
]


async def send_response(send: Send, response: Response) -> None:
    body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
    own = {name for name, _ in response.headers}
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(body))),
        *[(name, value) for name, value in SECURITY_HEADERS if name not in own],
        *response.headers,
    ]
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
