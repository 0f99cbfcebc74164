"""The SQS Query protocol: form-encoded ``Action=...`` requests and XML responses.

Older SDKs (and any HTTP client) speak it.  Flattened members use SQS's
historical names (``Attribute.1.Name``, ``MessageAttribute.1.Value.StringValue``,
``SendMessageBatchRequestEntry.1.Id`` ...); responses are the XML documents of
the 2012-11-05 API, or their JSON form for a client that accepts only JSON.
An empty list or map arrives as its bare name with no value
(``MessageAttributeNames=``, as botocore sends it) and means an empty one.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from ..errors import InvalidParameterValue, QueueDoesNotExist, SQSError

__all__ = ["CONTENT_TYPE", "decode_request", "encode_error", "encode_response"]

CONTENT_TYPE = "text/xml"
_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
# ASCII digits only; an index is at most MAX_INDEX_DIGITS long (int() refuses 4,300 digits).
_INDEXED = re.compile(r"^([A-Za-z]+)\.([0-9]+)(?:\.(.+))?$")
MAX_INDEX_DIGITS = 6
# Characters XML 1.0 cannot carry at all (not even escaped): NUL, most C0 controls, surrogates.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ENTRY_NAMES = {
    "SendMessageBatch": "SendMessageBatchRequestEntry",
    "DeleteMessageBatch": "DeleteMessageBatchRequestEntry",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchRequestEntry",
}
_LISTS = {
    "AttributeName": "AttributeNames",
    "MessageSystemAttributeName": "MessageSystemAttributeNames",
    "MessageAttributeName": "MessageAttributeNames",
    "TagKey": "TagKeys",
    "AWSAccountId": "AWSAccountIds",
    "ActionName": "Actions",
}

#: Lists and maps by the names an empty one is sent under, and the empty value each means.
_EMPTY_CONTAINERS: dict[str, type[list[Any]] | type[dict[str, Any]]] = {
    **{name: list for name in _LISTS.values()},
    **{name: list for name in ("Entries",)},
    **{
        name: dict
        for name in ("Attributes", "Tags", "tags", "MessageAttributes", "MessageSystemAttributes")
    },
}


def _index(match: re.Match[str]) -> int:
    digits = match.group(2)
    if len(digits) > MAX_INDEX_DIGITS:
        raise InvalidParameterValue(
            f"The member index {digits[:20]}... of {match.group(1)} is invalid."
        )
    return int(digits)


def _group(
    params: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, dict[int, dict[str, str]]]]:
    """Split into scalars and indexed groups: {"Attribute": {1: {"Name": .., "Value": ..}}}."""
    scalars: dict[str, str] = {}
    groups: dict[str, dict[int, dict[str, str]]] = {}
    for key, value in params.items():
        match = _INDEXED.match(key)
        if match is None:
            scalars[key] = value
            continue
        prefix, index, rest = match.group(1), _index(match), match.group(3) or ""
        groups.setdefault(prefix, {}).setdefault(index, {})[rest] = value
    return scalars, groups


def _attribute_value(fields: Mapping[str, str], prefix: str = "Value.") -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, raw in fields.items():
        if not key.startswith(prefix):
            continue
        member = key[len(prefix) :]
        if member == "BinaryValue":
            try:
                value[member] = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidParameterValue("BinaryValue is not valid base64.") from None
        elif member in ("StringValue", "DataType"):
            value[member] = raw
    return value


def _message_attributes(fields: Mapping[str, str], prefix: str) -> dict[str, Any] | None:
    """``<prefix>.N.Name`` and ``<prefix>.N.Value.*`` inside one entry (or the request)."""
    entries: dict[int, dict[str, str]] = {}
    for key, value in fields.items():
        match = _INDEXED.match(key)
        if match and match.group(1) == prefix:
            entries.setdefault(_index(match), {})[match.group(3) or ""] = value
    if not entries:
        return None
    return {item.get("Name", ""): _attribute_value(item) for _, item in sorted(entries.items())}


def decode_request(params: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(action, the JSON-shaped parameters) from a form-encoded Query request."""
    scalars, groups = _group(params)
    action = scalars.pop("Action", "")
    result: dict[str, Any] = {
        k: _EMPTY_CONTAINERS[k]() if v == "" and k in _EMPTY_CONTAINERS else v
        for k, v in scalars.items()
        if not k.startswith("X-Amz-") and k != "Version"
    }
    for prefix, target in _LISTS.items():
        if prefix in groups:
            result[target] = [item[""] for _, item in sorted(groups[prefix].items())]
    if "Attribute" in groups:
        result["Attributes"] = {
            item.get("Name", ""): item.get("Value", "")
            for _, item in sorted(groups["Attribute"].items())
        }
    if "Tag" in groups:
        tags = {
            item.get("Key", ""): item.get("Value", "") for _, item in sorted(groups["Tag"].items())
        }
        result["tags" if action == "CreateQueue" else "Tags"] = tags
    for name, source in (
        ("MessageAttributes", "MessageAttribute"),
        ("MessageSystemAttributes", "MessageSystemAttribute"),
    ):
        if source in groups:
            result[name] = {
                item.get("Name", ""): _attribute_value(item)
                for _, item in sorted(groups[source].items())
            }
    entry_name = _ENTRY_NAMES.get(action)
    if entry_name and entry_name in groups:
        result["Entries"] = [_entry(item) for _, item in sorted(groups[entry_name].items())]
    return action, result


