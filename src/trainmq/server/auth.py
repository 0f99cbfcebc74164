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

import dataclasses
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
#: The longest a presigned URL may be valid, as AWS allows: 7 days.
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: An informational header some SDKs (JavaScript v3) send without signing it.
_UNSIGNED_ALLOWED = frozenset({"x-amz-user-agent"})


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


@dataclass(frozen=True)
class _Signature:
    """The signing values a request carries, in its header or its query string."""

    credential: str
    signed_headers: str
    signature: str
    amz_date: str
    presigned: bool
    expires: int | None = None


def _from_query(query: Mapping[str, str]) -> _Signature:
    """A presigned URL's values; it must say how long it is valid (at most 7 days)."""
    try:
        algorithm = query["X-Amz-Algorithm"]
        found = _Signature(
            query["X-Amz-Credential"],
            query["X-Amz-SignedHeaders"],
            query["X-Amz-Signature"],
            query["X-Amz-Date"],
            presigned=True,
        )
        expires_text = query["X-Amz-Expires"]
    except KeyError as exc:
        raise IncompleteSignature(f"The request is missing {exc.args[0]}.") from None
    if algorithm != _ALGORITHM:
        raise IncompleteSignature(f"X-Amz-Algorithm only supports {_ALGORITHM}.")
    if not (expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 7):
        raise IncompleteSignature("X-Amz-Expires must be a number of seconds.")
    expires = int(expires_text)
    if not 1 <= expires <= MAX_PRESIGNED_SECONDS:
        raise IncompleteSignature(
            f"X-Amz-Expires must be between 1 and {MAX_PRESIGNED_SECONDS} seconds (7 days)."
        )
    return dataclasses.replace(found, expires=expires)


def _signature_of(request: SignedRequest, query: Mapping[str, str]) -> _Signature:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        fields = _parse_authorization(authorization)
        return _Signature(
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
            request.headers.get("x-amz-date", ""),
            presigned=False,
        )
    if "X-Amz-Signature" in query:
        return _from_query(query)
    raise MissingAuthenticationToken()


def _check_time(found: _Signature, now: dt.datetime) -> None:
    """A signed request is good for 15 minutes either side of its date; a presigned
    URL from 15 minutes before its date until its X-Amz-Expires has passed."""
    try:
        when = dt.datetime.strptime(found.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise IncompleteSignature("The request must carry a valid X-Amz-Date.") from None
    age = (now - when).total_seconds()
    if found.expires is not None:
        if age > found.expires or age < -MAX_SKEW_SECONDS:
            raise RequestExpired(
                f"Request has expired. Presigned at {found.amz_date} for {found.expires} "
                f"seconds; the server time is {now:%Y%m%dT%H%M%SZ}."
            )
    elif abs(age) > MAX_SKEW_SECONDS:
        raise RequestExpired(
            f"Request has expired. Request date {found.amz_date} is more than 15 minutes from "
            f"the server time {now:%Y%m%dT%H%M%SZ}."
        )


def _check_scope(found: _Signature, scope: Sequence[str], region: str) -> None:
    """The credential scope must be this server's: the request's own date, the
    server's region and the sqs service (a signature for anything else is not ours)."""
    _, date, scope_region, service, _ = scope
    if date != found.amz_date[:8]:
        raise SignatureDoesNotMatch(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{date}' != '{found.amz_date[:8]}', from '{found.amz_date}'."
        )
    if scope_region != region:
        raise SignatureDoesNotMatch(
            f"Credential should be scoped to a valid region, not '{scope_region}'."
        )
    if service != "sqs":
        raise SignatureDoesNotMatch(
            f"Credential should be scoped to correct service: 'sqs', not '{service}'."
        )


def _check_signed_headers(request: SignedRequest, found: _Signature, signed: list[str]) -> None:
    """``host`` and every ``x-amz-*`` header the request carries must be signed: an
    unsigned one could be replaced (another X-Amz-Target, another Host)."""
    if "host" not in signed:
        raise SignatureDoesNotMatch("The host header must be signed.")
    for name in request.headers:
        if name.startswith("x-amz-") and name not in _UNSIGNED_ALLOWED and name not in signed:
            raise SignatureDoesNotMatch(f"The header {name} is present but not signed.")
    if found.presigned and request.body:
        raise SignatureDoesNotMatch(
            "A presigned URL signs its query string only: the request must not carry a body."
        )


def _payload_hashes(request: SignedRequest, found: _Signature) -> list[str]:
    """The payload hashes the signature may cover.  A signed request signs its body's
    SHA-256, as SQS requires (UNSIGNED-PAYLOAD is S3's, not SQS's).  A presigned URL
    has no body: SDKs sign the empty body's hash, S3-style signers UNSIGNED-PAYLOAD,
    and both mean the same here."""
    declared = request.headers.get("x-amz-content-sha256")
    actual = hashlib.sha256(request.body).hexdigest()
    if found.presigned:
        if declared not in (None, _UNSIGNED_PAYLOAD, actual):
            raise SignatureDoesNotMatch()
        return [actual, _UNSIGNED_PAYLOAD]
    if declared is not None and declared != actual:
        raise SignatureDoesNotMatch()  # the body is not the one that was signed
    return [actual]


def verify(
    request: SignedRequest, credentials: Credentials, now: dt.datetime, region: str
) -> AccessKey:
    """Check the request's SigV4 signature (header or query form); return its key."""
    query = dict(parse_qsl(request.query_string, keep_blank_values=True))
    found = _signature_of(request, query)
    scope = found.credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise IncompleteSignature(f"Credential is malformed: {found.credential}")
    key = credentials.get(scope[0])
    if key is None:
        raise InvalidClientTokenId()
    _check_time(found, now)
    _check_scope(found, scope, region)
    signed = found.signed_headers.split(";")
    _check_signed_headers(request, found, signed)
    signing_key = _signing_key(key.secret_access_key, scope[1], region, "sqs")
    for payload_hash in _payload_hashes(request, found):
        canonical = "\n".join(
            [
                request.method,
                quote(request.raw_path or "/", safe="/~"),
                _canonical_query(request.query_string, found.presigned),
                _canonical_headers(request, signed),
                found.signed_headers,
                payload_hash,
            ]
        )
        string_to_sign = "\n".join(
            [
                _ALGORITHM,
                found.amz_date,
                f"{scope[1]}/{region}/sqs/aws4_request",
                hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
            ]
        )
        expected = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256)
        signature = found.signature
        if signature.isascii() and hmac.compare_digest(expected.hexdigest(), signature):
            return key
    raise SignatureDoesNotMatch()
