"""The ``trainmq`` Typer application and what its commands share.

Every command module imports from here and registers itself on ``app``;
``main.py`` only assembles them.  Every command takes ``--db`` (environment
variable ``TRAINMQ_DB``; default ``./.trainmq/queues.db``).  A user mistake
prints one line to stderr and exits with a named code (see ``ExitCode``); it
never prints a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import ConfigurationError, QueueDoesNotExist, SQSError, StorageError
from ..queue import LocalClient, open_service
from ..queue.client import is_postgres_address, sqlite_path
from .exit_codes import ExitCode

__all__ = [
    "BackendOption",
    "CliFailure",
    "DbOption",
    "JsonOption",
    "QueueArgument",
    "app",
    "client_for",
    "err",
    "missing_extra",
    "naming_missing_queue",
    "not_found",
    "out",
    "pairs",
    "print_json",
    "queue_app",
    "queue_url",
    "run_command",
]

T = TypeVar("T")


def _version(value: bool) -> None:
    if value:
        print(f"trainmq {__version__}")
        raise typer.Exit(ExitCode.OK)


app = typer.Typer(
    name="trainmq",
    help="Durable, SQS-compatible queues for LLM training pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
queue_app = typer.Typer(help="Create, inspect, purge and delete queues.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Durable, SQS-compatible queues for LLM training pipelines."""


out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TRAINMQ_DB",
        metavar="PATH",
        help="Queue database: a path, sqlite:///relative/path or postgresql://user@host/db "
        "(default ./.trainmq/queues.db).",
        show_default=False,
    ),
]

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        envvar="TRAINMQ_BACKEND",
        metavar="URL",
        help="Use a remote SQS endpoint instead of the database: sqs://[REGION] (AWS), "
        "http(s)://host:port (e.g. trainmq serve) or postgresql://user@host/db.",
        show_default=False,
    ),
]

QueueArgument = Annotated[
    str, typer.Argument(metavar="QUEUE", help="Queue name or URL.", show_default=False)
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
]


class CliFailure(Exception):
    """A failure the user can act on: one line on stderr and a named exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def missing_extra(exc: ImportError, what: str, extra: str) -> CliFailure:
    """The one line that names the extra to install when an optional package is absent."""
    return CliFailure(
        f"{what} needs the {extra} extra ({exc.name or exc} is not installed): "
        f"pip install 'trainmq[{extra}]'",
        ExitCode.MISSING_DEPENDENCY,
    )


@contextlib.contextmanager
def client_for(
    db: str | None, backend: str | None = None, *, create: bool = False
) -> Iterator[LocalClient]:
    """A client for ``--db`` or ``--backend``.

    Without ``create`` a missing database file is an error rather than a new
    empty database: a typo in ``--db`` must not look like "all my queues vanished".
    """
    if db is not None and backend is not None:
        raise CliFailure("give either --db or --backend, not both", ExitCode.USAGE)
    address = backend if backend is not None else db
    path = None if backend is not None or is_postgres_address(db) else sqlite_path(db)
    if path is not None and not create and not path.exists():
        raise CliFailure(
            f"no queue database at {path} (check --db or TRAINMQ_DB; "
            "`trainmq queue create NAME` creates one)",
            ExitCode.NO_DATABASE,
        )
    try:
        client = LocalClient(open_service(address if path is None else path))
    except ImportError as exc:
        raise missing_extra(exc, "a remote --backend", "aws") from exc
    except StorageError as exc:
        raise CliFailure(str(exc), ExitCode.DATABASE_ERROR) from exc
    except ConfigurationError as exc:
        raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
    except (OSError, sqlite3.Error) as exc:
        raise CliFailure(
            f"cannot open the queue database {path}: {exc}", ExitCode.DATABASE_ERROR
        ) from exc
    try:
        yield client
    finally:
        client.close()


def queue_url(client: LocalClient, queue: str) -> str:
    """The URL of a queue given by name or URL."""
    if "/" in queue:
        return queue
    return str(client.get_queue_url(QueueName=queue)["QueueUrl"])


def _location(client: LocalClient) -> str:
    path = getattr(client.service.backend, "path", None)
    return f"the database {path}" if path is not None else client.service.endpoint


def _fail(message: str, code: ExitCode) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def run_command(action: Callable[[], T]) -> T:
    """Run a command body, turning every expected failure into one line and an exit code."""
    try:
        return action()
    except CliFailure as exc:
        raise _fail(str(exc), exc.code) from None
    except QueueDoesNotExist as exc:
        raise _fail(exc.message, ExitCode.QUEUE_NOT_FOUND) from None
    except SQSError as exc:
        raise _fail(f"{exc.query_code}: {exc.message}", ExitCode.INVALID_REQUEST) from None
    except (StorageError, OSError, sqlite3.Error) as exc:
        raise _fail(str(exc), ExitCode.DATABASE_ERROR) from None
    except ConfigurationError as exc:
        raise _fail(str(exc), ExitCode.CONFIGURATION_ERROR) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def not_found(client: LocalClient, queue: str) -> CliFailure:
    """ "Queue does not exist", naming the queue, where it was looked for, and the fix."""
    return CliFailure(
        f"queue {queue!r} does not exist in {_location(client)} "
        f"(create it with `trainmq queue create {queue}`)",
        ExitCode.QUEUE_NOT_FOUND,
    )


@contextlib.contextmanager
def naming_missing_queue(client: LocalClient, queue: str) -> Iterator[None]:
    """Turn ``QueueDoesNotExist`` into a failure that names the queue and the database."""
    try:
        yield
    except QueueDoesNotExist:
        raise not_found(client, queue) from None


def pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict."""
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliFailure(f"{what} must look like NAME=VALUE, got {item!r}", ExitCode.USAGE)
        result[key] = value
    return result


def print_json(value: Any) -> None:
    """JSON on stdout, whole and unwrapped, for scripts."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
