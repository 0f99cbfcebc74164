"""What makes ``trainmq.client()`` interchangeable with ``boto3.client("sqs")``.

Code written for boto3 catches ``botocore.exceptions.ClientError``, reads
``response["ResponseMetadata"]`` and pages through ``ListQueues`` with
``get_paginator``.  This module supplies those three things to ``LocalClient``:

- **errors**: when botocore is installed, every SQS error the client raises is
  an instance of a class that derives from both trainmq's own error class
  (``trainmq.errors.QueueDoesNotExist``, ...) and botocore's ``ClientError``, so
  ``except ClientError``, ``except client.exceptions.QueueDoesNotExist`` and
  ``except trainmq.errors.SQSError`` all catch it, and ``str(exc)`` reads as
  boto3's.  Without botocore the plain trainmq classes are used; they have the
  same ``response`` dict.
- **ResponseMetadata**: ``RequestId``, ``HTTPStatusCode``, ``HTTPHeaders`` and
  ``RetryAttempts`` on every response, as botocore adds them.
- **paginators** for the two operations botocore's SQS model declares pageable.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, cast

from ..errors import SQS_ERRORS, ConfigurationError, SQSError
from .ids import random_uuid

__all__ = [
    "PAGINATED",
    "PageIterator",
    "Paginator",
    "boto_error",
    "error_classes",
    "paginator",
    "response_metadata",
]

# botocore/data/sqs/2012-11-05/paginators-1.json: operation -> result key.
PAGINATED = {"list_queues": "QueueUrls", "list_dead_letter_source_queues": "queueUrls"}


def response_metadata(status: int = 200) -> dict[str, Any]:
    """The ``ResponseMetadata`` botocore puts in every response."""
    request_id = random_uuid()
    return {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": {"x-amzn-requestid": request_id},
        "RetryAttempts": 0,
    }


def _client_error_base() -> type[Exception] | None:
    try:
        from botocore.exceptions import ClientError
    except ImportError:
        return None
    return ClientError  # type: ignore[no-any-return]


def _boto_str(self: Any) -> str:
    return (
        f"An error occurred ({self.query_code}) when calling the "
        f"{self.operation_name or 'unknown'} operation: {self.message}"
    )


def _boto_response(self: Any) -> dict[str, Any]:
    response: dict[str, Any] = SQSError.response.fget(self)  # type: ignore[attr-defined]
    response["ResponseMetadata"] = response_metadata(self.status)
    return response


def _boto_class(cls: type[SQSError]) -> type[SQSError]:
    """``cls`` joined with botocore's ``ClientError`` (``cls`` itself without botocore)."""
    client_error = _client_error_base()
    if client_error is None:
        return cls
    namespace = {
        "__doc__": cls.__doc__,
        "__module__": cls.__module__,
        "__str__": _boto_str,
        "response": property(_boto_response),
        "operation_name": "",
    }
    return type(cls.__name__, (cls, client_error), namespace)


# One joined class per error class, so that ``except`` clauses match across clients.
boto_class = cast(Callable[[type[SQSError]], type[SQSError]], functools.cache(_boto_class))


def boto_error(error: SQSError, operation: str) -> SQSError:
    """The same error as an instance of its botocore-compatible class."""
    cls = boto_class(type(error))
    if cls is type(error):
        return error
    converted = cls.__new__(cls)
    converted.__dict__.update(error.__dict__)
    converted.__dict__["operation_name"] = operation
    Exception.__init__(converted, error.message)
    return converted


def error_classes() -> dict[str, type[Exception]]:
    """``client.exceptions``: ``ClientError`` and every modelled SQS error class."""
    classes: dict[str, type[Exception]] = {
        name: boto_class(cls) for name, cls in SQS_ERRORS.items() if cls.modelled
    }
    classes["ClientError"] = _client_error_base() or SQSError
    return classes


class Paginator:
    """boto3's paginator for one pageable operation (``paginate``, ``build_full_result``)."""

    def __init__(self, call: Callable[..., dict[str, Any]], result_key: str) -> None:
        self._call = call
        self._result_key = result_key

    def paginate(self, **params: Any) -> PageIterator:
        """Pages of the operation; ``PaginationConfig`` takes ``PageSize``, ``MaxItems``
        and ``StartingToken`` (a ``NextToken`` from an earlier ``build_full_result``)."""
        config = dict(params.pop("PaginationConfig", None) or {})
        if "PageSize" in config:
            params["MaxResults"] = config["PageSize"]
        skip = 0
        if config.get("StartingToken"):
            token, skip = _parse_token(str(config["StartingToken"]))
            if token:
                params["NextToken"] = token
        return PageIterator(self._call, self._result_key, params, config.get("MaxItems"), skip)


def _truncation_token(next_token: str | None, returned: int) -> str:
    """botocore's token for "resume inside this page": where the page began, and how many
    of its items were already returned (base64 JSON, as botocore's ``TokenEncoder``)."""
    data = {"NextToken": next_token, "boto_truncate_amount": returned}
    return base64.b64encode(json.dumps(data).encode()).decode()


def _parse_token(token: str) -> tuple[str | None, int]:
    try:
        data = json.loads(base64.b64decode(token, validate=True))
    except ValueError:
        return token, 0
    if not isinstance(data, dict) or "boto_truncate_amount" not in data:
        return token, 0
    return data.get("NextToken"), int(data["boto_truncate_amount"])


class PageIterator:
    """The pages of one ``paginate`` call; ``MaxItems`` cuts the last page short."""

    def __init__(
        self,
        call: Callable[..., dict[str, Any]],
        result_key: str,
        params: dict[str, Any],
        max_items: int | None,
        skip: int = 0,
    ) -> None:
        self._call = call
        self._result_key = result_key
        self._params = params
        self._max_items = max_items
        self._skip = skip
        self.resume_token: str | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        params = dict(self._params)
        left, skip = self._max_items, self._skip
        while True:
            page = self._call(**params)
            items = page.get(self._result_key, [])[skip:]
            if left is not None and len(items) >= left:
                token = page.pop("NextToken", None)
                if len(items) == left:
                    self.resume_token = token
                else:  # resume inside this page
                    started = params.get("NextToken")
                    self.resume_token = _truncation_token(started, skip + left)
                page[self._result_key] = items[:left]
                yield page
                return
            page[self._result_key] = items
            if left is not None:
                left -= len(items)
            skip = 0
            yield page
            token = page.get("NextToken")
            if not token:
                return
            params["NextToken"] = token

    def build_full_result(self) -> dict[str, Any]:
        """Every page's items in one dict, as botocore's ``build_full_result``."""
        items: list[Any] = []
        for page in self:
            items.extend(page.get(self._result_key, []))
        result: dict[str, Any] = {self._result_key: items}
        if self.resume_token:
            result["NextToken"] = self.resume_token
        return result


def paginator(call: Callable[..., dict[str, Any]], operation_name: str) -> Paginator:
    """The paginator of ``operation_name`` (snake case), or an error naming the pageable ones."""
    result_key = PAGINATED.get(operation_name)
    if result_key is None:
        raise ConfigurationError(
            f"operation {operation_name!r} cannot be paginated; pageable: "
            + ", ".join(sorted(PAGINATED))
        )
    return Paginator(call, result_key)
