"""Random identifiers: message ids and request ids, spelled as version-4 UUIDs.

``str(uuid.uuid4())`` costs a ``UUID`` object and its checks per id; a send
or a response needs only the text.  ``random_uuids`` draws the randomness for
a whole group in one read and spells each id exactly as ``uuid.uuid4()``
would: 122 random bits, the version digit 4 and the RFC 4122 variant.
"""

from __future__ import annotations

import os

__all__ = ["random_uuid", "random_uuids"]

# The first digit of a version-4 UUID's fourth group carries the RFC 4122 variant (10xx).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def random_uuids(count: int) -> list[str]:
    """``count`` random version-4 UUIDs, from one read of the system's random source."""
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return ids


def random_uuid() -> str:
    return random_uuids(1)[0]
