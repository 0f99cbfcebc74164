"""The web console of ``trainmq serve``: queues, messages, dead letters, training runs.

It sits beside the SQS endpoint (it uses the server's queue service, its
credentials and its traffic counts) and reads training runs from the dataset
store.  Server-rendered HTML with a small script for refreshing; no build step.
"""

from __future__ import annotations

from pathlib import Path

from ..clock import Clock
from ..server.app import SQSApp
from ..store import BlobStore
from .app import Console
from .http import ROOT

__all__ = ["Console", "mount_console"]


def mount_console(
    app: SQSApp, store: BlobStore | None, *, clock: Clock | None = None, shared: Path | None = None
) -> Console:
    """Serve the console at ``/console`` of ``app``, with training runs from ``store``;
    ``shared``: the folder where the processes of one server keep the sessions."""
    console = Console(
        app.service,
        app.traffic,
        credentials=app.credentials,
        store=store,
        clock=clock,
        shared=shared,
    )
    app.extra_routes[ROOT] = console
    return console
