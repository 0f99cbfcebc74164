"""Signed requests to an in-process ``SQSApp``: botocore's own signers, no socket.

The attack tests use two keys, as the issue describing the attacks did: ``admin``
(``*`` on ``*``) and ``alice`` (``*`` on queues ``a-*``).  Each request is signed
the way a client would sign it (``SigV4Auth`` for headers, ``SigV4QueryAuth``
for presigned URLs), or by ``sign_by_hand`` where an attack needs a signature no
SDK would make (another scope date, too few signed headers).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from trainmq.queue.client import open_service
from trainmq.server.app import SQSApp
from trainmq.server.auth import AccessKey, Credentials, Grant

REGION = "us-east-1"
ACCOUNT = "000000000000"
HOST = "127.0.0.1:9324"
BASE = f"http://{HOST}"
JSON = "application/x-amz-json-1.0"
FORM = "application/x-www-form-urlencoded"

ADMIN = AccessKey("admin", "AKIDADMIN", "admin-secret-5e0a", (Grant(("*",), ("*",)),))
ALICE = AccessKey("alice", "AKIDALICE", "alice-secret-93bd", (Grant(("*",), ("a-*",)),))


def url(name: str) -> str:
    return f"{BASE}/{ACCOUNT}/{name}"


def arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str:
        """The query-compatible error code of either protocol ("" for a success)."""
        if self.status < 400:
            return ""
        if "x-amzn-query-error" in self.headers:
            return self.headers["x-amzn-query-error"].split(";")[0]
        found = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return found.group(1).decode() if found else "?"

    def json(self) -> Any:
        return json.loads(self.body)


def build_app(directory: Path) -> SQSApp:
    service = open_service(directory / "queues.db", endpoint=BASE)
    keys = {key.access_key_id: key for key in (ADMIN, ALICE)}
    return SQSApp(service, credentials=Credentials(keys))


def closing(app: SQSApp) -> Iterator[SQSApp]:
    try:
        yield app
    finally:
        app.service.backend.close()


def call(
    app: SQSApp, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
) -> Answer:
    """One HTTP request to the app, as a server would hand it over."""
    parts = urlsplit(target)
    head = {"host": parts.netloc or HOST, **{k.lower(): v for k, v in headers.items()}}
    scope = {
        "type": "http",
        "method": method,
        "path": parts.path or "/",
        "raw_path": (parts.path or "/").encode(),
        "query_string": parts.query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in head.items()],
        "scheme": "http",
        "server": ("127.0.0.1", 9324),
    }
    return asyncio.run(_run(app, scope, body))


async def _run(app: SQSApp, scope: dict[str, Any], body: bytes) -> Answer:
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

    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:]))


class Client:
    """Requests signed with one key, as an SDK signs them."""

    def __init__(self, app: SQSApp, key: AccessKey, *, region: str = REGION) -> None:
        self.app = app
        self.key = key
        self.region = region

    @property
    def credentials(self) -> BotoCredentials:
        return BotoCredentials(self.key.access_key_id, self.key.secret_access_key)

    def signed(
        self,
        method: str,
        target: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        service: str = "sqs",
    ) -> AWSRequest:
        request = AWSRequest(method=method, url=target, data=body, headers=dict(headers))
        SigV4Auth(self.credentials, service, self.region).add_auth(request)
        return request

    def send(self, request: AWSRequest, **override: str) -> Answer:
        headers = {k: v for k, v in request.headers.items()}
        headers.update(override)
        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        return call(self.app, request.method, request.url, headers, body)

    def json(self, action: str, payload: Mapping[str, Any], **headers: str) -> Answer:
        """A JSON-protocol request (boto3's shape)."""
        request = self.signed(
            "POST",
            BASE + "/",
            json.dumps(payload).encode(),
            {"Content-Type": JSON, "X-Amz-Target": f"AmazonSQS.{action}", **headers},
        )
        return self.send(request)

    def ok(self, action: str, payload: Mapping[str, Any]) -> Any:
        answer = self.json(action, payload)
        assert answer.status == 200, (action, answer.status, answer.body)
        return answer.json()

    def query(self, params: Mapping[str, str], *, path: str = "/") -> Answer:
        """A Query-protocol request posted to ``path`` (a queue URL's path, or ``/``)."""
        body = urlencode({**params, "Version": "2012-11-05"}).encode()
        request = self.signed("POST", BASE + path, body, {"Content-Type": FORM})
        return self.send(request)

    def presign(
        self,
        params: Mapping[str, str],
        *,
        expires: int = 300,
        unsigned_payload: bool = False,
        method: str = "GET",
    ) -> str:
        """A presigned URL (GET unless told) for a Query request, as botocore's presigner makes it
        (signing the empty body's hash), or as S3-style signers do (UNSIGNED-PAYLOAD)."""
        target = f"{BASE}/?{urlencode({**params, 'Version': '2012-11-05'})}"
        request = AWSRequest(method=method, url=target)
        signer = _UnsignedPayloadQueryAuth if unsigned_payload else SigV4QueryAuth
        signer(self.credentials, "sqs", self.region, expires=expires).add_auth(request)
        return str(request.url)


class _UnsignedPayloadQueryAuth(SigV4QueryAuth):
    def payload(self, request: AWSRequest) -> str:
        return "UNSIGNED-PAYLOAD"


def sign_by_hand(
    key: AccessKey,
    headers: dict[str, str],
    body: bytes,
    *,
    amz_date: str,
    scope_date: str,
    region: str = REGION,
    service: str = "sqs",
    signed: Sequence[str] = ("host", "x-amz-date", "x-amz-target"),
) -> dict[str, str]:
    """An Authorization header for a POST to ``/``, with a scope and signed-header list
    chosen by the caller: signatures that are valid arithmetic but that no SDK makes."""
    lower = {k.lower(): v for k, v in {"host": HOST, **headers, "x-amz-date": amz_date}.items()}
    names = sorted(signed)
    canonical = "\n".join(
        [
            "POST",
            quote("/", safe="/~"),
            "",
            "".join(f"{n}:{' '.join(lower[n].split())}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{scope_date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    signing_key = ("AWS4" + key.secret_access_key).encode()
    for part in (scope_date, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        **headers,
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}",
    }
