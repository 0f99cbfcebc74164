"""``LocalClient``: a boto3-shaped SQS client that runs in-process.

Code written for ``boto3.client("sqs")`` works against an embedded database
by swapping the client: same method names, keyword arguments, response dicts
(with ``ResponseMetadata``), paginators and exceptions
(``client.exceptions.QueueDoesNotExist``; with botocore installed every error is
a ``botocore.exceptions.ClientError`` with ``response["Error"]["Code"]``).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..clock import Clock
from ..errors import ConfigurationError, SQSError
from .backend import QueueBackend
from .boto_compat import (
    PAGINATED,
    Paginator,
    boto_error,
    error_classes,
    paginator,
    response_metadata,
)
from .service import ACTIONS, SQSService, _snake

__all__ = [
    "LocalClient",
    "describe_address",
    "is_postgres_address",
    "open_service",
    "sqlite_path",
]

DEFAULT_DB = Path(".trainmq") / "queues.db"
_REMOTE_SCHEMES = ("sqs", "http", "https")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def sqlite_path(address: str | Path | None) -> Path:
    """The database path named by ``sqlite:///path``, a plain path, or the default.

    Addresses follow SQLAlchemy's convention, which Python users already know:
    ``sqlite:///relative/queues.db`` is relative to the working directory and
    ``sqlite:////abs/queues.db`` (four slashes) is absolute.
    """
    if address is None or address == "":
        return DEFAULT_DB
    if isinstance(address, Path):
        return address
    if "://" not in address:
        return Path(address)
    parsed = urlparse(address)
    if parsed.scheme != "sqlite":
        raise ConfigurationError(
            f"unsupported queue address {address!r}: use sqlite:///relative/queues.db, "
            "sqlite:////absolute/queues.db, a path, sqs://[REGION] or http(s)://host:port"
        )
    if parsed.netloc:
        raise ConfigurationError(
            f"the address {address!r} names a host: write sqlite:///relative/queues.db or "
            "sqlite:////absolute/queues.db"
        )
    raw = unquote(parsed.path.removeprefix("/"))
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
    ``postgresql://user@host/db``: the PostgreSQL backend (many hosts, one database).
    ``durable_receives`` makes the embedded engine fsync receive claims (the
    server does, for its remote consumers).
    """
    if is_postgres_address(address):
        assert isinstance(address, str)
        return SQSService(
            _postgres(address, clock, durability, region, account_id), endpoint=endpoint
        )
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


def is_postgres_address(address: object) -> bool:
    """Whether ``address`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(address, str) and address.split("://", 1)[0].lower() in _POSTGRES_SCHEMES


def describe_address(address: str | Path | None) -> str:
    """Where the queues are, for people: the database file, or a PostgreSQL address with its
    password (if the URL holds one) masked."""
    if is_postgres_address(address):
        return re.sub(r"^([^:]+://[^:@/]*):[^@/]*@", r"\1:***@", str(address))
    return str(sqlite_path(address))


def _postgres(
    address: str, clock: Clock | None, durability: str, region: str, account_id: str
) -> QueueBackend:
    """The PostgreSQL backend, imported only when asked for (its driver is an extra)."""
    try:
        from .postgres import PostgresBackend
    except ImportError as exc:
        raise ConfigurationError(
            "postgresql:// addresses need the PostgreSQL driver: pip install 'trainmq[postgres]'"
        ) from exc
    return PostgresBackend(
        address, clock=clock, durability=durability, region=region, account_id=account_id
    )


class LocalClient:
    """boto3's SQS client interface over an ``SQSService``.

    Responses carry ``ResponseMetadata``; errors are botocore ``ClientError``s
    when botocore is installed (see ``boto_compat``).
    """

    def __init__(self, service: SQSService) -> None:
        self.service = service
        self.exceptions = types.SimpleNamespace(**error_classes())
        self._methods = {_snake(action): action for action in ACTIONS}

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        action = self.__dict__.get("_methods", {}).get(name)
        if action is None:
            raise AttributeError(f"'LocalClient' object has no attribute {name!r}")

        def call(**params: Any) -> dict[str, Any]:
            try:
                response = self.service.dispatch(action, params)
            except SQSError as exc:
                raise boto_error(exc, action) from None
            return {**response, "ResponseMetadata": response_metadata()}

        call.__name__ = name
        self.__dict__[name] = call  # later calls find it without __getattr__
        return call

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in PAGINATED

    def get_paginator(self, operation_name: str) -> Paginator:
        """A paginator for ``list_queues`` or ``list_dead_letter_source_queues``."""
        return paginator(getattr(self, operation_name), operation_name)

    def close(self) -> None:
        self.service.backend.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
