"""The console as an ASGI application, mounted at ``/console`` of ``trainmq serve``.

Each request is parsed here, its viewer resolved (signed in, or open mode), a
POST's CSRF value checked, and the view run on a worker thread (views call the
queue service and the store, which block).  Errors become pages: an SQS error
shows AWS's code and message, anything unexpected a plain 500, and nothing a
browser sent is ever placed in a page unescaped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from ..clock import Clock, SystemClock
from ..errors import SQSError, StorageError
from ..queue.service import SQSService
from ..server.auth import Credentials
from ..server.traffic import Traffic
from ..store import BlobNotFound, BlobStore, StoreError
from . import dlq, overview, queue, runs, session, store_view
from .context import Context, Route
from .http import (
    ROOT,
    ConsoleError,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    parse_request,
    read_body,
    send_response,
)
from .layout import Page, error_page
from .security import BROWSER_COOKIE, Guard, Viewer, new_browser_id

__all__ = ["Console"]

log = logging.getLogger("trainmq.console")

#: Largest form accepted: a 1 MiB message body, URL-encoded, with room to spare.
MAX_FORM_BYTES = 4 * 1024 * 1024
#: Largest sign-in form (a key id, a secret or a token, the CSRF value, ``next``).
MAX_LOGIN_BYTES = 64 * 1024
_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript"}
_PUBLIC = {session.login_page, session.login}


class Console:
    """The web console over one server's queue service, traffic counts and store."""

    def __init__(
        self,
        service: SQSService,
        traffic: Traffic,
        *,
        credentials: Credentials | None,
        store: BlobStore | None,
        clock: Clock | None = None,
        shared: Path | None = None,
    ) -> None:
        self.service = service
        self.traffic = traffic
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.guard = Guard(credentials, self.clock, shared=shared)
        routes: list[Route] = [
            *session.ROUTES,
            *overview.ROUTES,
            *queue.ROUTES,
            *dlq.ROUTES,
            *runs.ROUTES,
            *store_view.ROUTES,
        ]
        self._routes = [(re.compile(route.pattern + r"\Z"), route) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = parse_request(scope, b"")
        request.browser_id = request.cookies.get(BROWSER_COOKIE, "")
        if len(request.browser_id) < 16:
            request.browser_id, request.new_browser = new_browser_id(), True
        page = Page(request, None, self.guard.csrf_token(request.browser_id), self.guard.open)
        try:
            body = (
                await read_body(receive, self._body_limit(request))
                if request.method == "POST"
                else b""
            )
            if body:
                request.form = parse_request(scope, body).form
            response = await self._respond(request, page)
        except ConsoleError as error:
            response = error_page(page, error.status, error.title, error.detail)
        if request.new_browser:
            response.headers.append(
                (
                    "set-cookie",
                    f"{BROWSER_COOKIE}={request.browser_id}; Path={ROOT}; HttpOnly; "
                    "SameSite=Strict",
                )
            )
        if response.stream is not None:
            await _stream(send, response)
        else:
            await send_response(send, response)

    def _body_limit(self, request: Request) -> int:
        """How much of a POST is read; with credentials, nothing before a session is shown
        (only the small sign-in form), so that anonymous clients cannot fill memory."""
        if self.guard.open:
            return MAX_FORM_BYTES
        if request.path == "/login":
            return MAX_LOGIN_BYTES
        if self.guard.viewer(request) is None:
            raise ConsoleError(401, "Sign-in needed", "Sign in, then submit the form again.")
        return MAX_FORM_BYTES

    async def _respond(self, request: Request, page: Page) -> Response:
        if request.path.startswith("/static/"):
            return _static(request.path.removeprefix("/static/"))
        route, params = self._match(request)
        viewer = self.guard.viewer(request)
        page = Page(request, viewer, page.csrf, page.open_mode)
        if route.handler not in _PUBLIC and viewer is None:
            if request.method != "GET":
                raise ConsoleError(401, "Sign-in needed", "Sign in, then submit the form again.")
            return session.to_login(request)
        if request.method == "POST":
            self.guard.check_csrf(request)
        context = Context(
            page,
            viewer or Viewer(None),
            self.service,
            self.traffic,
            self.store,
            self.clock,
            self.guard,
        )
        try:
            return await asyncio.to_thread(route.handler, context, **params)
        except ConsoleError as error:
            return error_page(page, error.status, error.title, error.detail)
        except SQSError as error:
            return error_page(page, error.status, error.query_code, error.message)
        except BlobNotFound as error:
            return error_page(page, 404, "Not in the store", str(error))
        except StoreError as error:
            return error_page(page, 502, "Store error", str(error))
        except StorageError as error:
            log.error("storage error in the console: %s", error)
            return error_page(page, 503, "Queue database unavailable", str(error))
        except Exception:
            log.exception("unexpected error in the console at %s", request.path)
            return error_page(page, 500, "Internal error", "The error was logged by the server.")

    def _match(self, request: Request) -> tuple[Route, dict[str, str]]:
        allowed = False
        for pattern, route in self._routes:
            found = pattern.match(request.path)
            if found is None:
                continue
            if route.method == request.method:
                return route, found.groupdict()
            allowed = True
        if allowed:
            raise ConsoleError(405, "Method not allowed", f"{request.method} is not used here.")
        raise ConsoleError(404, "Not found", "There is no console page at this address.")


def _static(name: str) -> Response:
    content_type = _STATIC.get(name)
    if content_type is None:
        raise ConsoleError(404, "Not found", "No such file.")
    data = (resources.files("trainmq.console") / "static" / name).read_bytes()
    return Response(data, content_type=content_type, headers=[("cache-control", "max-age=300")])


async def _stream(send: Send, response: Response) -> None:
    """Send a blob in chunks, each read on a worker thread."""
    assert response.stream is not None
    chunks: Iterator[bytes] = response.stream
    headers = [
        ("content-type", response.content_type),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        *response.headers,
    ]
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    while True:
        chunk = await asyncio.to_thread(next, chunks, b"")
        if not chunk:
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
