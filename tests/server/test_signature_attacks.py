"""Attacks on signatures: presigned URLs reused for other requests, signatures of
another scope, and headers left out of the signature.  Each is refused, and the
queue is checked (as admin) to be as it was; legitimate uses keep working."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import botocore.auth
import pytest

from trainmq.server.app import SQSApp

from .inprocess import (
    ADMIN,
    ALICE,
    BASE,
    FORM,
    JSON,
    Client,
    build_app,
    call,
    closing,
    sign_by_hand,
    url,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SQSApp]:
    yield from closing(build_app(tmp_path))


@pytest.fixture
def admin(app: SQSApp) -> Client:
    """The admin, with a-main holding one message."""
    client = Client(app, ADMIN)
    client.ok("CreateQueue", {"QueueName": "a-main"})
    client.ok("SendMessage", {"QueueUrl": url("a-main"), "MessageBody": "keep me"})
    return client


@pytest.fixture
def alice(app: SQSApp, admin: Client) -> Client:
    return Client(app, ALICE)


def counts(admin: Client) -> tuple[int, int]:
    """(visible, in flight) messages of a-main."""
    attributes = admin.ok(
        "GetQueueAttributes", {"QueueUrl": url("a-main"), "AttributeNames": ["All"]}
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


# -- item 3: a presigned URL signs one request ----------------------------------------------------
@pytest.mark.parametrize("unsigned_payload", [False, True])
def test_a_presigned_url_works_as_intended(alice: Client, unsigned_payload: bool) -> None:
    link = alice.presign(
        {"Action": "GetQueueUrl", "QueueName": "a-main"}, unsigned_payload=unsigned_payload
    )
    answer = call(alice.app, "GET", link, {})
    assert answer.status == 200 and url("a-main").encode() in answer.body


def test_a_presigned_url_cannot_carry_a_body_with_another_action(
    alice: Client, admin: Client
) -> None:
    link = alice.presign(
        {"Action": "GetQueueUrl", "QueueName": "a-main"}, unsigned_payload=True, method="POST"
    )
    body = urlencode({"Action": "PurgeQueue", "QueueUrl": url("a-main")}).encode()
    answer = call(alice.app, "POST", link, {"Content-Type": FORM}, body)
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    assert counts(admin) == (1, 0)


def test_a_presigned_url_cannot_become_a_json_request(alice: Client, admin: Client) -> None:
    link = alice.presign(
        {"Action": "GetQueueUrl", "QueueName": "a-main"}, unsigned_payload=True, method="POST"
    )
    body = json.dumps({"QueueUrl": url("a-main")}).encode()
    headers = {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.ReceiveMessage"}
    answer = call(alice.app, "POST", link, headers, body)
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    without_body = call(alice.app, "POST", link, headers)
    assert without_body.status == 403 and without_body.code == "SignatureDoesNotMatch"
    assert counts(admin) == (1, 0)


def presigned_at(
    client: Client, monkeypatch: pytest.MonkeyPatch, seconds_ago: int, expires: int
) -> str:
    signed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds_ago)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
    link = client.presign(
        {"Action": "GetQueueUrl", "QueueName": "a-main"}, expires=expires, unsigned_payload=True
    )
    monkeypatch.undo()
    return link


def test_an_expired_presigned_url_is_refused(
    alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired = presigned_at(alice, monkeypatch, seconds_ago=5, expires=1)
    answer = call(alice.app, "GET", expired, {})
    assert answer.status == 400 and answer.code == "RequestExpired"
    # Valid for an hour, signed twenty minutes ago: still good (beyond the 15 minutes skew).
    fresh = presigned_at(alice, monkeypatch, seconds_ago=20 * 60, expires=3600)
    assert call(alice.app, "GET", fresh, {}).status == 200


def test_presigned_urls_live_at_most_seven_days(alice: Client) -> None:
    link = alice.presign(
        {"Action": "GetQueueUrl", "QueueName": "a-main"}, expires=604801, unsigned_payload=True
    )
    answer = call(alice.app, "GET", link, {})
    assert answer.status == 400 and answer.code == "IncompleteSignature"
    parts = urlsplit(alice.presign({"Action": "GetQueueUrl", "QueueName": "a-main"}))
    without = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "X-Amz-Expires"])
    answer = call(alice.app, "GET", f"{BASE}/?{without}", {})
    assert answer.status == 400 and answer.code == "IncompleteSignature"


# -- item 4: the scope and the signed headers ----------------------------------------------------
def purge_headers() -> tuple[dict[str, str], bytes]:
    body = json.dumps({"QueueUrl": url("a-main")}).encode()
    return {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.PurgeQueue"}, body


@pytest.mark.parametrize(
    ("region", "service"), [("eu-west-9", "sqs"), ("us-east-1", "s3"), ("us-east-1", "dynamodb")]
)
def test_a_signature_for_another_region_or_service_is_refused(
    app: SQSApp, admin: Client, region: str, service: str
) -> None:
    headers, body = purge_headers()
    request = Client(app, ALICE, region=region).signed(
        "POST", BASE + "/", body, headers, service=service
    )
    answer = Client(app, ALICE).send(request)
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    assert counts(admin) == (1, 0)


def test_a_scope_date_other_than_the_request_date_is_refused(app: SQSApp, admin: Client) -> None:
    headers, body = purge_headers()
    signed = sign_by_hand(ALICE, headers, body, amz_date=now_stamp(), scope_date="20200101")
    answer = call(app, "POST", BASE + "/", signed, body)
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    assert counts(admin) == (1, 0)


def test_host_and_every_amz_header_must_be_signed(app: SQSApp, admin: Client) -> None:
    headers, body = purge_headers()
    stamp = now_stamp()
    only_date = sign_by_hand(
        ALICE, headers, body, amz_date=stamp, scope_date=stamp[:8], signed=("x-amz-date",)
    )
    # A host the server answers to (evil.example is refused before any signature check, by
    # the Host allow-list), but not the one signed for: the signature must cover it.
    answer = call(app, "POST", "http://localhost:1/", only_date, body)
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    answer = call(app, "POST", "http://evil.example/", only_date, body)
    assert answer.status == 403 and answer.code == "AccessDenied"
    no_target = sign_by_hand(
        ALICE, headers, body, amz_date=stamp, scope_date=stamp[:8], signed=("host", "x-amz-date")
    )
    answer = call(app, "POST", BASE + "/", no_target, body)
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    assert counts(admin) == (1, 0)
    complete = sign_by_hand(ALICE, headers, body, amz_date=stamp, scope_date=stamp[:8])
    assert call(app, "POST", BASE + "/", complete, body).status == 200
    assert counts(admin) == (0, 0)


def test_unsigned_payload_is_refused_on_signed_requests(alice: Client, admin: Client) -> None:
    headers, body = purge_headers()
    request = alice.signed(
        "POST", BASE + "/", body, {**headers, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    swapped = json.dumps({"QueueUrl": url("a-main"), "MaxNumberOfMessages": 1}).encode()
    answer = call(
        alice.app,
        "POST",
        BASE + "/",
        {**dict(request.headers.items()), "X-Amz-Target": "AmazonSQS.PurgeQueue"},
        swapped,
    )
    assert answer.status == 403 and answer.code == "SignatureDoesNotMatch"
    assert counts(admin) == (1, 0)


def test_an_unsigned_user_agent_header_is_accepted(alice: Client) -> None:
    """Some SDKs (JavaScript v3) send x-amz-user-agent without signing it."""
    request = alice.signed(
        "POST",
        BASE + "/",
        json.dumps({"QueueName": "a-main"}).encode(),
        {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.GetQueueUrl"},
    )
    answer = alice.send(request, **{"X-Amz-User-Agent": "aws-sdk-js/3.0"})
    assert answer.status == 200


def test_a_signature_for_another_region_acts_only_at_that_regions_endpoint(
    app: SQSApp, admin: Client
) -> None:
    """A key signing for eu-west-1 is refused at the server's own endpoint (the scope names a
    region the endpoint does not serve), works at ``/queue/eu-west-1``, and cannot reach the
    home region's queues from there with a decoy QueueUrl."""
    abroad = Client(app, ADMIN, region="eu-west-1")
    assert abroad.json("ListQueues", {}).code == "SignatureDoesNotMatch"
    created = abroad.send(
        abroad.signed(
            "POST",
            BASE + "/queue/eu-west-1/",
            json.dumps({"QueueName": "a-main"}).encode(),
            {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.CreateQueue"},
        )
    )
    assert created.status == 200, created.body
    assert "/queue/eu-west-1/" in created.json()["QueueUrl"]
    decoy = abroad.send(
        abroad.signed(
            "POST",
            BASE + "/queue/eu-west-1/",
            json.dumps({"QueueUrl": url("a-main")}).encode(),
            {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.PurgeQueue"},
        )
    )
    assert decoy.status == 403 and decoy.code == "AccessDenied"
    assert counts(admin) == (1, 0)
