"""LocalStack for ``bench/http.py``: installed into a virtual environment of its own, started
in host mode with only SQS, on a loopback port, and stopped after the run.

LocalStack is the emulator most SQS users run (community edition, in memory). Its
pinned dependencies conflict with trainmq's, so it gets its own environment under
the benchmark's folder (``localstack-venv-<version>``), made on first use with a
Python that can run it: ``localstack-core`` 2026.x needs Python 3.13 (it uses
``warnings.deprecated``), although its metadata says 3.10. The newest release
(2026.3.0) is measured; older ones in ``VERSIONS`` are tried in turn if a release
will not install or start (for example because it asks for an account or an auth
token), and the report names the one that ran and why the others did not.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from http_servers import HOST, Server, free_port, start_process

#: Its dependencies that are not pinned, at the newest versions that it still runs with:
#: later releases removed what it imports (``cbor2._decoder``, pyOpenSSL's
#: ``X509.add_extensions``) and twisted's TLS needs ``service_identity``.
PINS = ("cbor2<6", "pyopenssl<24.3", "cryptography<44", "service_identity<24.3")
#: Releases to try, newest first, with the oldest Python each runs on.
VERSIONS = (("2026.3.0", (3, 13)), ("4.14.0", (3, 11)))
INSTALL_SECONDS = 900.0


@dataclass
class LocalStackRun:
    """The LocalStack server started, or why none could be."""

    server: Server | None
    version: str | None
    notes: list[str] = field(default_factory=list)


def _python_candidates(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    found = [shutil.which(name) for name in ("python3.14", "python3.13")]
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found += sorted(glob.glob(f"{pyenv}/versions/3.1[3-9]*/bin/python"), reverse=True)
    return [f for f in found if f] + [sys.executable]


def _runs(python: str, least: tuple[int, int]) -> bool:
    try:
        check = subprocess.run(
            [python, "-c", f"import sys; sys.exit(sys.version_info < {least})"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def _venv(root: Path, version: str, least: tuple[int, int], python: str | None) -> Path:
    """The environment's interpreter, with ``localstack-core[runtime]==version`` installed."""
    venv = root / f"localstack-venv-{version}"
    interpreter = venv / "bin" / "python"
    marker = venv / "installed"
    if marker.exists():
        return interpreter
    base = next((p for p in _python_candidates(python) if _runs(p, least)), None)
    if base is None:
        wanted = ".".join(map(str, least))
        raise RuntimeError(f"no Python {wanted} or newer found (give one: --localstack-python)")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    print(f"  installing localstack-core {version} into {venv}", file=sys.stderr, flush=True)
    subprocess.run(
        [
            str(interpreter),
            *("-m", "pip", "install", "-q", f"localstack-core[runtime]=={version}", *PINS),
        ],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    marker.write_text(version)
    return interpreter


def _environment(port: int, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINMQ_", "PYTHON"))}
    env.update(
        GATEWAY_LISTEN=f"{HOST}:{port}",
        LOCALSTACK_HOST=f"{HOST}:{port}",
        SERVICES="sqs",
        EAGER_SERVICE_LOADING="1",  # ready means SQS is loaded, not only the gateway
        SQS_ENDPOINT_STRATEGY="path",  # queue URLs on this endpoint, as trainmq's are
        DISABLE_EVENTS="1",  # no analytics calls (nothing outside is reachable anyway)
        DNS_ADDRESS="0",  # no DNS server of its own
        FILESYSTEM_ROOT=str(data),
        PERSISTENCE="0",
    )
    return env


def start_localstack(root: Path, log_dir: Path, python: str | None = None) -> LocalStackRun:
    """The newest LocalStack release that installs and starts, or none, with the reasons."""
    run = LocalStackRun(None, None)
    for version, least in VERSIONS:
        try:
            interpreter = _venv(root, version, least, python)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            run.notes.append(f"LocalStack {version} could not be installed: {exc}")
            continue
        port = free_port()
        data = log_dir / f"localstack-{version}-data"
        data.mkdir(exist_ok=True)
        command = [str(interpreter), "-m", "localstack.runtime.main"]
        try:
            run.server = start_process(
                "localstack", command, port, log_dir, _environment(port, data), ready_path="sqs"
            )
        except RuntimeError as exc:
            run.notes.append(f"LocalStack {version} did not start: {str(exc)[-600:]}")
            continue
        run.version = version
        return run
    return run
