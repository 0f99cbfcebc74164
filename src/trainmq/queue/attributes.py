"""Queue attributes: names, ranges, defaults and the redrive policies.

Attributes are kept as SQS spells them, strings in a dict, so that what a
client set is what it gets back.  ``normalize`` turns a caller's dict into the
canonical form or raises AWS's error for the first bad entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidAttributeName, InvalidAttributeValue, InvalidParameterValue
from . import limits
from .validate import integer_text

__all__ = [
    "COMPUTED_ATTRIBUTES",
    "RedrivePolicy",
    "default_attributes",
    "merge",
    "normalize",
    "parse_redrive_allow_policy",
    "parse_redrive_policy",
]

_INT_RANGES: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, limits.MAX_DELAY_SECONDS),
    "MaximumMessageSize": (1024, limits.MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, limits.MAX_WAIT_SECONDS),
    "VisibilityTimeout": (0, limits.MAX_VISIBILITY_TIMEOUT),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
_BOOLEANS = {"SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication"}
_CHOICES: dict[str, tuple[str, ...]] = {
    "DeduplicationScope": ("messageGroup", "queue"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
_FREE_TEXT = {"Policy", "KmsMasterKeyId", "RedrivePolicy", "RedriveAllowPolicy"}
FIFO_ONLY = {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
SETTABLE = set(_INT_RANGES) | _BOOLEANS | set(_CHOICES) | _FREE_TEXT

COMPUTED_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
#: Every name GetQueueAttributes accepts (besides ``All``).
READABLE = SETTABLE | set(COMPUTED_ATTRIBUTES)


def default_attributes(fifo: bool) -> dict[str, str]:
    attributes = {
        "DelaySeconds": "0",
        "MaximumMessageSize": str(limits.MAX_MESSAGE_BYTES),
        "MessageRetentionPeriod": "345600",
        "ReceiveMessageWaitTimeSeconds": "0",
        "VisibilityTimeout": "30",
        "SqsManagedSseEnabled": "true",
    }
    if fifo:
        attributes |= {
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "DeduplicationScope": "queue",
            "FifoThroughputLimit": "perQueue",
        }
    return attributes


def _invalid(name: str) -> InvalidAttributeValue:
    return InvalidAttributeValue(f"Invalid value for the parameter {name}.")


def _normalize_one(name: str, value: Any, fifo: bool) -> str:
    if name not in SETTABLE or (name in ("FifoQueue", "ContentBasedDeduplication") and not fifo):
        raise InvalidAttributeName(f"Unknown Attribute {name}.")
    if name in FIFO_ONLY and not fifo:
        raise InvalidAttributeName(
            f"You can specify the {name} only when FifoQueue is set to true."
        )
    if not isinstance(value, str):
        raise _invalid(name)
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        number = integer_text(value)
        if number is None or not low <= number <= high:
            raise _invalid(name)
        return str(number)
    if name in _BOOLEANS:
        if value.lower() not in ("true", "false"):
            raise _invalid(name)
        return value.lower()
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise _invalid(name)
        return value
    if name == "Policy" and value:
        try:
            json.loads(value)
        except ValueError:
            raise InvalidAttributeValue("Invalid value for the parameter Policy.") from None
    return value


def normalize(attributes: Mapping[str, Any], *, fifo: bool) -> dict[str, str]:
    """Validate settable attributes and return their canonical spellings."""
    result: dict[str, str] = {}
    for name, value in attributes.items():
        result[name] = _normalize_one(name, value, fifo)
    if result.get("RedrivePolicy"):
        policy = parse_redrive_policy(result["RedrivePolicy"])
        result["RedrivePolicy"] = policy.to_json()
    if result.get("RedriveAllowPolicy"):
        allow = parse_redrive_allow_policy(result["RedriveAllowPolicy"])
        result["RedriveAllowPolicy"] = json.dumps(allow, separators=(",", ":"))
    return result


#: Attributes that an empty value removes instead of setting.
_REMOVED_WHEN_EMPTY = ("Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId")
_DEFAULT_KMS_REUSE_SECONDS = "300"


def merge(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """``current`` with normalized ``changes`` applied, as SQS stores them.

    An empty policy or KMS key removes the attribute; without a KMS key the data-key
    reuse period goes too, and a new key brings the default period, so that
    GetQueueAttributes shows what AWS shows.  Every backend stores the result.
    """
    merged = dict(current)
    for key, value in changes.items():
        if value == "" and key in _REMOVED_WHEN_EMPTY:
            merged.pop(key, None)
        else:
            merged[key] = value
    if "KmsMasterKeyId" in merged:
        merged.setdefault("KmsDataKeyReusePeriodSeconds", _DEFAULT_KMS_REUSE_SECONDS)
    else:
        merged.pop("KmsDataKeyReusePeriodSeconds", None)
    return merged


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    dead_letter_target_arn: str
    max_receive_count: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "deadLetterTargetArn": self.dead_letter_target_arn,
                "maxReceiveCount": self.max_receive_count,
            },
            separators=(",", ":"),
        )


def _bad_policy(value: str, reason: str, parameter: str = "RedrivePolicy") -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Value {value} for parameter {parameter} is invalid. Reason: {reason}"
    )


def _json_map(value: str, parameter: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidAttributeValue(
            f"Invalid value for the parameter {parameter}. Reason: Redrive policy is not a "
            "valid JSON map."
        )
    return data


def parse_redrive_policy(value: str) -> RedrivePolicy:
    data = _json_map(value, "RedrivePolicy")
    for key in ("deadLetterTargetArn", "maxReceiveCount"):
        if key not in data:
            raise _bad_policy(value, f"Redrive policy does not contain mandatory attribute: {key}.")
    unknown = set(data) - {"deadLetterTargetArn", "maxReceiveCount"}
    if unknown:
        raise _bad_policy(
            value,
            f"Only following attributes are supported: "
            f"[deadLetterTargetArn, maxReceiveCount]; found {sorted(unknown)[0]}.",
        )
    raw_count = data["maxReceiveCount"]
    count = raw_count if type(raw_count) is int else integer_text(str(raw_count))
    count = -1 if count is None else count
    if not 1 <= count <= limits.MAX_RECEIVE_COUNT:
        raise _bad_policy(
            value,
            f"Invalid value for maxReceiveCount: {raw_count}, valid values are from 1 to "
            f"{limits.MAX_RECEIVE_COUNT} both inclusive.",
        )
    arn = data["deadLetterTargetArn"]
    if not isinstance(arn, str) or not arn.startswith("arn:") or arn.count(":") != 5:
        raise _bad_policy(value, f"Invalid value for deadLetterTargetArn: {arn}.")
    return RedrivePolicy(arn, count)


def parse_redrive_allow_policy(value: str) -> dict[str, Any]:
    data = _json_map(value, "RedriveAllowPolicy")
    permission = data.get("redrivePermission")
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise _bad_policy(value, "Invalid value for redrivePermission.", "RedriveAllowPolicy")
    sources = data.get("sourceQueueArns")
    if permission == "byQueue":
        if not isinstance(sources, list) or not sources:
            raise _bad_policy(
                value, "sourceQueueArns must be specified with byQueue.", "RedriveAllowPolicy"
            )
        if len(sources) > limits.MAX_REDRIVE_SOURCE_ARNS:
            raise _bad_policy(value, "Only 10 sourceQueueArns are allowed.", "RedriveAllowPolicy")
        return {"redrivePermission": permission, "sourceQueueArns": list(sources)}
    if sources is not None:
        raise _bad_policy(
            value, "sourceQueueArns can be specified only with byQueue.", "RedriveAllowPolicy"
        )
    return {"redrivePermission": permission}


def redrive_allowed(allow_policy: str | None, source_arn: str) -> bool:
    """Whether a dead-letter queue with ``allow_policy`` accepts ``source_arn`` as a source."""
    if not allow_policy:
        return True
    data = json.loads(allow_policy)
    permission = data.get("redrivePermission", "allowAll")
    if permission == "denyAll":
        return False
    if permission == "byQueue":
        return source_arn in data.get("sourceQueueArns", [])
    return True
