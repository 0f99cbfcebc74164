"""``trainmq serve`` and the console: on by default, ``--no-console``, ``--console-token``."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..server.conftest import CREDENTIALS_TOML, ServerProcess
from ..server.conftest import http as fetch


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def _start(tmp_path: Path, started: list[ServerProcess], *args: str) -> ServerProcess:
    server = ServerProcess(
        tmp_path / "queues.db",
        tmp_path / f"server-{len(started)}.log",
        "--store",
        str(tmp_path / "store"),
        *args,
    )
    started.append(server)
    return server.wait_ready()


def test_the_console_is_served_unless_turned_off(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    server = _start(tmp_path, servers)
    page = fetch(server.url + "/console/")
    assert page.status == 200 and b"trainmq console" in page.body
    assert "console: http://127.0.0.1:" in server.output()
    server.stop()
    off = _start(tmp_path, servers, "--no-console")
    answer = fetch(off.url + "/console/")
    assert answer.status != 200 and b"trainmq console" not in answer.body
    assert "console:" not in off.output()


def test_console_token_is_printed_and_signs_in(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    credentials = tmp_path / "credentials.toml"
    credentials.write_text(CREDENTIALS_TOML, "utf-8")
    server = _start(
        tmp_path, servers, "--credentials", str(credentials), "--console-token", "AKIDADMIN"
    )
    found = re.search(r"console token for AKIDADMIN \(12 hours\): (\S+)", server.output())
    assert found is not None
    first = fetch(server.url + "/console/login")
    cookie = first.headers["set-cookie"].split(";", 1)[0]
    csrf = re.search(rb'name="csrf-token" content="([0-9a-f]+)"', first.body)
    assert csrf is not None
    body = f"token={found.group(1)}&csrf={csrf.group(1).decode()}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/console/login",
            body,
            {"content-type": "application/x-www-form-urlencoded", "cookie": cookie},
        )
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 303
        session = answer.getheader("set-cookie", "").split(";", 1)[0]
    finally:
        connection.close()
    assert session.startswith("trainmq_console_session=")
    overview = fetch(server.url + "/console/", headers={"cookie": f"{cookie}; {session}"})
    assert overview.status == 200 and b"Signed in as admin" in overview.body


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--console-token", "AKIDADMIN"], "--console-token needs --credentials"),
        (["--store", "ftp://nowhere"], "unknown store address"),
    ],
)
def test_bad_console_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trainmq", "serve", "--db", str(tmp_path / "q.db"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
