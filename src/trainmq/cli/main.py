"""``trainmq``: queues from the command line.

Every command takes ``--db`` (environment variable ``TRAINMQ_DB``; default
``./.trainmq/queues.db``).  A user mistake prints one line to stderr and exits
with a named code (see ``ExitCode``); it never prints a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..errors import (
    ConfigurationError,
    QueueDoesNotExist,
    SQSError,
    StorageError,
)
from ..queue import LocalClient, open_service
from .exit_codes import ExitCode

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="trainmq",
    help="Durable, SQS-compatible queues for LLM training pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
queue_app = typer.Typer(help="Create, inspect, purge and delete queues.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")

out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TRAINMQ_DB",
        help="Queue database: a file, sqlite:///path or postgresql://user@host/db "
        "[env: TRAINMQ_DB] (default ./.trainmq/queues.db).",
        show_default=False,
    ),
]


BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        envvar="TRAINMQ_BACKEND",
        help="Use a remote SQS endpoint instead of the database: sqs://[REGION] (AWS), "
        "http(s)://host:port (e.g. trainmq serve) or postgresql://user@host/db "
        "[env: TRAINMQ_BACKEND].",
        show_default=False,
    ),
]


class CliFailure(Exception):
    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _client(db: str | Path | None, backend: str | None = None) -> Iterator[LocalClient]:
    if db is not None and backend is not None:
        raise CliFailure("give either --db or --backend, not both", ExitCode.USAGE)
    try:
        client = LocalClient(open_service(backend if backend is not None else db))
    except StorageError as exc:
        raise CliFailure(str(exc), ExitCode.DATABASE_ERROR) from exc
    except ConfigurationError as exc:
        raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
    try:
        yield client
    finally:
        client.close()


def _url(client: LocalClient, queue: str) -> str:
    if "/" in queue:
        return queue
    return str(client.get_queue_url(QueueName=queue)["QueueUrl"])


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning every expected failure into one line and an exit code."""
    try:
        return action()
    except CliFailure as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(exc.code) from None
    except QueueDoesNotExist as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(ExitCode.QUEUE_NOT_FOUND) from None
    except SQSError as exc:
        err.print(f"[red]error:[/red] {exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(ExitCode.INVALID_REQUEST) from None
    except StorageError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(ExitCode.DATABASE_ERROR) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliFailure(f"{what} must look like NAME=VALUE, got {item!r}", ExitCode.USAGE)
        result[key] = value
    return result


# -- queue ----------------------------------------------------------------------------------
@queue_app.command("create")
def queue_create(
    name: Annotated[str, typer.Argument(help="Queue name (end FIFO queue names in .fifo).")],
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="Queue attribute NAME=VALUE (repeatable)."),
    ] = None,
    dlq: Annotated[
        str | None,
        typer.Option(help="Create NAME-dlq (or this name) and redrive to it after --max-receives."),
    ] = None,
    max_receives: Annotated[int, typer.Option(help="maxReceiveCount for --dlq.")] = 5,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Create a queue (FIFO when the name ends in .fifo), optionally with a dead-letter queue."""

    def body() -> None:
        attributes = _pairs(attribute, "--attribute")
        if name.endswith(".fifo"):
            attributes.setdefault("FifoQueue", "true")
        with _client(db, backend) as client:
            if dlq is not None:
                dlq_attrs = {"FifoQueue": "true"} if dlq.endswith(".fifo") else {}
                dlq_attrs["MessageRetentionPeriod"] = "1209600"
                dlq_url = client.create_queue(QueueName=dlq, Attributes=dlq_attrs)["QueueUrl"]
                arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                        "maxReceiveCount": max_receives,
                    }
                )
            url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            out.print(url, highlight=False)

    _run(body)


@queue_app.command("list")
def queue_list(
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this.")] = None,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """List queue URLs."""

    def body() -> None:
        with _client(db, backend) as client:
            params = {"QueueNamePrefix": prefix} if prefix else {}
            for url in client.list_queues(**params).get("QueueUrls", []):
                out.print(url, highlight=False)

    _run(body)


@queue_app.command("attributes")
def queue_attributes(
    queue: Annotated[str, typer.Argument(help="Queue name or URL.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Change attribute NAME=VALUE (repeatable)."),
    ] = None,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Show a queue's attributes, or change them with --set."""

    def body() -> None:
        with _client(db, backend) as client:
            url = _url(client, queue)
            changes = _pairs(set_, "--set")
            if changes:
                client.set_queue_attributes(QueueUrl=url, Attributes=changes)
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            table = Table("attribute", "value", title=url)
            for key, value in sorted(attributes.get("Attributes", {}).items()):
                table.add_row(key, value)
            out.print(table)

    _run(body)


