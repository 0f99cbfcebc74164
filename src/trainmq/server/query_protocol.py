"""The SQS Query protocol: form-encoded ``Action=...`` requests and XML responses.

Older SDKs (and any HTTP client) speak it.  Flattened members use SQS's
historical names (``Attribute.1.Name``, ``MessageAttribute.1.Value.StringValue``,
``SendMessageBatchRequestEntry.1.Id`` ...); responses are the XML documents of
the 2012-11-05 API.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from ..errors import InvalidParameterValue, SQSError

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
        k: v for k, v in scalars.items() if not k.startswith("X-Amz-") and k != "Version"
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


def _xml_escape(text: str) -> str:
    """Escaped text that keeps the document well formed, whatever a client put in it."""
    return escape(_NOT_XML.sub("\ufffd", text))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return _xml_escape(str(value))


def _element(name: str, value: Any, action: str) -> str:
    if isinstance(value, dict):
        return f"<{name}>{_members(value, action)}</{name}>"
    return f"<{name}>{_text(value)}</{name}>"


def _members(result: Mapping[str, Any], action: str) -> str:
    parts: list[str] = []
    for key, value in result.items():
        if key in ("Attributes", "Tags") and isinstance(value, dict):
            tag, key_name = ("Attribute", "Name") if key == "Attributes" else ("Tag", "Key")
            parts.extend(
                f"<{tag}><{key_name}>{_text(k)}</{key_name}><Value>{_text(v)}</Value></{tag}>"
                for k, v in value.items()
            )
        elif key == "MessageAttributes" and isinstance(value, dict):
            parts.extend(
                f"<MessageAttribute><Name>{_text(k)}</Name>{_element('Value', v, action)}"
                "</MessageAttribute>"
                for k, v in value.items()
            )
        elif key == "Successful" and isinstance(value, list):
            parts.extend(_element(f"{action}ResultEntry", item, action) for item in value)
        elif key in _REPEATED and isinstance(value, list):
            parts.extend(_element(_REPEATED[key], item, action) for item in value)
        else:
            parts.append(_element(key, value, action))
    return "".join(parts)


def _request_id() -> str:
    return str(uuid.uuid4())


def encode_response(action: str, result: Mapping[str, Any]) -> bytes:
    inner = _members(result, action)
    body = (
        f'<?xml version="1.0"?><{action}Response xmlns="{_NAMESPACE}">'
        f"<{action}Result>{inner}</{action}Result>"
        f"<ResponseMetadata><RequestId>{_request_id()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    # Stored text is validated on the way in; "replace" keeps an answer well formed even for
    # data written before that validation existed.
    return body.encode("utf-8", "replace")


def encode_error(error: SQSError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    fault = "Sender" if error.sender_fault else "Receiver"
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{_NAMESPACE}"><Error>'
        f"<Type>{fault}</Type><Code>{_xml_escape(error.query_code)}</Code>"
        f"<Message>{_xml_escape(error.message)}</Message><Detail/></Error>"
        f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
    )
    return error.status, [(b"content-type", CONTENT_TYPE.encode())], body.encode("utf-8", "replace")
