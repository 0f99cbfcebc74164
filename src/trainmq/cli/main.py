"""``trainmq``: the command, assembled from its modules.

The Typer application and the options every command shares live in
``cli/app.py``; each module below registers its commands on it when imported.
"""

from __future__ import annotations

import sys

from . import demo as _demo  # noqa: F401
from . import messages as _messages  # noqa: F401
from . import package as _package  # noqa: F401
from . import queues as _queues  # noqa: F401
from . import serve as _serve  # noqa: F401
from . import worker as _worker  # noqa: F401
from .app import app
from .exit_codes import ExitCode

__all__ = ["app", "main"]


def main() -> None:
    """The console script's entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