@queue_app.command("purge")
def queue_purge(
    queue: Annotated[str, typer.Argument(help="Queue name or URL.")],
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Delete every message in a queue (at most once per 60 seconds, as in SQS)."""

    def body() -> None:
        with _client(db, backend) as client:
            client.purge_queue(QueueUrl=_url(client, queue))
            out.print(f"purged {queue}", highlight=False)

    _run(body)


@queue_app.command("delete")
def queue_delete(
    queue: Annotated[str, typer.Argument(help="Queue name or URL.")],
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Delete a queue and its messages."""

    def body() -> None:
        with _client(db, backend) as client:
            client.delete_queue(QueueUrl=_url(client, queue))
            out.print(f"deleted {queue}", highlight=False)

    _run(body)


# -- messages -------------------------------------------------------------------------------
@app.command("send")
def send(
    queue: Annotated[str, typer.Argument(help="Queue name or URL.")],
    body_text: Annotated[str, typer.Argument(metavar="BODY", help="Message body; - reads stdin.")],
    group_id: Annotated[str | None, typer.Option(help="MessageGroupId (FIFO).")] = None,
    dedup_id: Annotated[str | None, typer.Option(help="MessageDeduplicationId (FIFO).")] = None,
    delay: Annotated[int | None, typer.Option(help="DelaySeconds (0-900).")] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="String message attribute NAME=VALUE."),
    ] = None,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Send one message; prints its MessageId."""

    def body() -> None:
        text = sys.stdin.read() if body_text == "-" else body_text
        params: dict[str, Any] = {"MessageBody": text}
        if group_id is not None:
            params["MessageGroupId"] = group_id
        if dedup_id is not None:
            params["MessageDeduplicationId"] = dedup_id
        if delay is not None:
            params["DelaySeconds"] = delay
        pairs = _pairs(attribute, "--attribute")
        if pairs:
            params["MessageAttributes"] = {
                k: {"DataType": "String", "StringValue": v} for k, v in pairs.items()
            }
        with _client(db, backend) as client:
            result = client.send_message(QueueUrl=_url(client, queue), **params)
            out.print(result["MessageId"], highlight=False)

    _run(body)


@app.command("receive")
def receive(
    queue: Annotated[str, typer.Argument(help="Queue name or URL.")],
    max_messages: Annotated[int, typer.Option("--max", help="MaxNumberOfMessages (1-10).")] = 1,
    wait: Annotated[int, typer.Option(help="WaitTimeSeconds: long poll up to 20 s.")] = 0,
    visibility: Annotated[
        int | None, typer.Option(help="VisibilityTimeout for these messages.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Delete after printing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print SQS's JSON.")] = False,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Receive messages; prints body and receipt handle (exit 7 when none arrived)."""

    def body() -> None:
        with _client(db, backend) as client:
            url = _url(client, queue)
            params: dict[str, Any] = {
                "MaxNumberOfMessages": max_messages,
                "WaitTimeSeconds": wait,
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            if visibility is not None:
                params["VisibilityTimeout"] = visibility
            messages = client.receive_message(QueueUrl=url, **params).get("Messages", [])
            if as_json:
                out.print_json(json.dumps(messages, default=str))
            else:
                for message in messages:
                    count = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
                    out.print(f"[bold]{message['MessageId']}[/bold] (receive #{count})")
                    out.print(message["Body"], highlight=False, markup=False)
                    out.print(f"receipt handle: {message['ReceiptHandle']}", highlight=False)
            if delete and messages:
                client.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
            if not messages:
                raise CliFailure("no messages available", ExitCode.NO_MESSAGES)

    _run(body)


@app.command("delete")
def delete_message(
    queue: Annotated[str, typer.Argument(help="Queue name or URL.")],
    receipt_handle: Annotated[str, typer.Argument(help="Receipt handle from receive.")],
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Delete one received message by its receipt handle."""

    def body() -> None:
        with _client(db, backend) as client:
            client.delete_message(QueueUrl=_url(client, queue), ReceiptHandle=receipt_handle)
            out.print("deleted", highlight=False)

    _run(body)


@app.command("stats")
def stats(db: DbOption = None, backend: BackendOption = None) -> None:
    """A table of every queue: depth, in flight, delayed, dead-letter queue, oldest message."""

    def body() -> None:
        with _client(db, backend) as client:
            table = Table(
                "queue", "depth", "in flight", "delayed", "DLQ", "DLQ depth", "oldest (s)"
            )
            for row in queue_stats(client):
                table.add_row(*(str(v) for v in row))
            out.print(table)

    _run(body)


def queue_stats(client: LocalClient) -> list[tuple[object, ...]]:
    """One row per queue, for ``stats``."""
    rows: list[tuple[object, ...]] = []
    names = [u.rsplit("/", 1)[1] for u in client.list_queues().get("QueueUrls", [])]
    attributes = {
        name: client.get_queue_attributes(QueueUrl=_url(client, name), AttributeNames=["All"])[
            "Attributes"
        ]
        for name in names
    }
    backend = client.service.backend
    for name in names:
        attrs = attributes[name]
        dlq_name = ""
        dlq_depth: object = "-"
        if "RedrivePolicy" in attrs:
            dlq_name = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[1]
            dlq_depth = attributes.get(dlq_name, {}).get("ApproximateNumberOfMessages", "?")
        age = getattr(backend, "oldest_message_age", lambda _n: None)(name)
        rows.append(
            (
                name,
                attrs["ApproximateNumberOfMessages"],
                attrs["ApproximateNumberOfMessagesNotVisible"],
                attrs["ApproximateNumberOfMessagesDelayed"],
                dlq_name or "-",
                dlq_depth,
                "-" if age is None else f"{age:.0f}",
            )
        )
    return rows


# The long-running commands live in their own modules; importing them registers them.
from . import demo as _demo  # noqa: E402,F401
from . import package as _package  # noqa: E402,F401
from . import serve as _serve  # noqa: E402,F401
from . import worker as _worker  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
