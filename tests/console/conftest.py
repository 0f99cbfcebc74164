"""The console in-process: an ASGI driver that keeps cookies and CSRF values like a browser.

``ConsoleBrowser`` calls the server's ASGI app directly (no socket), so each
test sees exactly one request's status, headers and page.  The fixtures give
an open-mode console and one behind credentials with three keys of different
grants.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from trainmq.console import mount_console
from trainmq.queue.client import LocalClient, open_service
from trainmq.server.app import SQSApp
from trainmq.server.auth import AccessKey, Credentials, Grant
from trainmq.store import LocalStore

ADMIN = AccessKey("admin", "AKIDADMIN", "admin-secret", (Grant(("*",), ("*",)),))
PRODUCER = AccessKey(
    "producer",
    "AKIDPRODUCER",
    "producer-secret",
    (
        Grant(("SendMessage", "GetQueueAttributes", "ListQueues"), ("train-*",)),
        Grant(("ReceiveMessage",), ("train-requests",)),
    ),
)
READER = AccessKey(
    "reader",
    "AKIDREADER",
    "reader-secret",
    (Grant(("ListQueues", "GetQueueAttributes", "ReceiveMessage", "trainmq:ViewRuns"), ("*",)),),
)
CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    cookies: list[str]

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class ConsoleBrowser:
    """Requests to one app, carrying cookies and the newest page's CSRF value."""

    def __init__(self, app: SQSApp) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, Any] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        body = urlencode(form, doseq=True).encode() if form is not None else b""
        raw_path, _, query = path.partition("?")
        head = {"host": "127.0.0.1:9324", **(headers or {})}
        if body:
            head["content-type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            head["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        scope = {
            "type": "http",
            "method": method,
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [(k.encode(), v.encode()) for k, v in head.items()],
            "scheme": "http",
            "server": ("127.0.0.1", 9324),
        }
        answer = asyncio.run(self._call(scope, body))
        for line in answer.cookies:
            jar = SimpleCookie(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        found = CSRF.search(answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    async def _call(self, scope: dict[str, Any], body: bytes) -> Answer:
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = sent[0]
        raw_headers = [(k.decode(), v.decode()) for k, v in start["headers"]]
        payload = b"".join(m.get("body", b"") for m in sent[1:])
        return Answer(
            start["status"],
            dict(raw_headers),
            payload.decode("utf-8", "replace"),
            [v for k, v in raw_headers if k == "set-cookie"],
        )

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", "/console" + path, headers=headers)

    def post(
        self,
        path: str,
        form: dict[str, Any] | list[tuple[str, str]] | None = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        fields: list[tuple[str, str]] = (
            list(form.items()) if isinstance(form, dict) else list(form or [])
        )
        if csrf:
            if not self.csrf:
                self.get("/")
            fields.append(("csrf", self.csrf))
        return self.request("POST", "/console" + path, fields, headers)

    def sign_in(self, key: AccessKey) -> Answer:
        self.get("/login")
        return self.post(
            "/login", {"access_key_id": key.access_key_id, "secret": key.secret_access_key}
        )


@dataclass
class Setup:
    app: SQSApp
    sqs: LocalClient
    store: LocalStore
    browser: ConsoleBrowser

    def new_browser(self) -> ConsoleBrowser:
        return ConsoleBrowser(self.app)


def _setup(tmp_path: Path, credentials: Credentials | None) -> Iterator[Setup]:
    service = open_service(tmp_path / "queues.db")
    store = LocalStore(tmp_path / "store")
    app = SQSApp(service, credentials=credentials)
    mount_console(app, store)
    try:
        yield Setup(app, LocalClient(service), store, ConsoleBrowser(app))
    finally:
        service.backend.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Setup]:
    """A console in open mode (no credentials)."""
    yield from _setup(tmp_path, None)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Setup]:
    """A console behind credentials: keys ADMIN, PRODUCER and READER; nobody signed in."""
    keys = {key.access_key_id: key for key in (ADMIN, PRODUCER, READER)}
    yield from _setup(tmp_path, Credentials(keys))
