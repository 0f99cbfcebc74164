"""``trainmq send``, ``receive`` and ``delete``: messages from the command line."""

from __future__ import annotations

import base64
import binascii
import sys
from typing import Annotated, Any

import typer

from ..queue import LocalClient
from .app import (
    BackendOption,
    CliFailure,
    DbOption,
    QueueArgument,
    app,
    client_for,
    naming_missing_queue,
    out,
    pairs,
    print_json,
    queue_url,
    run_command,
)
from .exit_codes import ExitCode

__all__ = ["message_attributes", "stdin_body"]

StoreOption = Annotated[
    str | None,
    typer.Option(
        envvar="TRAINMQ_STORE",
        metavar="PATH_OR_URI",
        help="Claim-check store: a body over the queue's MaximumMessageSize is stored here "
        "and the message carries a pointer, as workers read it (a path, file:// or s3://).",
        show_default=False,
    ),
]


def stdin_body(text: str) -> str:
    """Standard input as a body, without the one final newline ``echo`` adds."""
    return text.removesuffix("\n")


def message_attributes(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``NAME=VALUE`` (String), ``NAME:Number=7``, ``NAME:Binary=<base64>`` as SQS attributes.

    Custom type labels (``NAME:Number.float=1.5``) are kept, as SQS allows them.
    """
    attributes: dict[str, dict[str, Any]] = {}
    for key, value in pairs(items, "--attribute").items():
        name, _, data_type = key.partition(":")
        data_type = data_type or "String"
        base_type = data_type.split(".", 1)[0]
        if base_type == "Binary":
            try:
                binary = base64.b64decode(value, validate=True)
            except binascii.Error:
                raise CliFailure(
                    f"--attribute {name}: a Binary value is written in base64, got {value!r}",
                    ExitCode.USAGE,
                ) from None
            attributes[name] = {"DataType": data_type, "BinaryValue": binary}
        elif base_type in ("String", "Number"):
            attributes[name] = {"DataType": data_type, "StringValue": value}
        else:
            raise CliFailure(
                f"--attribute {name}: the type must be String, Number or Binary, got {data_type!r}",
                ExitCode.USAGE,
            )
    return attributes


def _with_store(client: LocalClient, url: str, store: str | None) -> Any:
    """The client, or a claim-check client whose threshold is the queue's size limit."""
    if store is None:
        return client
    from ..store import open_store
    from ..store.claimcheck import ClaimCheckClient

    limit = client.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
    threshold = int(limit["Attributes"]["MaximumMessageSize"])
    return ClaimCheckClient(client, open_store(store), threshold=threshold)


@app.command("send")
def send(
    queue: QueueArgument,
    body_text: Annotated[
        str,
        typer.Argument(
            metavar="BODY", help="Message body; - reads stdin (without its final newline)."
        ),
    ],
    group_id: Annotated[str | None, typer.Option(help="MessageGroupId (FIFO).")] = None,
    dedup_id: Annotated[str | None, typer.Option(help="MessageDeduplicationId (FIFO).")] = None,
    delay: Annotated[int | None, typer.Option(help="DelaySeconds (0-900).")] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            "-a",
            metavar="NAME[:TYPE]=VALUE",
            help="Message attribute (repeatable); TYPE is String (default), Number or "
            "Binary (VALUE in base64).",
        ),
    ] = None,
    store: StoreOption = None,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Send one message; prints its MessageId."""

    def body() -> None:
        text = stdin_body(sys.stdin.read()) if body_text == "-" else body_text
        params: dict[str, Any] = {"MessageBody": text}
        if group_id is not None:
            params["MessageGroupId"] = group_id
        if dedup_id is not None:
            params["MessageDeduplicationId"] = dedup_id
        if delay is not None:
            params["DelaySeconds"] = delay
        attributes = message_attributes(attribute)
        if attributes:
            params["MessageAttributes"] = attributes
        with client_for(db, backend) as client, naming_missing_queue(client, queue):
            url = queue_url(client, queue)
            result = _with_store(client, url, store).send_message(QueueUrl=url, **params)
            out.print(result["MessageId"], highlight=False)

    run_command(body)


def _print_messages(messages: list[dict[str, Any]]) -> None:
    for message in messages:
        count = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
        out.print(f"[bold]{message['MessageId']}[/bold] (receive #{count})")
        out.print(message["Body"], highlight=False, markup=False, soft_wrap=True)
        out.print(f"receipt handle: {message['ReceiptHandle']}", highlight=False, soft_wrap=True)


def _jsonable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binary attribute values in base64, as the AWS CLI prints them."""
    for message in messages:
        for attribute in message.get("MessageAttributes", {}).values():
            if isinstance(attribute.get("BinaryValue"), bytes):
                attribute["BinaryValue"] = base64.b64encode(attribute["BinaryValue"]).decode()
    return messages


@app.command("receive")
def receive(
    queue: QueueArgument,
    max_messages: Annotated[int, typer.Option("--max", help="MaxNumberOfMessages (1-10).")] = 1,
    wait: Annotated[int, typer.Option(help="WaitTimeSeconds: long poll up to 20 s.")] = 0,
    visibility: Annotated[
        int | None, typer.Option(help="VisibilityTimeout for these messages.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Delete after printing.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print SQS\'s {"Messages": [...]}; {} and exit 0 when none arrived.'
        ),
    ] = False,
    store: StoreOption = None,
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Receive messages; prints body and receipt handle (exit 7 when none arrived)."""

    def body() -> None:
        with client_for(db, backend) as client, naming_missing_queue(client, queue):
            url = queue_url(client, queue)
            sqs = _with_store(client, url, store)
            params: dict[str, Any] = {
                "MaxNumberOfMessages": max_messages,
                "WaitTimeSeconds": wait,
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            if visibility is not None:
                params["VisibilityTimeout"] = visibility
            messages = sqs.receive_message(QueueUrl=url, **params).get("Messages", [])
            if as_json:
                print_json({"Messages": _jsonable(messages)} if messages else {})
            else:
                _print_messages(messages)
            if delete and messages:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
            if not messages and not as_json:
                raise CliFailure("no messages available", ExitCode.NO_MESSAGES)

    run_command(body)


@app.command("delete")
def delete_message(
    queue: QueueArgument,
    receipt_handle: Annotated[
        str, typer.Argument(metavar="RECEIPT_HANDLE", help="Receipt handle from receive.")
    ],
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Delete one received message by its receipt handle."""

    def body() -> None:
        with client_for(db, backend) as client, naming_missing_queue(client, queue):
            client.delete_message(QueueUrl=queue_url(client, queue), ReceiptHandle=receipt_handle)
            out.print("deleted", highlight=False)

    run_command(body)
