"""``trainmq queue create|list|attributes|purge|delete`` and ``trainmq stats``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import QueueDoesNotExist
from ..queue import LocalClient
from .app import (
    BackendOption,
    CliFailure,
    DbOption,
    JsonOption,
    QueueArgument,
    app,
    client_for,
    naming_missing_queue,
    out,
    pairs,
    print_json,
    queue_app,
    queue_url,
    run_command,
)
from .exit_codes import ExitCode

__all__ = ["queue_stats"]


def _exists(client: LocalClient, name: str) -> bool:
    try:
        client.get_queue_url(QueueName=name)
    except QueueDoesNotExist:
        return False
    return True


def _dlq_name(name: str) -> str:
    """The default dead-letter queue's name: ``NAME-dlq``, ``.fifo`` kept last."""
    if name.endswith(".fifo"):
        return name.removesuffix(".fifo") + "-dlq.fifo"
    return f"{name}-dlq"


def _check_create(client: LocalClient, name: str, dlq: str | None) -> None:
    """Refuse before anything is created, so a failure leaves no queue behind."""
    if _exists(client, name):
        raise CliFailure(
            f"queue {name!r} already exists; change it with `trainmq queue attributes {name} "
            "--set NAME=VALUE`",
            ExitCode.INVALID_REQUEST,
        )
    if dlq is None:
        return
    if dlq == name:
        raise CliFailure("a queue cannot be its own dead-letter queue", ExitCode.USAGE)
    if name.endswith(".fifo") != dlq.endswith(".fifo"):
        raise CliFailure(
            f"the dead-letter queue of a {'FIFO' if name.endswith('.fifo') else 'standard'} "
            f"queue must be {'FIFO' if name.endswith('.fifo') else 'standard'} too "
            f"(names ending in .fifo are FIFO): {dlq!r}",
            ExitCode.USAGE,
        )


@queue_app.command("create")
def queue_create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Queue name (end FIFO queue names in .fifo).")
    ],
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute", "-a", metavar="NAME=VALUE", help="Queue attribute (repeatable)."
        ),
    ] = None,
    dlq: Annotated[
        str | None,
        typer.Option(
            metavar="DLQ",
            help="Also create this dead-letter queue and redrive to it after --max-receives.",
            show_default=False,
        ),
    ] = None,
    with_dlq: Annotated[
        bool,
        typer.Option(
            "--with-dlq",
            help="Also create NAME-dlq (NAME-dlq.fifo for a FIFO queue) as its dead-letter queue.",
        ),
    ] = False,
    max_receives: Annotated[
        int, typer.Option(min=1, max=1000, help="maxReceiveCount for --dlq.")
    ] = 5,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Create a queue (FIFO when the name ends in .fifo), optionally with a dead-letter queue."""

    def body() -> None:
        attributes = pairs(attribute, "--attribute")
        fifo = name.endswith(".fifo")
        if fifo:
            attributes.setdefault("FifoQueue", "true")
        if dlq is not None and with_dlq:
            raise CliFailure("give either --dlq DLQ or --with-dlq, not both", ExitCode.USAGE)
        dlq_name = _dlq_name(name) if with_dlq else dlq
        with client_for(db, backend, create=True) as client:
            _check_create(client, name, dlq_name)
            if dlq_name is not None:
                dlq_attrs = {"MessageRetentionPeriod": "1209600"}
                if fifo:
                    dlq_attrs["FifoQueue"] = "true"
                dlq_url = client.create_queue(QueueName=dlq_name, Attributes=dlq_attrs)["QueueUrl"]
                arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                        "maxReceiveCount": max_receives,
                    }
                )
            url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            out.print(url, highlight=False)

    run_command(body)


@queue_app.command("list")
def queue_list(
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """List queue URLs."""

    def body() -> None:
        with client_for(db, backend) as client:
            params = {"QueueNamePrefix": prefix} if prefix else {}
            urls = client.list_queues(**params).get("QueueUrls", [])
            if as_json:
                print_json({"QueueUrls": urls})
                return
            for url in urls:
                out.print(url, highlight=False, soft_wrap=True)

    run_command(body)


@queue_app.command("attributes")
def queue_attributes(
    queue: QueueArgument,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", metavar="NAME=VALUE", help="Change an attribute (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Show a queue's attributes, or change them with --set."""

    def body() -> None:
        with client_for(db, backend) as client, naming_missing_queue(client, queue):
            url = queue_url(client, queue)
            changes = pairs(set_, "--set")
            if changes:
                client.set_queue_attributes(QueueUrl=url, Attributes=changes)
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            if as_json:
                print_json({"Attributes": attributes.get("Attributes", {})})
                return
            table = Table("attribute", "value", title=url)
            for key, value in sorted(attributes.get("Attributes", {}).items()):
                table.add_row(key, value)
            out.print(table)

    run_command(body)


