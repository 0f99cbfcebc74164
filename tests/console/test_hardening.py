"""Attacks on the console: redirect targets, banner text, sessions after sign-out, sign-in timing,
anonymous uploads and foreign Host names — each performed, and its effect checked."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from typing import Any

import pytest

from trainmq.console import Console
from trainmq.server.auth import Credentials

from .conftest import ADMIN, PRODUCER, READER, ConsoleBrowser, Setup

SIGN_IN = {"access_key_id": ADMIN.access_key_id, "secret": ADMIN.secret_access_key}


def victim(setup: Setup, name: str = "victim") -> str:
    """A queue holding two messages."""
    url = str(setup.sqs.create_queue(QueueName=name)["QueueUrl"])
    for number in range(2):
        setup.sqs.send_message(QueueUrl=url, MessageBody=f"m{number}")
    return url


def depth(setup: Setup, url: str) -> str:
    attributes = setup.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return str(attributes["ApproximateNumberOfMessages"])


def console_of(setup: Setup) -> Console:
    console = setup.app.extra_routes["/console"]
    assert isinstance(console, Console)
    return console


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/queues/ü-日本", "/console/queues/%C3%BC-%E6%97%A5%E6%9C%AC"),
        ("/queues/x\r\nSet-Cookie: a=b", "/console/"),
        ("/\t/evil.example", "/console/"),
        ("/\n/evil.example", "/console/"),
    ],
    ids=["non-latin-1", "crlf", "tab", "newline"],
)
def test_sign_in_next_is_an_ascii_path_of_the_console(
    secured: Setup, target: str, location: str
) -> None:
    secured.browser.get("/login")
    answer = secured.browser.post("/login", {**SIGN_IN, "next": target})
    assert answer.status == 303
    assert answer.location == location
    assert "set-cookie: a=b" not in str(answer.headers).lower()


def test_the_login_page_escapes_a_hostile_next(secured: Setup) -> None:
    answer = secured.browser.get("/login?next=%2Fq%C3%BC%0d%0a%22%3E%3Cscript%3E")
    assert answer.status == 200
    assert "<script>" not in answer.text


def test_notice_shows_only_text_the_server_chose(console: Setup) -> None:
    phishing = "Your session expired: sign in again at http://evil.example/login"
    page = console.browser.get(f"/?notice=sent&message={phishing.replace(' ', '%20')}")
    assert page.status == 200
    assert "evil.example" not in page.text and "Message sent." in page.text
    other = console.browser.get("/?notice=purged&message=Call%20support%20now")
    assert "Call support" not in other.text and "Queue purged." in other.text
    message_id = str(uuid.uuid4())
    sent = console.browser.get(f"/?notice=sent&message={message_id}")
    assert f"Message sent. ({message_id})" in sent.text


def test_signing_out_ends_the_session_for_whoever_holds_the_cookie(secured: Setup) -> None:
    secured.browser.sign_in(ADMIN)
    stolen = dict(secured.browser.cookies)
    assert secured.browser.get("/").status == 200
    assert secured.browser.post("/logout").status == 303
    thief = secured.new_browser()
    thief.cookies = stolen
    answer = thief.get("/")
    assert answer.status == 303 and answer.location.startswith("/console/login")
    url = victim(secured)
    assert thief.post("/queues/victim/purge", {"confirm": "victim"}).status == 401
    assert depth(secured, url) == "2"


def test_removing_a_key_ends_its_sessions(secured: Setup) -> None:
    producer = secured.new_browser()
    producer.sign_in(PRODUCER)
    reader = secured.new_browser()
    reader.sign_in(READER)
    assert producer.get("/").status == 200 and reader.get("/").status == 200
    guard = console_of(secured).guard
    assert guard.credentials is not None
    guard.credentials = Credentials(
        {k: v for k, v in guard.credentials.keys.items() if k != PRODUCER.access_key_id}
    )
    assert producer.get("/").status == 303
    assert reader.get("/").status == 200
    assert guard.revoke_key(READER.access_key_id) == 1
    assert reader.get("/").status == 303


def test_sign_in_compares_a_secret_even_for_an_unknown_key_id(
    secured: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No early exit for an unknown key id: its timing would tell which key ids exist."""
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        compared.append(len(b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    secured.browser.get("/login")
    compared.clear()
    answer = secured.browser.post("/login", {"access_key_id": "AKIDNOBODY", "secret": "s" * 17})
    assert answer.status == 401
    assert 17 in compared


def test_an_anonymous_post_is_refused_before_its_body_is_read(secured: Setup) -> None:
    received: list[str] = []

    async def receive() -> dict[str, Any]:
        received.append("body")
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/console/queues/victim/purge",
        "raw_path": b"/console/queues/victim/purge",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:9324"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"4000000"),
        ],
        "scheme": "http",
        "server": ("127.0.0.1", 9324),
    }
    asyncio.run(secured.app(scope, receive, send))
    assert sent[0]["status"] == 401
    assert received == []


@pytest.mark.parametrize("host", ["evil.example", "evil.example:9324", "127.0.0.1.evil.example"])
def test_the_console_refuses_a_foreign_host(console: Setup, host: str) -> None:
    url = victim(console)
    browser = ConsoleBrowser(console.app)
    page = browser.get("/", host=host)
    assert page.status == 403 and "victim" not in page.text
    answer = browser.post("/queues/victim/purge", {"confirm": "victim"}, headers={"host": host})
    assert answer.status == 403
    assert depth(console, url) == "2"


def test_the_console_refuses_a_cross_site_form_but_follows_links(console: Setup) -> None:
    browser = ConsoleBrowser(console.app)
    link = browser.get("/", **{"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"})
    assert link.status == 200
    url = victim(console)
    forged = browser.post(
        "/queues/victim/purge",
        {"confirm": "victim"},
        headers={
            "origin": "http://evil.example",
            "sec-fetch-site": "cross-site",
            "sec-fetch-mode": "navigate",
        },
    )
    assert forged.status == 403
    assert depth(console, url) == "2"
