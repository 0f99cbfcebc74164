"""Validation of names, ids, bodies, message attributes and request parameters.

Each check raises the error AWS raises, with AWS's wording, so that a client
sees the same failure from trainmq as from SQS.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidAttributeName,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    TooManyEntriesInBatchRequest,
)
from . import limits
from .model import MessageAttributeValue

__all__ = [
    "attributes_size",
    "check_batch_ids",
    "check_body",
    "check_int",
    "check_label",
    "check_queue_name",
    "check_tag_keys",
    "check_tags",
    "integer_text",
    "message_attributes",
    "message_size",
    "require",
    "system_attributes",
]

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# Letters and digits of any script (SQS accepts "attr.1øßä"), underscore, hyphen, period.
_ATTRIBUTE_NAME = re.compile(r"^[\w.-]+$")
_FIFO_ID = re.compile(r"^[!-~]{1,128}$")
# Characters SQS accepts in a body: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF
_INVALID_BODY_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() refuses or reads
# differently, and a bound on the length keeps int() far from its 4,300-digit limit.
_INTEGER = re.compile(r"-?[0-9]{1,40}")
# AddPermission: "Maximum 80 characters. Alphanumeric characters, hyphens, and underscores."
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,80}")
_TAG_PUNCTUATION = frozenset(" _.:/=+-@")
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256


def require(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None:
        raise MissingParameter(f"The request must contain the parameter {name}.")
    return value


def integer_text(text: str) -> int | None:
    """The integer an SQS parameter spells in ASCII digits (``-`` at most once), else None."""
    stripped = text.strip()
    return int(stripped) if _INTEGER.fullmatch(stripped) else None


def check_int(value: Any, name: str, low: int, high: int, reason: str | None = None) -> int:
    """An integer parameter within [low, high], else AWS's InvalidParameterValue."""
    number: int | None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str):
        number = integer_text(value)
    else:
        number = None
    if number is None or not low <= number <= high:
        why = reason or f"Must be >= {low} and <= {high}, if provided."
        raise InvalidParameterValue(f"Value {value} for parameter {name} is invalid. Reason: {why}")
    return number


def check_queue_name(name: Any, *, fifo: bool) -> str:
    if not isinstance(name, str):
        raise MissingParameter("The request must contain the parameter QueueName.")
    base = name[: -len(".fifo")] if fifo and name.endswith(".fifo") else name
    if fifo:
        if not name.endswith(".fifo") or not _QUEUE_NAME.match(base) or len(name) > 80:
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                "or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
    elif not _QUEUE_NAME.match(name):
        raise InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )
    return name


def check_body(body: Any) -> str:
    if body is None or body == "":
        raise MissingParameter("The request must contain the parameter MessageBody.")
    if not isinstance(body, str):
        raise InvalidParameterValue("MessageBody must be a string.")
    # Printable ASCII (most bodies: JSON on one line) holds no invalid character; only
    # other bodies need the search.
    if not (body.isascii() and body.isprintable()) and _INVALID_BODY_CHAR.search(body):
        raise InvalidMessageContents(
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | "
            "#x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
        )
    return body


def check_fifo_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _FIFO_ID.match(value):
        raise InvalidParameterValue(
            f"Value {value} for parameter {name} is invalid. Reason: {name} can only include "
            "alphanumeric and punctuation characters. 1 to 128 in length."
        )
    return value


def _check_attribute_name(name: Any, kind: str) -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > limits.MAX_ATTRIBUTE_NAME_LENGTH
        or not _ATTRIBUTE_NAME.match(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
        or name.lower().startswith(("aws.", "amazon."))
    ):
        raise InvalidParameterValue(f"{kind} name '{name}' is invalid.")
    return name


def _check_number(name: str, text: str) -> None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if (
        number is None
        or not number.is_finite()
        or len(number.as_tuple().digits) > 38
        or (number != 0 and not Decimal("1e-128") <= abs(number) <= Decimal("1e126"))
    ):
        raise InvalidParameterValue(
            f"Can't cast the value of message (user) attribute '{name}' to a number."
        )


def _empty_value(name: str, base: str, kind: str) -> InvalidParameterValue:
    label = (
        "Message (user) attribute" if kind == "message attribute" else "Message system attribute"
    )
    return InvalidParameterValue(
        f"{label} '{name}' must contain a non-empty value of type '{base}'."
    )


def _attribute_value(name: str, raw: Any, kind: str) -> MessageAttributeValue:
    if not isinstance(raw, Mapping):
        raise InvalidParameterValue(f"The {kind} '{name}' must contain a DataType.")
    data_type = raw.get("DataType")
    if not isinstance(data_type, str) or not data_type:
        raise InvalidParameterValue(
            f"The message attribute '{name}' must contain non-empty message attribute type."
        )
    base = data_type.split(".", 1)[0]
    if base not in ("String", "Number", "Binary") or len(data_type) > 256:
        raise InvalidParameterValue(
            f"The type of message (user) attribute '{name}' is invalid. You must use only "
            "the following supported type prefixes: Binary, Number, String."
        )
    if raw.get("StringListValues") or raw.get("BinaryListValues"):
        raise InvalidParameterValue("Message attribute list values are not supported.")
    string_value, binary_value = raw.get("StringValue"), raw.get("BinaryValue")
    if base == "Binary":
        if isinstance(binary_value, bytearray | memoryview):
            binary_value = bytes(binary_value)
        if not isinstance(binary_value, bytes) or not binary_value:
            raise _empty_value(name, base, kind)
        return MessageAttributeValue(data_type, binary_value=binary_value)
    if not isinstance(string_value, str) or not string_value:
        raise _empty_value(name, base, kind)
    if _INVALID_BODY_CHAR.search(string_value):
        raise InvalidParameterValue(
            f"The message attribute '{name}' contains characters outside the allowed set."
        )
    if base == "Number":
        _check_number(name, string_value)
    return MessageAttributeValue(data_type, string_value=string_value)


