"""Refusals made before a request is read: foreign Host names, cross-site browsers, unknown keys.

The server's default is open mode on loopback, where anything that can reach the
port may do anything.  Two things other than local programs can reach it:

* **A web page the developer visits** can make the browser send requests to
  ``127.0.0.1`` (``<img src>``, an auto-submitted form, a navigation).  Browsers
  mark such requests with ``Sec-Fetch-Site: cross-site`` and, for forms and
  ``fetch``, an ``Origin`` of the page; CLI tools and SDKs send neither.  Every
  such request is refused before it is parsed (:func:`cross_site_reason`).
* **DNS rebinding**: a page on ``evil.example`` whose name later resolves to
  ``127.0.0.1`` is same-origin with itself, so ``Origin`` checks pass; but its
  requests carry ``Host: evil.example``.  Only Host names of this server are
  served (:class:`HostPolicy`).

With credentials, a request that names no known access key is refused before
its body is read (:func:`refuse_unknown_key`), so unauthenticated clients cannot
make the server buffer megabytes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ..errors import IncompleteSignature, InvalidClientTokenId, MissingAuthenticationToken
from .auth import Credentials

__all__ = [
    "LOOPBACK_NAMES",
    "HostPolicy",
    "cross_site_reason",
    "host_name",
    "refuse_unknown_key",
]

#: Host names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_ALGORITHM = "AWS4-HMAC-SHA256 "


def host_name(header: str) -> str:
    """The name in a ``Host`` header, lower-cased, without port, brackets or final dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    """Loopback addresses and names; ``*.localhost`` too (RFC 6761: browsers resolve those to
    loopback themselves, so no DNS answer can rebind them), which regional endpoints such as
    ``sqs.eu-west-1.localhost`` use."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` headers this server answers.

    Always the loopback names and addresses; the address the server is bound to;
    the names given with ``--allowed-host`` (``*`` allows any).  Bound to a wildcard
    address (``0.0.0.0``, ``::``), any IP literal is accepted too: rebinding needs a
    DNS name, and the machine's addresses are not known in advance.
    """

    names: frozenset[str] = LOOPBACK_NAMES
    any_ip_literal: bool = False
    any_host: bool = False

    @classmethod
    def for_server(cls, bind_host: str, allowed: Iterable[str] = ()) -> HostPolicy:
        extra = {host_name(name) for name in allowed}
        bind = host_name(bind_host)
        return cls(
            names=LOOPBACK_NAMES | extra | ({bind} - _WILDCARDS),
            any_ip_literal=bind in _WILDCARDS,
            any_host="*" in extra,
        )

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is served (no header: HTTP/1.0)."""
        if header is None or self.any_host:
            return True
        name = host_name(header)
        if name in self.names or _is_loopback(name):
            return True
        return self.any_ip_literal and _is_ip_literal(name)


def _same_origin(url: str, host: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


def cross_site_reason(
    headers: Mapping[str, str], *, method: str, allow_navigation: bool = False
) -> str | None:
    """Why a browser's request from another site is refused, or None when it is not one.

    ``Sec-Fetch-Site`` is set by every current browser on every request (``none`` for
    what the user typed, ``same-origin`` for the server's own pages); ``Origin`` by
    forms and ``fetch``; ``Referer`` by older browsers.  A client that sends none of
    them is not a browser and is not refused here.  ``allow_navigation`` lets a
    top-level GET through (a link into the console; the console's GET pages change
    nothing); the API never allows it, since a Query-protocol GET can delete a queue.
    """
    host = headers.get("host", "")
    fetch_site = headers.get("sec-fetch-site", "").lower()
    navigation = (
        allow_navigation
        and method in ("GET", "HEAD")
        and headers.get("sec-fetch-mode", "").lower() == "navigate"
    )
    if fetch_site in ("cross-site", "same-site") and not navigation:
        return f"the browser marked the request {fetch_site} (Sec-Fetch-Site)"
    origin = headers.get("origin")
    if origin is not None and not _same_origin(origin, host):
        return f"it was sent from another site (Origin {origin[:100]})"
    referer = headers.get("referer")
    if referer and not navigation and not _same_origin(referer, host):
        return "it was sent from a page of another site (Referer)"
    return None


def _credential_key_id(headers: Mapping[str, str], query_string: str) -> str:
    authorization = headers.get("authorization")
    if authorization is not None:
        if not authorization.startswith(_ALGORITHM):
            raise IncompleteSignature(
                "Authorization header requires the AWS4-HMAC-SHA256 algorithm."
            )
        for part in authorization[len(_ALGORITHM) :].split(","):
            name, _, value = part.strip().partition("=")
            if name == "Credential":
                return value.partition("/")[0]
        raise IncompleteSignature("Authorization header requires 'Credential' parameter.")
    query = parse_qs(query_string, keep_blank_values=True)
    if "X-Amz-Signature" not in query:
        raise MissingAuthenticationToken()
    credential = query.get("X-Amz-Credential")
    if not credential:
        raise IncompleteSignature("The request is missing X-Amz-Credential.")
    return credential[0].partition("/")[0]


def refuse_unknown_key(
    headers: Mapping[str, str], query_string: str, credentials: Credentials
) -> None:
    """Raise the SQS error for a request that names no known access key.

    Only the key id is looked at (the signature needs the body and is verified
    later); this is what lets the server refuse before reading the body.
    """
    if credentials.get(_credential_key_id(headers, query_string)) is None:
        raise InvalidClientTokenId()
