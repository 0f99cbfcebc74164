"""SigV4 authentication and per-key grants of ``trainmq serve --credentials``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .conftest import (
    ADMIN,
    CREDENTIALS_TOML,
    PRODUCER,
    REGION,
    Response,
    ServerProcess,
    free_port,
    http,
)
from .query_model import query_client

JSON = "application/x-amz-json-1.0"


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def signed_request(
    server: ServerProcess,
    action: str,
    payload: Mapping[str, Any],
    key: tuple[str, str],
    headers: Mapping[str, str] | None = None,
) -> AWSRequest:
    """A JSON-protocol request signed by botocore's own SigV4 signer."""
    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": JSON, "X-Amz-Target": f"AmazonSQS.{action}", **(headers or {})},
    )
    SigV4Auth(Credentials(*key), "sqs", REGION).add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None) -> Response:
    return http(request.url, request.body if body is None else body, dict(request.headers.items()))


def json_error(answer: Response) -> tuple[int, str]:
    """(status, the query-compatible code) of a JSON-protocol error answer."""
    assert answer.status >= 400, f"the request was accepted: {answer.status} {answer.body!r}"
    assert json.loads(answer.body)["__type"].startswith(
        ("com.amazonaws.sqs#", "com.amazon.coral.service#")
    )
    return answer.status, answer.headers["x-amzn-query-error"].split(";")[0]


@pytest.fixture
def queues(auth_server: ServerProcess, request: pytest.FixtureRequest) -> dict[str, str]:
    """A ``train-*`` and an ``eval-*`` queue of the test's own (created by the admin key)."""
    admin = auth_server.client(ADMIN)
    suffix = request.node.name.removeprefix("test_")[:40].replace("_", "-")
    return {
        prefix: admin.create_queue(QueueName=f"{prefix}-{suffix}")["QueueUrl"]
        for prefix in ("train", "eval")
    }


def test_signed_requests_of_a_known_key_pass(
    auth_server: ServerProcess, queues: dict[str, str]
) -> None:
    admin = auth_server.client(ADMIN)
    admin.send_message(QueueUrl=queues["eval"], MessageBody="signed")
    messages = admin.receive_message(QueueUrl=queues["eval"])["Messages"]
    assert [m["Body"] for m in messages] == ["signed"]
    admin.delete_message(QueueUrl=queues["eval"], ReceiptHandle=messages[0]["ReceiptHandle"])
    assert set(queues.values()) <= set(admin.list_queues()["QueueUrls"])


def test_query_protocol_requests_are_verified_too(
    auth_server: ServerProcess, queues: dict[str, str], tmp_path: Path
) -> None:
    name = queues["train"].rsplit("/", 1)[1]
    admin = query_client(auth_server.url, tmp_path / "models", ADMIN)
    assert admin.get_queue_url(QueueName=name)["QueueUrl"] == queues["train"]
    impostor = query_client(auth_server.url, tmp_path / "models", (ADMIN[0], "wrong"))
    assert error_code(impostor.get_queue_url, QueueName=name) == "SignatureDoesNotMatch"


