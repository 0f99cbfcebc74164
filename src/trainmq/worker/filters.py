"""Lambda's FilterCriteria on SQS records, so a mapping only invokes for what it wants.

A pattern is a JSON object whose keys name fields of the Lambda record (``body``,
``attributes``, ``messageAttributes``, ...).  The body is matched as JSON when it
parses as JSON, otherwise as a plain string.  Supported (Lambda's documented
operators): exact values in lists (``"train"``, numbers, ``null``), ``prefix``,
``suffix``, ``equals-ignore-case``, ``anything-but`` (a value, a list, or a
prefix/suffix), ``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=``, one or two
comparisons), and ``exists``.  A record matches when any pattern matches.
Messages that match no pattern are deleted, as Lambda deletes them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigurationError

__all__ = ["matches", "matches_any", "parse_pattern", "record_view"]

_MISSING = object()
_OPERATORS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"}
_COMPARISONS = {"=", "<", "<=", ">", ">="}


def parse_pattern(text: str) -> dict[str, Any]:
    """The pattern as a dict, refusing what Lambda would refuse to create."""
    try:
        pattern = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"--filter is not valid JSON: {text!r}") from exc
    if not isinstance(pattern, dict) or not pattern:
        raise ConfigurationError(f"--filter must be a non-empty JSON object: {text!r}")
    _check(pattern, text)
    return pattern


def _check(pattern: dict[str, Any], text: str) -> None:
    for value in pattern.values():
        if isinstance(value, dict):
            _check(value, text)
        elif isinstance(value, list) and value:
            for matcher in value:
                if isinstance(matcher, dict) and (
                    len(matcher) != 1 or next(iter(matcher)) not in _OPERATORS
                ):
                    raise ConfigurationError(f"--filter has an unknown operator: {text!r}")
                if isinstance(matcher, dict) and "numeric" in matcher:
                    _check_numeric(matcher["numeric"], text)
        else:
            raise ConfigurationError(
                f"--filter values must be non-empty lists or objects: {text!r}"
            )


def _check_numeric(spec: Any, text: str) -> None:
    ok = isinstance(spec, list) and len(spec) in (2, 4)
    if ok:
        ops, numbers = spec[0::2], spec[1::2]
        ok = all(op in _COMPARISONS for op in ops) and all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
        )
    if not ok:
        raise ConfigurationError(f"--filter has a malformed numeric matcher: {text!r}")


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    """The record as filters see it: the body parsed as JSON when it is JSON."""
    view = dict(record)
    with contextlib.suppress(ValueError, TypeError):
        view["body"] = json.loads(record["body"])
    return view


def matches_any(patterns: Sequence[dict[str, Any]], record: dict[str, Any]) -> bool:
    if not patterns:
        return True
    view = record_view(record)
    return any(matches(p, view) for p in patterns)


def matches(pattern: dict[str, Any], data: Any) -> bool:
    for key, expected in pattern.items():
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not matches(expected, value):
                return False
        elif not _field_matches(expected, value):
            return False
    return True


def _field_matches(matchers: list[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    values = value if isinstance(value, list) else [value]
    return any(_one(m, v) for m in matchers for v in values)


def _one(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    operator, operand = next(iter(matcher.items()))
    if operator == "exists":
        return bool(operand)
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(str(operand))
    if operator == "suffix":
        return isinstance(value, str) and value.endswith(str(operand))
    if operator == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == str(operand).casefold()
    if operator == "numeric":
        return _numeric(operand, value)
    return not _anything_but_excludes(operand, value)


def _anything_but_excludes(operand: Any, value: Any) -> bool:
    if isinstance(operand, list):
        return any(_equal(o, value) for o in operand)
    if isinstance(operand, dict):
        return _one(operand, value)
    return _equal(operand, value)


def _equal(expected: Any, value: Any) -> bool:
    if _is_number(expected) and _is_number(value):
        return float(expected) == float(value)
    return type(expected) is type(value) and bool(expected == value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(spec: list[Any], value: Any) -> bool:
    if not _is_number(value):
        return False
    number = float(value)
    for op, bound in zip(spec[0::2], spec[1::2], strict=True):
        limit = float(bound)
        ok = {
            "=": number == limit,
            "<": number < limit,
            "<=": number <= limit,
            ">": number > limit,
            ">=": number >= limit,
        }[op]
        if not ok:
            return False
    return True
