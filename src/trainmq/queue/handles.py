"""Receipt handles: opaque, unforgeable, and tied to one delivery.

A handle carries the queue, the message row and the delivery's random 128-bit
token.  The token is stored with the message and replaced on every delivery,
so a handle from an earlier delivery no longer matches once the message has
been received again, and nobody can make up a valid handle.  The encoding is
the same for every engine; each engine gives its own prefix, so a handle of
one backend is never taken for another's.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
from dataclasses import dataclass

from ..errors import ReceiptHandleIsInvalid

__all__ = ["HandleCodec", "new_token"]

_LAYOUT = struct.Struct(">QQ16s")


def new_token() -> bytes:
    return secrets.token_bytes(16)


@dataclass(frozen=True)
class HandleCodec:
    """Makes and parses the handles of one engine, told apart by ``prefix``."""

    prefix: str

    def make(self, queue_id: int, row_id: int, token: bytes) -> str:
        raw = _LAYOUT.pack(queue_id, row_id, token)
        return self.prefix + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def parse(self, handle: str) -> tuple[int, int, bytes]:
        """(queue id, message row id, token); ReceiptHandleIsInvalid when malformed."""
        if not isinstance(handle, str) or not handle.startswith(self.prefix):
            raise _invalid(handle)
        body = handle[len(self.prefix) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise _invalid(handle) from None
        if len(raw) != _LAYOUT.size:
            raise _invalid(handle)
        queue_id, row_id, token = _LAYOUT.unpack(raw)
        return queue_id, row_id, token


def _invalid(handle: object) -> ReceiptHandleIsInvalid:
    return ReceiptHandleIsInvalid(
        f'The input receipt handle "{handle}" is not a valid receipt handle.'
    )
