"""AWS's MD5 digests of message bodies and attributes.

The attribute digest follows the algorithm in the SQS developer guide: attributes
sorted by name; for each, the 4-byte big-endian length and UTF-8 bytes of the
name, of the data type, a transport byte (1 = string, 2 = binary), then the
length and bytes of the value.  The documented check value for a String
attribute ``Foo`` = ``Bar`` is ``ae7155c6026991b6d54b11589678bf9c``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

from .model import MessageAttributeValue

__all__ = ["md5_of_attributes", "md5_of_body", "md5_of_bytes"]


def md5_of_body(body: str) -> str:
    return md5_of_bytes(body.encode("utf-8"))


def md5_of_bytes(data: bytes) -> str:
    """The body digest of a body already encoded as UTF-8."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: Mapping[str, MessageAttributeValue]) -> str | None:
    """The digest of message (or message system) attributes; None when there are none."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        digest.update(_field(name.encode("utf-8")))
        digest.update(_field(value.data_type.encode("utf-8")))
        if value.binary_value is not None:
            digest.update(b"\x02" + _field(value.binary_value))
        else:
            digest.update(b"\x01" + _field((value.string_value or "").encode("utf-8")))
    return digest.hexdigest()
