"""Sign-in, console tokens, CSRF and per-action grants."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainmq.clock import FakeClock
from trainmq.console.http import ConsoleError, Request
from trainmq.console.security import Guard
from trainmq.server.auth import Credentials

from .conftest import ADMIN, PRODUCER, READER, ConsoleBrowser, Setup
from .seed import seed_queues, seed_run


def test_open_mode_says_so_and_needs_no_sign_in(console: Setup) -> None:
    page = console.browser.get("/")
    assert page.status == 200
    assert 'class="mode open">Open mode' in page.text and "anyone who can reach it" in page.text
    assert console.browser.get("/login").location == "/console/"


def test_pages_need_sign_in_when_the_server_has_credentials(secured: Setup) -> None:
    answer = secured.browser.get("/queues/jobs?after=3")
    assert answer.status == 303
    assert answer.location == "/console/login?next=%2Fqueues%2Fjobs%3Fafter%3D3"
    login = secured.browser.get("/login?next=%2Fruns")
    assert login.status == 200 and "Open mode" not in login.text
    refused = secured.browser.post(
        "/login", {"access_key_id": ADMIN.access_key_id, "secret": "wrong", "next": "/runs"}
    )
    assert refused.status == 401 and "wrong secret" in refused.text
    assert "trainmq_console_session" not in secured.browser.cookies
    signed = secured.browser.post(
        "/login",
        {"access_key_id": ADMIN.access_key_id, "secret": ADMIN.secret_access_key, "next": "/runs"},
    )
    assert signed.status == 303 and signed.location == "/console/runs"
    page = secured.browser.get("/")
    assert page.status == 200 and "Signed in as admin (AKIDADMIN)" in page.text
    assert "Open mode" not in page.text
    out = secured.browser.post("/logout")
    assert out.status == 303 and "trainmq_console_session" not in secured.browser.cookies
    assert secured.browser.get("/").status == 303


def test_sign_in_never_redirects_off_the_console(secured: Setup) -> None:
    secured.browser.get("/login")
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        answer = secured.browser.post(
            "/login",
            {
                "access_key_id": ADMIN.access_key_id,
                "secret": ADMIN.secret_access_key,
                "next": target,
            },
        )
        assert answer.location == "/console/"


def test_a_console_token_signs_in_with_its_keys_grants(secured: Setup) -> None:
    guard = Guard(secured.app.credentials)
    token = guard.console_token(PRODUCER.access_key_id)
    browser = secured.new_browser()
    browser.get("/login")
    answer = browser.post("/login", {"token": token})
    assert answer.status == 303
    assert "Signed in as producer" in browser.get("/").text
    assert browser.get("/runs").status == 403
    forged = secured.new_browser()
    forged.get("/login")
    assert forged.post("/login", {"token": token[:-2] + "00"}).status == 401


def test_tokens_and_sessions_expire() -> None:
    clock = FakeClock()
    guard = Guard(Credentials({ADMIN.access_key_id: ADMIN}), clock)
    token = guard.console_token(ADMIN.access_key_id, seconds=60)
    session = guard.sign_in("", "", token)
    clock.advance(61)
    with pytest.raises(ConsoleError, match="Sign-in failed"):
        guard.sign_in("", "", token)
    request = Request("GET", "/", {}, {}, {"trainmq_console_session": session}, {})
    assert guard.viewer(request) is not None
    clock.advance(12 * 3600)
    assert guard.viewer(request) is None


def test_posts_without_the_csrf_value_change_nothing(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    console.browser.get("/queues/jobs")
    missing = console.browser.post("/queues/jobs/send", {"body": "x"}, csrf=False)
    assert missing.status == 403 and "Form expired" in missing.text
    wrong = console.browser.post("/queues/jobs/send", {"body": "x", "csrf": "0" * 64}, csrf=False)
    assert wrong.status == 403
    stranger = ConsoleBrowser(console.app)  # another browser's value is worth nothing here
    stranger.get("/")
    stolen = stranger.post(
        "/queues/jobs/send", {"body": "x", "csrf": console.browser.csrf}, csrf=False
    )
    assert stolen.status == 403
    other_site = console.browser.post(
        "/queues/jobs/send", {"body": "x"}, headers={"origin": "http://evil.example"}
    )
    assert other_site.status == 403 and "another site" in other_site.text
    assert console.browser.post("/queues/jobs/purge", {"confirm": "jobs"}, csrf=False).status == 403
    assert console.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    same_site = console.browser.post(
        "/queues/jobs/send", {"body": "x"}, headers={"origin": "http://127.0.0.1:9324"}
    )
    assert same_site.status == 303


def test_every_action_is_checked_against_the_keys_grants(secured: Setup) -> None:
    urls = seed_queues(secured.sqs)
    seed_run(secured.store, "r-7", 1_790_000_000.0)
    producer = secured.new_browser()
    producer.sign_in(PRODUCER)
    overview = producer.get("/")
    assert "train-requests" in overview.text and "prepare-requests" not in overview.text
    assert producer.get("/queues/prepare-requests").status == 403
    sent = producer.post("/queues/train-requests/send", {"body": "ok"})
    assert sent.status == 303
    purge = producer.post("/queues/train-requests/purge", {"confirm": "train-requests"})
    assert purge.status == 403 and "no grant for PurgeQueue on queue train-requests" in purge.text
    attributes = producer.post("/queues/train-requests/attributes", {"VisibilityTimeout": "5"})
    assert attributes.status == 403
    redrive = producer.post("/dlq/train-requests-dlq/redrive", {"mode": "all"})
    assert redrive.status == 403
    assert producer.get("/runs").status == 403
    assert "needs the ReceiveMessage grant" in producer.get("/queues/train-requests-dlq").text

    reader = secured.new_browser()
    reader.sign_in(READER)
    assert reader.get("/queues/prepare-requests").status == 200
    assert reader.post("/queues/prepare-requests/send", {"body": "no"}).status == 403
    assert reader.get("/runs").status == 200
    depth = secured.sqs.get_queue_attributes(QueueUrl=urls["dlq"], AttributeNames=["All"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "3"


def test_processes_of_one_server_share_sessions_and_csrf_values(tmp_path: Path) -> None:
    """``serve --workers N``: a browser signed in through one process is signed in on all,
    and signing out through another ends the session everywhere."""
    credentials = Credentials({ADMIN.access_key_id: ADMIN})
    first = Guard(credentials, shared=tmp_path)
    second = Guard(credentials, shared=tmp_path)
    alone = Guard(credentials)
    session = first.sign_in(ADMIN.access_key_id, ADMIN.secret_access_key, "")
    request = Request("GET", "/", {}, {}, {"trainmq_console_session": session}, {})
    viewer = second.viewer(request)
    assert viewer is not None and viewer.key == ADMIN
    assert alone.viewer(request) is None
    assert first.csrf_token("browser") == second.csrf_token("browser")
    assert alone.csrf_token("browser") != first.csrf_token("browser")
    second.sign_out(request)
    assert first.viewer(request) is None
    again = first.sign_in(ADMIN.access_key_id, ADMIN.secret_access_key, "")
    assert second.revoke_key(ADMIN.access_key_id) == 1
    assert first.viewer(Request("GET", "/", {}, {}, {"trainmq_console_session": again}, {})) is None
