"""``LocalClient``: a boto3-shaped SQS client that runs in-process.

Code written for ``boto3.client("sqs")`` works against an embedded database
by swapping the client: same method names, keyword arguments, response dicts
and exceptions (``client.exceptions.QueueDoesNotExist``; every error has
botocore's ``response["Error"]["Code"]``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..clock import Clock
from ..errors import SQS_ERRORS, ConfigurationError, SQSError
from .service import ACTIONS, SQSService, _snake

__all__ = ["LocalClient", "open_service", "sqlite_path"]

DEFAULT_DB = Path(".trainmq") / "queues.db"
_REMOTE_SCHEMES = ("sqs", "http", "https")


def sqlite_path(address: str | Path | None) -> Path:
    """The database path named by ``sqlite:///path``, a plain path, or the default."""
    if address is None or address == "":
        return DEFAULT_DB
    if isinstance(address, Path):
        return address
    if "://" not in address:
        return Path(address)
    parsed = urlparse(address)
    if parsed.scheme != "sqlite":
        raise ConfigurationError(
            f"unsupported queue address {address!r}: use sqlite:///path/queues.db, a path, "
            "sqs://[REGION] or http(s)://host:port"
        )
    raw = unquote(parsed.netloc + parsed.path)
    if not raw:
        raise ConfigurationError(f"the address {address!r} names no database file")
    return Path(raw)


def open_service(
    address: str | Path | None = None,
    *,
    clock: Clock | None = None,
    durability: str = "full",
    endpoint: str = "http://localhost:9324",
    region: str = "us-east-1",
    account_id: str = "000000000000",
    durable_receives: bool = False,
) -> SQSService:
    """An ``SQSService`` over the backend the address names.

    ``sqlite:///path`` or a plain path: the embedded engine.  ``sqs://[REGION]``:
    Amazon SQS.  ``http(s)://host:port``: any SQS-compatible endpoint.
    ``durable_receives`` makes the embedded engine fsync receive claims (the
    server does, for its remote consumers).
    """
    if isinstance(address, str) and address.split("://", 1)[0] in _REMOTE_SCHEMES:
        if clock is not None:
            raise ConfigurationError("a clock can only be given to the embedded backend")
        from .sqs import SqsBackend

        remote = SqsBackend.from_address(address)
        if address.startswith("sqs://"):
            endpoint = f"https://sqs.{remote.region}.amazonaws.com"
        else:
            parsed = urlparse(address)
            endpoint = f"{parsed.scheme}://{parsed.netloc}"
        return SQSService(remote, endpoint=endpoint)
    from .sqlite import SqliteBackend

    backend = SqliteBackend(
        sqlite_path(address),
        clock=clock,
        durability=durability,
        region=region,
        account_id=account_id,
        durable_receives=durable_receives,
    )
    return SQSService(backend, endpoint=endpoint)


class LocalClient:
    """boto3's SQS client interface over an ``SQSService``."""

    def __init__(self, service: SQSService) -> None:
        self.service = service
        self.exceptions = types.SimpleNamespace(
            ClientError=SQSError, **{name: cls for name, cls in SQS_ERRORS.items() if cls.modelled}
        )
        self._methods = {_snake(action): action for action in ACTIONS}

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        action = self.__dict__.get("_methods", {}).get(name)
        if action is None:
            raise AttributeError(f"'LocalClient' object has no attribute {name!r}")

        def call(**params: Any) -> dict[str, Any]:
            return self.service.dispatch(action, params)

        call.__name__ = name
        return call

    def can_paginate(self, operation_name: str) -> bool:
        return False

    def close(self) -> None:
        self.service.backend.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
