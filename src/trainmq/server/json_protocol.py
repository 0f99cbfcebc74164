"""The AWS JSON 1.0 protocol: ``X-Amz-Target: AmazonSQS.<Action>`` with JSON bodies.

Binary values travel base64-encoded; the service works on bytes.  Errors carry
the error's JSON type in ``__type`` (the modelled shape, or AWS's service
framework type for errors outside the model: boto3 picks the exception class
from it) and the query-compatible code in the ``x-amzn-query-error`` header,
which is how boto3 recovers AWS's codes.  Lists with no members are left out
of responses, as AWS leaves them out.

Bodies are read and written with orjson, several times faster than the
standard library's ``json``. Responses are UTF-8 JSON without escapes (as AWS
writes them); what orjson refuses to read (NaN, integers past 64 bits, lone
surrogates) or write is handled by the standard library, so every request is
answered exactly as before.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import orjson

from ..errors import SERVICE_NAMESPACE, InvalidParameterValue, SQSError

__all__ = ["CONTENT_TYPE", "decode_request", "encode_error", "encode_response"]

CONTENT_TYPE = "application/x-amz-json-1.0"
#: Deeper than any SQS request shape (a batch entry's attribute value is five levels down).
MAX_DEPTH = 16
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONG_NUMBER = re.compile(rb"\d{19}")
#: Members whose own validation answers AWS's specific error for invalid characters.
_CHECKED_TEXT = frozenset({"MessageBody"})


class SerializationException(SQSError):
    """The request body is not the JSON the action expects."""

    code = "SerializationException"
    query_code = "SerializationException"
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#SerializationException"


def _decode_binary(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterValue("BinaryValue is not valid base64.") from None
    return value


def _decode_attributes(attributes: Any) -> Any:
    if not isinstance(attributes, dict):
        return attributes
    decoded = {}
    for name, value in attributes.items():
        if isinstance(value, dict) and "BinaryValue" in value:
            value = {**value, "BinaryValue": _decode_binary(value["BinaryValue"])}
        decoded[name] = value
    return decoded


def _decode_message(params: dict[str, Any]) -> dict[str, Any]:
    for key in ("MessageAttributes", "MessageSystemAttributes"):
        if key in params:
            params[key] = _decode_attributes(params[key])
    return params


def _check_text(value: Any, member: str = "", depth: int = 0) -> None:
    """Refuse lone surrogates (JSON's ``"\\ud800"``) and structures nested past MAX_DEPTH.

    A lone surrogate is a valid JSON escape but no Unicode text: it cannot be stored
    or encoded, so it is refused here, where the request is still only data.
    """
    if depth > MAX_DEPTH:
        raise SerializationException("The request is nested too deeply.")
    if isinstance(value, str):
        if member not in _CHECKED_TEXT and _SURROGATE.search(value):
            raise InvalidParameterValue(
                f"Value for parameter {member or 'the request'} contains characters that are "
                "not valid Unicode."
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, member, depth + 1)
            _check_text(item, key, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, member, depth + 1)


def _loads(body: bytes) -> Any:
    if _LONG_NUMBER.search(body):  # orjson reads integers past 64 bits as floats
        return json.loads(body.decode("utf-8"))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # what orjson refuses, the standard library judges
        return json.loads(body.decode("utf-8"))


def decode_request(action: str, body: bytes) -> dict[str, Any]:
    try:
        params = _loads(body) if body.strip() else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SerializationException(
            "Start of structure or map found where not expected."
        ) from None
    if not isinstance(params, dict):
        raise SerializationException("Start of structure or map found where not expected.")
    _check_text(params)
    if action == "SendMessage":
        _decode_message(params)
    elif action == "SendMessageBatch" and isinstance(params.get("Entries"), list):
        params["Entries"] = [
            _decode_message(dict(e)) if isinstance(e, dict) else e for e in params["Entries"]
        ]
    return params


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def encode_response(result: dict[str, Any]) -> bytes:
    encoded = _encode(result)
    try:
        return orjson.dumps(encoded)
    except TypeError:  # an integer past 64 bits, a lone surrogate: the standard library's form
        return json.dumps(encoded, separators=(",", ":")).encode("utf-8")


def encode_error(error: SQSError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of an error; the caller adds the request id."""
    body = json.dumps({"__type": error.json_type, "message": error.message}).encode("utf-8")
    fault = "Sender" if error.sender_fault else "Receiver"
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"x-amzn-query-error", f"{error.query_code};{fault}".encode()),
    ]
    return error.status, headers, body
