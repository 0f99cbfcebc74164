"""Attacks from browsers and from slow or unauthenticated clients, each performed for real.

Each test sends what the attacker sends (requests shaped as Chromium sends them
for an ``<img src>`` or an auto-submitted form, a rebound Host name, headers that
never end ...) and then checks, as a legitimate client, that nothing changed.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .conftest import ADMIN, PRODUCER, REGION, Response, ServerProcess, StartServer, http

FORM = "application/x-www-form-urlencoded"
#: What Chromium adds to the request an ``<img src="http://127.0.0.1:9324/?...">`` makes.
IMG_HEADERS = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
    "Sec-Fetch-Dest": "image",
    "Referer": "http://evil.example/",
    "Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
}
#: ... and to the POST an auto-submitted ``<form method=post>`` of evil.example makes.
FORM_HEADERS = {
    "Content-Type": FORM,
    "Origin": "http://evil.example",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Referer": "http://evil.example/",
    "User-Agent": IMG_HEADERS["User-Agent"],
}


def queue_with_messages(server: ServerProcess, name: str, count: int = 3) -> str:
    client = server.client(ADMIN)
    url = str(client.create_queue(QueueName=name)["QueueUrl"])
    for number in range(count):
        client.send_message(QueueUrl=url, MessageBody=f"message {number}")
    return url


def assert_untouched(server: ServerProcess, url: str, count: int = 3) -> None:
    """The queue still exists and still holds its messages (checked as a legitimate client)."""
    client = server.client(ADMIN)
    name = url.rsplit("/", 1)[-1]
    assert client.get_queue_url(QueueName=name)["QueueUrl"] == url
    attributes = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == str(count)


def query(url: str, action: str, queue_url: str) -> str:
    return urllib.parse.urlencode({"Action": action, "QueueUrl": queue_url})


# -- cross-site request forgery -------------------------------------------------------------
def test_img_src_cannot_delete_a_queue(server: ServerProcess) -> None:
    url = queue_with_messages(server, "csrf-img")
    answer = http(f"{server.url}/?{query(server.url, 'DeleteQueue', url)}", None, IMG_HEADERS)
    assert answer.status == 403, answer
    assert b"AccessDenied" in answer.body
    assert_untouched(server, url)


def test_auto_submitted_form_cannot_purge_a_queue(server: ServerProcess) -> None:
    url = queue_with_messages(server, "csrf-form")
    body = query(server.url, "PurgeQueue", url).encode()
    answer = http(server.url + "/", body, FORM_HEADERS)
    assert answer.status == 403, answer
    assert_untouched(server, url)


OTHER_BROWSER_SHAPES = {
    "origin": {"Origin": "http://evil.example"},  # a browser without Fetch Metadata
    "null-origin": {"Origin": "null"},  # a sandboxed frame or a file:// page
    "same-site": {"Sec-Fetch-Site": "same-site"},  # a page on another port of localhost
    "referer": {"Referer": "http://evil.example/page"},  # an older browser's <img>
}


@pytest.mark.parametrize("shape", list(OTHER_BROWSER_SHAPES))
def test_other_browser_shapes_are_refused(server: ServerProcess, shape: str) -> None:
    headers = OTHER_BROWSER_SHAPES[shape]
    url = queue_with_messages(server, f"csrf-{shape}")
    body = query(server.url, "PurgeQueue", url).encode()
    answer = http(server.url + "/", body, {"Content-Type": FORM, **headers})
    assert answer.status == 403, answer
    assert_untouched(server, url)


def test_json_protocol_from_a_page_is_refused(server: ServerProcess) -> None:
    url = queue_with_messages(server, "csrf-json")
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "AmazonSQS.DeleteQueue",
        "Origin": "http://evil.example",
        "Sec-Fetch-Site": "cross-site",
    }
    answer = http(server.url + "/", f'{{"QueueUrl": "{url}"}}'.encode(), headers)
    assert answer.status == 403 and answer.headers["x-amzn-query-error"].startswith("AccessDenied")
    assert_untouched(server, url)


def test_clients_without_browser_headers_still_work(server: ServerProcess) -> None:
    """CLI tools and SDKs send neither Sec-Fetch-Site nor Origin: the Query GET works."""
    url = queue_with_messages(server, "csrf-cli")
    answer = http(f"{server.url}/?{query(server.url, 'PurgeQueue', url)}")
    assert answer.status == 200, answer
    assert_untouched(server, url, count=0)


def test_the_consoles_own_pages_may_post(server: ServerProcess) -> None:
    """A same-origin browser request (what the console sends) is served."""
    answer = http(
        server.url + "/",
        b"Action=ListQueues",
        {
            "Content-Type": FORM,
            "Origin": server.url,
            "Sec-Fetch-Site": "same-origin",
            "Referer": server.url + "/console/",
        },
    )
    assert answer.status == 200, answer


# -- DNS rebinding --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/console/", "/metrics"])
def test_a_rebound_host_name_is_refused(server: ServerProcess, path: str) -> None:
    url = queue_with_messages(server, "rebind-" + path.strip("/"))
    target = f"{server.url}{path}?{query(server.url, 'DeleteQueue', url)}"
    answer = http(target, None, {"Host": f"evil.example:{server.port}"})
    assert answer.status == 403, answer
    assert url.encode() not in answer.body
    assert_untouched(server, url)


def test_allowed_host_names_are_served(start_server: StartServer) -> None:
    server = start_server("--allowed-host", "queues.internal")
    answer = http(server.url + "/?Action=ListQueues", None, {"Host": "queues.internal:80"})
    assert answer.status == 200, answer
    for host in ("localhost", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
        assert http(server.url + "/?Action=ListQueues", None, {"Host": host}).status == 200
    refused = http(server.url + "/?Action=ListQueues", None, {"Host": "queues.internal.evil"})
    assert refused.status == 403


# -- /metrics with credentials --------------------------------------------------------------
def signed_get(url: str, key: tuple[str, str]) -> Response:
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(*key), "sqs", REGION).add_auth(request)
    return http(url, None, dict(request.headers.items()))


def test_metrics_need_a_signature_and_a_grant(auth_server: ServerProcess) -> None:
    queue_with_messages(auth_server, "metrics-secret-name", count=1)
    unsigned = http(auth_server.url + "/metrics")
    assert unsigned.status == 403 and b"metrics-secret-name" not in unsigned.body
    producer = signed_get(auth_server.url + "/metrics", PRODUCER)
    assert producer.status == 403 and b"metrics-secret-name" not in producer.body
    admin = signed_get(auth_server.url + "/metrics", ADMIN)
    assert admin.status == 200 and b'queue="metrics-secret-name"' in admin.body


def test_metrics_public_serves_them_unsigned(
    start_server: StartServer, credentials_file: Path
) -> None:
    server = start_server("--credentials", str(credentials_file), "--metrics-public")
    assert http(server.url + "/metrics").status == 200


# -- work before authentication, slow clients, connection limits ----------------------------
def send_head(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.replace("\n", "\r\n").encode())
    return sock


def read_status(sock: socket.socket) -> int:
    line = sock.makefile("rb").readline()
    assert line, "the connection closed without an answer"
    return int(line.split()[1])


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (answering nothing more)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDNOBODY/20250101/us-east-1/sqs/"
        "aws4_request, SignedHeaders=host, Signature=00\n",
    ],
    ids=["unsigned", "unknown-key"],
)
def test_unauthenticated_requests_are_refused_before_the_body(
    auth_server: ServerProcess, authorization: str
) -> None:
    """The server answers after the headers alone; it never waits for the 3 MiB body."""
    head = (
        "POST / HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/x-amz-json-1.0\n"
        f"X-Amz-Target: AmazonSQS.ListQueues\n{authorization}Content-Length: 3000000\n\n"
    )
    with send_head(auth_server.port, head) as sock:
        sock.settimeout(5)
        assert read_status(sock) in (400, 403)


def test_headers_that_never_end_are_cut_off(start_server: StartServer) -> None:
    server = start_server("--header-timeout", "1")
    with send_head(server.port, "POST / HTTP/1.1\nHost: 127.0.0.1\nX-Slow: ") as sock:
        started = time.monotonic()
        assert closed_within(sock, 8)
        assert time.monotonic() - started < 8
    assert server.healthy()


def test_a_body_that_never_ends_is_cut_off(start_server: StartServer) -> None:
    server = start_server("--body-timeout", "1")
    head = (
        "POST / HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/x-amz-json-1.0\n"
        "X-Amz-Target: AmazonSQS.ListQueues\nContent-Length: 1000\n\n{"
    )
    with send_head(server.port, head) as sock:
        assert closed_within(sock, 8)
    assert server.healthy()


def test_connections_beyond_the_limit_are_closed(start_server: StartServer) -> None:
    server = start_server("--max-connections", "4", "--header-timeout", "30")
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            assert closed_within(extra, 5)
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while not server.healthy() and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval: the server notices the closed sockets
    assert server.healthy()
