"""AWS Signature Version 4 verification and per-key grants.

A credentials file (TOML) lists access keys, each with the actions it may call
on which queue-name patterns — the local counterpart of IAM policies::

    [[keys]]
    name = "producer"
    access_key_id = "AKIDPRODUCER"
    secret_access_key = "..."
    grants = [
      { actions = ["SendMessage", "SendMessageBatch", "GetQueueUrl"], queues = ["train-*"] },
    ]

Actions may be written ``SendMessage``, ``sqs:SendMessage``, ``*`` or ``sqs:*``;
queue patterns use shell wildcards.  Secrets are never logged or repr'd.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote

from ..errors import (
    ConfigurationError,
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

__all__ = ["AccessKey", "Credentials", "Grant", "SignedRequest", "load_credentials"]

_ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    queues: tuple[str, ...]

    def allows(self, action: str, queue: str | None) -> bool:
        names = {a.removeprefix("sqs:") for a in self.actions}
        if "*" not in names and action not in names:
            return False
        if queue is None:
            return True
        return any(fnmatch.fnmatchcase(queue, pattern) for pattern in self.queues)


@dataclass(frozen=True)
class AccessKey:
    name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    grants: tuple[Grant, ...]

    def allows(self, action: str, queue: str | None) -> bool:
        return any(grant.allows(action, queue) for grant in self.grants)

    def queue_patterns(self, action: str) -> list[str]:
        return [p for g in self.grants if g.allows(action, None) for p in g.queues]


@dataclass(frozen=True)
class Credentials:
    keys: Mapping[str, AccessKey]

    def get(self, access_key_id: str) -> AccessKey | None:
        return self.keys.get(access_key_id)


def load_credentials(path: Path) -> Credentials:
    """Read and check a credentials file; ConfigurationError names what is wrong."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read credentials file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"credentials file {path} is not valid TOML: {exc}") from exc
    keys: dict[str, AccessKey] = {}
    for index, raw in enumerate(data.get("keys", [])):
        where = f"{path}: keys[{index}]"
        try:
            key_id, secret = str(raw["access_key_id"]), str(raw["secret_access_key"])
        except (KeyError, TypeError):
            raise ConfigurationError(f"{where} needs access_key_id and secret_access_key") from None
        grants = []
        for grant in raw.get("grants", []):
            actions, queues = grant.get("actions"), grant.get("queues", ["*"])
            if not isinstance(actions, list) or not isinstance(queues, list):
                raise ConfigurationError(f"{where}: each grant needs lists 'actions' and 'queues'")
            grants.append(Grant(tuple(map(str, actions)), tuple(map(str, queues))))
        if key_id in keys:
            raise ConfigurationError(f"{where}: access key {key_id} is listed twice")
        keys[key_id] = AccessKey(str(raw.get("name", key_id)), key_id, secret, tuple(grants))
    if not keys:
        raise ConfigurationError(f"credentials file {path} lists no keys")
    return Credentials(keys)


@dataclass(frozen=True)
class SignedRequest:
    """What SigV4 needs of an HTTP request, as it arrived."""

    method: str
    raw_path: str
    query_string: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


def _parse_authorization(header: str) -> dict[str, str]:
    if not header.startswith(_ALGORITHM + " "):
        raise IncompleteSignature(f"Authorization header requires the {_ALGORITHM} algorithm.")
    fields: dict[str, str] = {}
    for part in header[len(_ALGORITHM) + 1 :].split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in fields:
            raise IncompleteSignature(
                f"Authorization header requires '{required}' parameter. Authorization={header}"
            )
    return fields


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _canonical_query(query_string: str, skip_signature: bool) -> str:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    if skip_signature:
        pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(request: SignedRequest, signed: Sequence[str]) -> str:
    lines = []
    for name in signed:
        value = request.headers.get(name)
        if value is None:
            raise SignatureDoesNotMatch()
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def verify(request: SignedRequest, credentials: Credentials, now: dt.datetime) -> AccessKey:
    """Check the request's SigV4 signature (header or query form); return its key."""
    query = dict(parse_qsl(request.query_string, keep_blank_values=True))
    authorization = request.headers.get("authorization")
    presigned = authorization is None and "X-Amz-Signature" in query
    if authorization is not None:
        fields = _parse_authorization(authorization)
        credential, signed_headers = fields["Credential"], fields["SignedHeaders"]
        signature = fields["Signature"]
        amz_date = request.headers.get("x-amz-date", "")
    elif presigned:
        try:
            credential = query["X-Amz-Credential"]
            signed_headers = query["X-Amz-SignedHeaders"]
            signature = query["X-Amz-Signature"]
            amz_date = query["X-Amz-Date"]
        except KeyError as exc:
            raise IncompleteSignature(f"The request is missing {exc.args[0]}.") from None
    else:
        raise MissingAuthenticationToken()
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise IncompleteSignature(f"Credential is malformed: {credential}")
    key_id, date, region, service, _ = scope
    key = credentials.get(key_id)
    if key is None:
        raise InvalidClientTokenId()
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise IncompleteSignature("The request must carry a valid X-Amz-Date.") from None
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS:
        raise RequestExpired(
            f"Request has expired. Request date {amz_date} is more than 15 minutes from "
            f"the server time {now:%Y%m%dT%H%M%SZ}."
        )
    signed = signed_headers.split(";")
    payload_hash = request.headers.get("x-amz-content-sha256")
    if payload_hash is None:
        payload_hash = "UNSIGNED-PAYLOAD" if presigned else hashlib.sha256(request.body).hexdigest()
    elif payload_hash not in ("UNSIGNED-PAYLOAD", hashlib.sha256(request.body).hexdigest()):
        raise SignatureDoesNotMatch()  # the body is not the one that was signed
    canonical = "\n".join(
        [
            request.method,
            quote(request.raw_path or "/", safe="/~"),
            _canonical_query(request.query_string, presigned),
            _canonical_headers(request, signed),
            signed_headers,
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            _ALGORITHM,
            amz_date,
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        ]
    )
    expected = hmac.new(
        _signing_key(key.secret_access_key, date, region, service),
        string_to_sign.encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    if not (signature.isascii() and hmac.compare_digest(expected, signature)):
        raise SignatureDoesNotMatch()
    return key

