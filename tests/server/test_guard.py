"""The Host allow-list and the cross-site rules, as plain functions."""

from __future__ import annotations

import pytest

from trainmq.errors import IncompleteSignature, InvalidClientTokenId, MissingAuthenticationToken
from trainmq.server.auth import AccessKey, Credentials
from trainmq.server.guard import HostPolicy, cross_site_reason, host_name, refuse_unknown_key


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:9324", "127.0.0.1"),
        ("[::1]:9324", "::1"),
        ("LocalHost.", "localhost"),
        ("Queues.Example:80", "queues.example"),
    ],
)
def test_host_names_are_read_without_port_case_or_final_dot(header: str, name: str) -> None:
    assert host_name(header) == name


def test_loopback_only_by_default() -> None:
    policy = HostPolicy.for_server("127.0.0.1")
    regional = "sqs.eu-west-1.localhost:9"
    for ok in ("127.0.0.1:1", "localhost", "[::1]:9", "127.0.0.2", regional, None):
        assert policy.allows(ok), ok
    for bad in ("evil.example", "localhost.evil.example", "10.0.0.5", "127.0.0.1.evil", ""):
        assert not policy.allows(bad), bad


def test_bound_address_allowed_names_and_wildcards() -> None:
    policy = HostPolicy.for_server("10.0.0.5", ["queues.lan"])
    assert policy.allows("10.0.0.5:9324") and policy.allows("QUEUES.lan:9324")
    assert not policy.allows("10.0.0.6") and not policy.allows("evil.example")
    wildcard = HostPolicy.for_server("0.0.0.0")
    assert wildcard.allows("192.168.1.7:9324") and wildcard.allows("[fe80::1]:9324")
    assert not wildcard.allows("rebound.evil.example")
    assert HostPolicy.for_server("127.0.0.1", ["*"]).allows("anything.example")


def test_cross_site_rules() -> None:
    own = {"host": "127.0.0.1:9324"}
    assert cross_site_reason(own, method="POST") is None  # an SDK: no browser headers
    same = {**own, "origin": "http://127.0.0.1:9324", "sec-fetch-site": "same-origin"}
    assert cross_site_reason(same, method="POST") is None
    assert cross_site_reason({**own, "sec-fetch-site": "none"}, method="GET") is None
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:9999"},
        {"referer": "http://evil.example/x"},
    ):
        assert cross_site_reason({**own, **headers}, method="POST") is not None, headers
    link = {**own, "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    assert cross_site_reason(link, method="GET") is not None  # never on the API
    assert cross_site_reason(link, method="GET", allow_navigation=True) is None
    assert cross_site_reason(link, method="POST", allow_navigation=True) is not None


def test_unknown_keys_are_found_from_the_headers_alone() -> None:
    credentials = Credentials({"AKIDKNOWN": AccessKey("k", "AKIDKNOWN", "s", ())})
    known = "AWS4-HMAC-SHA256 Credential=AKIDKNOWN/20250101/us-east-1/sqs/aws4_request, X=y"
    refuse_unknown_key({"authorization": known}, "", credentials)
    refuse_unknown_key({}, "X-Amz-Signature=ab&X-Amz-Credential=AKIDKNOWN%2F2025", credentials)
    with pytest.raises(MissingAuthenticationToken):
        refuse_unknown_key({}, "Action=ListQueues", credentials)
    with pytest.raises(InvalidClientTokenId):
        refuse_unknown_key({"authorization": known.replace("KNOWN", "OTHER")}, "", credentials)
    with pytest.raises(InvalidClientTokenId):
        refuse_unknown_key({}, "X-Amz-Signature=ab&X-Amz-Credential=AKIDX%2F2025", credentials)
    for malformed in ("Basic abc", "AWS4-HMAC-SHA256 Signature=00"):
        with pytest.raises(IncompleteSignature):
            refuse_unknown_key({"authorization": malformed}, "", credentials)