@queue_app.command("purge")
def queue_purge(
    queue: QueueArgument,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Delete every message in a queue (at most once per 60 seconds, as in SQS)."""

    def body() -> None:
        with client_for(db, backend) as client, naming_missing_queue(client, queue):
            client.purge_queue(QueueUrl=queue_url(client, queue))
            out.print(f"purged {queue}", highlight=False)

    run_command(body)


@queue_app.command("delete")
def queue_delete(
    queue: QueueArgument,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Delete a queue and its messages."""

    def body() -> None:
        with client_for(db, backend) as client, naming_missing_queue(client, queue):
            client.delete_queue(QueueUrl=queue_url(client, queue))
            out.print(f"deleted {queue}", highlight=False)

    run_command(body)


_STATS_COLUMNS = ("queue", "depth", "in flight", "delayed", "DLQ", "DLQ depth", "oldest (s)")
_STATS_KEYS = (
    "Queue",
    "Depth",
    "InFlight",
    "Delayed",
    "DeadLetterQueue",
    "DeadLetterDepth",
    "OldestAge",
)


@app.command("stats")
def stats(as_json: JsonOption = False, db: DbOption = None, backend: BackendOption = None) -> None:
    """A table of every queue: depth, in flight, delayed, dead-letter queue, oldest message."""

    def body() -> None:
        with client_for(db, backend) as client:
            rows = queue_stats(client)
            if as_json:
                print_json({"Queues": [dict(zip(_STATS_KEYS, row, strict=True)) for row in rows]})
                return
            table = Table(*_STATS_COLUMNS)
            for row in rows:
                table.add_row(*("-" if v is None else str(v) for v in row))
            out.print(table)

    run_command(body)


def queue_stats(client: LocalClient) -> list[tuple[Any, ...]]:
    """One row per queue, for ``stats``: counts as numbers, ``None`` where there is none."""
    rows: list[tuple[Any, ...]] = []
    names = [u.rsplit("/", 1)[1] for u in client.list_queues().get("QueueUrls", [])]
    attributes = {
        name: client.get_queue_attributes(QueueUrl=queue_url(client, name), AttributeNames=["All"])[
            "Attributes"
        ]
        for name in names
    }
    backend = client.service.backend
    for name in names:
        attrs = attributes[name]
        dlq_name = None
        dlq_depth = None
        if "RedrivePolicy" in attrs:
            dlq_name = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[1]
            depth = attributes.get(dlq_name, {}).get("ApproximateNumberOfMessages")
            dlq_depth = None if depth is None else int(depth)
        age = getattr(backend, "oldest_message_age", lambda _n: None)(name)
        rows.append(
            (
                name,
                int(attrs["ApproximateNumberOfMessages"]),
                int(attrs["ApproximateNumberOfMessagesNotVisible"]),
                int(attrs["ApproximateNumberOfMessagesDelayed"]),
                dlq_name,
                dlq_depth,
                None if age is None else round(age),
            )
        )
    return rows