def _entry(fields: Mapping[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {k: v for k, v in fields.items() if "." not in k}
    for name, source in (
        ("MessageAttributes", "MessageAttribute"),
        ("MessageSystemAttributes", "MessageSystemAttribute"),
    ):
        attributes = _message_attributes(fields, source)
        if attributes is not None:
            entry[name] = attributes
    return entry


# -- responses ------------------------------------------------------------------------------
_REPEATED = {
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "Messages": "Message",
    "Failed": "BatchResultErrorEntry",
    "Results": "ListMessageMoveTasksResultEntry",
}
#: AWS's Query wording where it differs from the JSON protocol's.
_QUERY_WORDING = {
    QueueDoesNotExist.default_message: "The specified queue does not exist for this wsdl version.",
}

#: An XML element as (name, text) or (name, children); the JSON form is built from the same.
Node = tuple[str, "str | list[Node]"]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _node(name: str, value: Any, action: str) -> Node:
    if isinstance(value, dict):
        return (name, _members(value, action))
    return (name, _text(value))


def _members(result: Mapping[str, Any], action: str) -> list[Node]:
    """The result's members as SQS's Query API names and nests them."""
    nodes: list[Node] = []
    for key, value in result.items():
        if key in ("Attributes", "Tags") and isinstance(value, dict):
            tag, key_name = ("Attribute", "Name") if key == "Attributes" else ("Tag", "Key")
            nodes.extend(
                (tag, [(key_name, _text(k)), ("Value", _text(v))]) for k, v in value.items()
            )
        elif key == "MessageAttributes" and isinstance(value, dict):
            nodes.extend(
                ("MessageAttribute", [("Name", _text(k)), _node("Value", v, action)])
                for k, v in value.items()
            )
        elif key == "Successful" and isinstance(value, list):
            nodes.extend(_node(f"{action}ResultEntry", item, action) for item in value)
        elif isinstance(value, list):
            nodes.extend(_node(_REPEATED.get(key, key), item, action) for item in value)
        else:
            nodes.append(_node(key, value, action))
    return nodes


def _xml(nodes: list[Node]) -> str:
    parts: list[str] = []
    for name, value in nodes:
        if isinstance(value, str):
            parts.append(f"<{name}>{_escape(value)}</{name}>")
        elif value:
            parts.append(f"<{name}>{_xml(value)}</{name}>")
        else:
            parts.append(f"<{name}/>")
    return "".join(parts)


def _escape(text: str) -> str:
    """XML text that keeps the document well formed, whatever a client put in it; a carriage
    return as ``&#xD;``, or XML parsers would turn it into ``\n``."""
    return escape(_NOT_XML.sub("\ufffd", text), {"\r": "&#xD;"})


def _json(nodes: list[Node]) -> dict[str, Any]:
    """The JSON form of elements: members of a list or map are a JSON list, even of one."""
    out: dict[str, Any] = {}
    for name, value in nodes:
        item = value if isinstance(value, str) else _json(value)
        if name in _LIST_ELEMENTS or name.endswith("ResultEntry"):
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


_LIST_ELEMENTS = frozenset({*_REPEATED.values(), "Attribute", "Tag", "MessageAttribute"})


_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]  # random per process: 8-4-4-4 hex groups
_request_numbers = itertools.count()


def new_request_id() -> str:
    """A fresh request id in AWS's form (a UUID, as ``x-amzn-RequestId`` carries): a random
    prefix per process and a counter, unique without a system call per request."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFFFFFF:012x}"


def encode_response(
    action: str, result: Mapping[str, Any], request_id: str, *, as_json: bool = False
) -> bytes:
    """The ``<Action>Response`` document; as JSON of the same shape when ``as_json``."""
    document: list[Node] = [
        (f"{action}Result", _members(result, action)),
        ("ResponseMetadata", [("RequestId", request_id)]),
    ]
    if as_json:
        return json.dumps({f"{action}Response": _json(document)}).encode("utf-8")
    body = (
        f'<?xml version="1.0"?><{action}Response xmlns="{_NAMESPACE}">'
        f"{_xml(document)}</{action}Response>"
    )
    # Stored text is validated on the way in; "replace" keeps an answer well formed even for
    # data written before that validation existed.
    return body.encode("utf-8", "replace")


def encode_error(error: SQSError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    fault = "Sender" if error.sender_fault else "Receiver"
    message = _QUERY_WORDING.get(error.message, error.message)
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{_NAMESPACE}"><Error>'
        f"<Type>{fault}</Type><Code>{_escape(error.query_code)}</Code>"
        f"<Message>{_escape(message)}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return error.status, [(b"content-type", CONTENT_TYPE.encode())], body.encode("utf-8", "replace")