def test_wrong_secret_and_unknown_key_are_refused(
    auth_server: ServerProcess, queues: dict[str, str]
) -> None:
    wrong_secret = auth_server.client((ADMIN[0], ADMIN[1] + "x"))
    assert (
        error_code(wrong_secret.send_message, QueueUrl=queues["train"], MessageBody="no")
        == "SignatureDoesNotMatch"
    )
    unknown = auth_server.client(("AKIDNOBODY", ADMIN[1]))
    assert error_code(unknown.list_queues) == "InvalidClientTokenId"
    depth = auth_server.client(ADMIN).get_queue_attributes(
        QueueUrl=queues["train"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_request_signed_twenty_minutes_ago_has_expired(
    auth_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    request = signed_request(auth_server, "ListQueues", {}, ADMIN)
    assert request.headers["X-Amz-Date"] == past.strftime("%Y%m%dT%H%M%SZ")
    assert json_error(send(request)) == (400, "RequestExpired")

    monkeypatch.undo()
    assert send(signed_request(auth_server, "ListQueues", {}, ADMIN)).status == 200


def test_body_changed_after_signing_is_refused(
    auth_server: ServerProcess, queues: dict[str, str]
) -> None:
    original = {"QueueUrl": queues["train"], "MessageBody": "pay 1"}
    request = signed_request(auth_server, "SendMessage", original, ADMIN)
    tampered = json.dumps({**original, "MessageBody": "pay 1000"}).encode()
    assert json_error(send(request, tampered)) == (403, "SignatureDoesNotMatch")
    assert send(request).status == 200


def test_body_changed_under_a_signed_content_hash_is_refused(
    auth_server: ServerProcess, queues: dict[str, str]
) -> None:
    original = {"QueueUrl": queues["eval"], "MessageBody": "pay 1"}
    digest = hashlib.sha256(json.dumps(original).encode()).hexdigest()
    request = signed_request(
        auth_server, "SendMessage", original, ADMIN, headers={"X-Amz-Content-SHA256": digest}
    )
    tampered = json.dumps({**original, "MessageBody": "pay 1000"}).encode()
    assert json_error(send(request, tampered)) == (403, "SignatureDoesNotMatch")


def test_non_ascii_signature_is_a_mismatch_not_a_crash(auth_server: ServerProcess) -> None:
    now = dt.datetime.now(dt.UTC)
    headers = {
        "Content-Type": JSON,
        "X-Amz-Target": "AmazonSQS.ListQueues",
        "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ADMIN[0]}/{now:%Y%m%d}/{REGION}/sqs/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=\u00e9" + "0" * 63,
    }
    assert json_error(http(auth_server.url + "/", b"{}", headers)) == (403, "SignatureDoesNotMatch")


def test_grants_limit_actions_and_queues(
    auth_server: ServerProcess, queues: dict[str, str]
) -> None:
    producer = auth_server.client(PRODUCER)
    url = producer.get_queue_url(QueueName=queues["train"].rsplit("/", 1)[1])["QueueUrl"]
    assert producer.send_message(QueueUrl=url, MessageBody="granted")["MessageId"]
    assert error_code(producer.receive_message, QueueUrl=url) == "AccessDenied"
    assert (
        error_code(producer.send_message, QueueUrl=queues["eval"], MessageBody="not granted")
        == "AccessDenied"
    )
    assert error_code(producer.delete_queue, QueueUrl=url) == "AccessDenied"
    assert error_code(producer.list_queues) == "AccessDenied"

    admin = auth_server.client(ADMIN)
    messages = admin.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in messages] == ["granted"]
    admin.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    depth = admin.get_queue_attributes(
        QueueUrl=queues["eval"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_unsigned_requests_are_refused(auth_server: ServerProcess) -> None:
    answer = http(
        auth_server.url + "/", b"{}", {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.ListQueues"}
    )
    assert json_error(answer) == (403, "MissingAuthenticationToken")
    form = http(
        auth_server.url + "/",
        b"Action=ListQueues&Version=2012-11-05",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 403
    assert b"<Code>MissingAuthenticationToken</Code>" in form.body


def test_secrets_never_appear_in_the_output(
    auth_server: ServerProcess, queues: dict[str, str]
) -> None:
    for key in [(ADMIN[0], PRODUCER[1]), (PRODUCER[0], ADMIN[1])]:
        assert error_code(auth_server.client(key).list_queues) == "SignatureDoesNotMatch"
    auth_server.client(ADMIN).send_message(QueueUrl=queues["eval"], MessageBody="x")
    output = auth_server.output()
    assert "serving" in output  # the output is really the server's
    for secret in (ADMIN[1], PRODUCER[1]):
        assert secret not in output


def serve_once(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "trainmq",
        "serve",
        "--port",
        str(free_port()),
        "--db",
        str(tmp_path / "refused.db"),
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def test_refuses_a_non_loopback_address_without_credentials(tmp_path: Path) -> None:
    refused = serve_once(tmp_path, "--host", "0.0.0.0")
    assert refused.returncode not in (0, None)
    lines = [line for line in (refused.stdout + refused.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "--credentials" in lines[0]
    assert "0.0.0.0" in lines[0]


def test_a_bad_credentials_file_is_refused_without_echoing_secrets(tmp_path: Path) -> None:
    path = tmp_path / "twice.toml"
    path.write_text(CREDENTIALS_TOML + CREDENTIALS_TOML, "utf-8")
    refused = serve_once(tmp_path, "--credentials", str(path))
    assert refused.returncode not in (0, None)
    output = refused.stdout + refused.stderr
    assert "listed twice" in output
    assert ADMIN[1] not in output
    assert PRODUCER[1] not in output