def message_attributes(raw: Any) -> dict[str, MessageAttributeValue]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameterValue("MessageAttributes must be a map.")
    if len(raw) > limits.MAX_MESSAGE_ATTRIBUTES:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(raw)}] exceeds the allowed maximum "
            f"[{limits.MAX_MESSAGE_ATTRIBUTES}]."
        )
    return {
        _check_attribute_name(name, "Message (user) attribute"): _attribute_value(
            name, value, "message attribute"
        )
        for name, value in raw.items()
    }


def system_attributes(raw: Any) -> dict[str, MessageAttributeValue]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameterValue("MessageSystemAttributes must be a map.")
    result: dict[str, MessageAttributeValue] = {}
    for name, value in raw.items():
        if name != "AWSTraceHeader":
            raise InvalidParameterValue(f"Message system attribute name '{name}' is invalid.")
        parsed = _attribute_value(name, value, "message system attribute")
        if parsed.data_type != "String":
            raise InvalidParameterValue(
                "The message system attribute 'AWSTraceHeader' must be of type String."
            )
        result[name] = parsed
    return result


def message_size(body: str, attributes: Mapping[str, MessageAttributeValue]) -> int:
    """Bytes counted against MaximumMessageSize: body plus names, types and values."""
    return len(body.encode("utf-8")) + attributes_size(attributes)


def attributes_size(attributes: Mapping[str, MessageAttributeValue]) -> int:
    """The bytes of message attributes counted against MaximumMessageSize."""
    size = 0
    for name, value in attributes.items():
        size += len(name.encode("utf-8")) + len(value.data_type.encode("utf-8"))
        if value.binary_value is not None:
            size += len(value.binary_value)
        else:
            size += len((value.string_value or "").encode("utf-8"))
    return size


def check_batch_ids(entries: Any, entry_kind: str) -> Sequence[Mapping[str, Any]]:
    """The common checks of every *Batch action, in AWS's order."""
    if not entries:
        raise EmptyBatchRequest(f"There should be at least one {entry_kind} in the request.")
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise InvalidParameterValue("Entries must be a list.")
    if len(entries) > limits.MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {limits.MAX_BATCH_ENTRIES}. "
            f"You have sent {len(entries)}."
        )
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id") if isinstance(entry, Mapping) else None
        if not isinstance(entry_id, str) or not _BATCH_ID.match(entry_id):
            raise InvalidBatchEntryId()
        if entry_id in seen:
            raise BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)
    return entries


def check_names(names: Any, allowed: set[str], extra: tuple[str, ...] = ("All",)) -> list[str]:
    """Attribute names for Get*/Receive: each must be known, else InvalidAttributeName."""
    if names is None:
        return []
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InvalidParameterValue("AttributeNames must be a list.")
    for name in names:
        if not isinstance(name, str) or (name not in allowed and name not in extra):
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
    return list(names)


def _tag_text_ok(text: str) -> bool:
    """SQS's tag alphabet: Unicode letters, digits, spaces and ``_ . : / = + - @``.

    Control characters, NUL and lone surrogates are refused here, so that no stored
    tag can later make an XML answer malformed or fail to encode.
    """
    return all(
        char.isalnum()
        or char in _TAG_PUNCTUATION
        or unicodedata.category(char) in ("Zs", "Mn", "Mc")
        for char in text
    )


def _check_tag_key(key: Any) -> str:
    if (
        not isinstance(key, str)
        or not 1 <= len(key) <= MAX_TAG_KEY_LENGTH
        or not _tag_text_ok(key)
        or key.lower().startswith("aws:")
    ):
        raise InvalidParameterValue(
            f"Tag key {key!r} is invalid. Reason: a tag key is 1 to {MAX_TAG_KEY_LENGTH} "
            "Unicode letters, digits, spaces or _ . : / = + - @, and may not start with aws:."
        )
    return key


def check_tags(tags: Any) -> dict[str, str]:
    """A queue's tags as TagQueue and CreateQueue accept them, else InvalidParameterValue."""
    if not isinstance(tags, Mapping):
        raise InvalidParameterValue("Tags must be a map.")
    if len(tags) > limits.MAX_TAGS:
        raise InvalidParameterValue("Too many tags added for queue.")
    for key, value in tags.items():
        _check_tag_key(key)
        if (
            not isinstance(value, str)
            or len(value) > MAX_TAG_VALUE_LENGTH
            or not _tag_text_ok(value)
        ):
            raise InvalidParameterValue(
                f"Tag value for key {key!r} is invalid. Reason: a tag value is 0 to "
                f"{MAX_TAG_VALUE_LENGTH} Unicode letters, digits, spaces or _ . : / = + - @."
            )
    return dict(tags)


def check_tag_keys(keys: Any) -> list[str]:
    """UntagQueue's TagKeys: a non-empty list of valid tag keys."""
    if not isinstance(keys, list | tuple):
        raise InvalidParameterValue("TagKeys must be a list.")
    if not keys or any(isinstance(key, str) and not key for key in keys):
        raise InvalidParameterValue("Tag keys must be between 1 and 128 characters in length.")
    return [_check_tag_key(key) for key in keys]


def check_label(label: Any) -> str:
    """An AddPermission/RemovePermission label: 1 to 80 of ``A-Z a-z 0-9 - _``."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise InvalidParameterValue(
            f"Value {label!r} for parameter Label is invalid. Reason: Can only include "
            "alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
        )
    return label
