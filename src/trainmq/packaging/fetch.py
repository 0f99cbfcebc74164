"""Fetching a compiled dependency's wheel for another Lambda runtime, with pip itself.

An extension built for the Python that runs the build (say 3.11) does not load
in another runtime (say python3.12).  Rather than asking the user to run
``pip download --platform ...`` and pass the folder, the builder runs exactly
that command: pip resolves the wheel that fits the target's Python version and
CPU, with the user's own index settings (``pip.conf``, ``PIP_INDEX_URL``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lambda_zip import Target

__all__ = ["Downloader", "download_command", "pip_download"]

#: ``(name, version, target, folder)``: put the wheel of ``name==version`` for ``target``
#: into ``folder``; raise ``OSError`` or ``subprocess.CalledProcessError`` when it cannot.
Downloader = Callable[[str, str, "Target", Path], None]


def download_command(name: str, version: str, target: Target, dest: Path | str) -> list[str]:
    """The ``pip download`` arguments that fetch ``name==version`` built for ``target``."""
    py = f"{target.python[0]}.{target.python[1]}"
    return [
        "pip",
        "download",
        "--only-binary=:all:",
        "--no-deps",
        "--python-version",
        py,
        "--platform",
        f"manylinux2014_{target.machine}",
        "--dest",
        str(dest),
        f"{name}=={version}",
    ]


def pip_download(name: str, version: str, target: Target, dest: Path) -> None:
    """Run ``pip download`` with this interpreter's pip; its output is kept for the error."""
    command = [sys.executable, "-m", *download_command(name, version, target, dest)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
