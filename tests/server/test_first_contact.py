"""What a newcomer sees of ``trainmq serve``: the start banner, ``GET /``, a bad or busy port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from trainmq.cli.exit_codes import ExitCode

from .conftest import StartServer, free_port, http


def test_banner_names_database_store_and_auth(start_server: StartServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = start_server("--store", str(store))
    output = server.output()
    assert f"trainmq serving SQS on {server.url}" in output
    assert f"database: {server.db}" in output
    assert f"store: {store}" in output
    assert "auth: none: any credentials are accepted (loopback only)" in output


def test_root_page_points_at_the_console_and_the_api(start_server: StartServer) -> None:
    server = start_server()
    answer = http(server.url + "/")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.body.decode()
    assert 'href="/console"' in page and f"http://127.0.0.1:{server.port}" in page


def test_favicon_is_not_an_unknown_action(start_server: StartServer) -> None:
    server = start_server()
    assert http(server.url + "/favicon.ico").status == 204
    metrics = http(server.url + "/metrics").body.decode()
    assert 'action="unknown"' not in metrics


def test_query_requests_on_root_still_reach_sqs(start_server: StartServer) -> None:
    server = start_server()
    answer = http(server.url + "/?Action=ListQueues&Version=2012-11-05")
    assert answer.status == 200 and b"ListQueuesResponse" in answer.body


def _serve(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainmq", "serve", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_an_impossible_port_is_refused(tmp_path: Path) -> None:
    done = _serve("--port", "99999", db=tmp_path / "queues.db")
    assert done.returncode == ExitCode.USAGE
    assert "'--port'" in done.stderr and "65535" in done.stderr
    assert "serving" not in done.stderr


def test_a_busy_port_fails_before_serving_with_a_named_code(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        done = _serve("--port", str(port), db=tmp_path / "queues.db")
    assert done.returncode == ExitCode.PORT_UNAVAILABLE
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "serving" not in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
