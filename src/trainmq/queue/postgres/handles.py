"""The PostgreSQL engine's receipt handles: the shared encoding under its own prefix."""

from __future__ import annotations

from ..handles import HandleCodec, new_token

__all__ = ["make_handle", "new_token", "parse_handle"]

_CODEC = HandleCodec("tmqp1")
make_handle = _CODEC.make
parse_handle = _CODEC.parse
