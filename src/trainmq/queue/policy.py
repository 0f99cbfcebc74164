"""Queue policies as AddPermission and RemovePermission write them.

SQS records each AddPermission as a statement (Sid = the label) in the queue's
``Policy`` attribute; RemovePermission drops it, and the attribute goes away
with its last statement.  The embedded engine enforces no policy (it has no
other accounts); the statements are kept so that clients read what AWS shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidParameterValue

__all__ = ["add_statement", "remove_statement"]


def _load(policy: str | None, queue_arn: str) -> dict[str, Any]:
    if policy:
        try:
            document = json.loads(policy)
            if isinstance(document, dict) and isinstance(document.get("Statement"), list):
                return document
        except ValueError:
            pass
    return {"Version": "2008-10-17", "Id": f"{queue_arn}/SQSDefaultPolicy", "Statement": []}


def _one_or_many(items: list[str]) -> str | list[str]:
    """AWS writes a single principal or action as a string, several as a list."""
    return items[0] if len(items) == 1 else items


def add_statement(
    policy: str | None,
    queue_arn: str,
    label: str,
    accounts: Sequence[str],
    actions: Sequence[str],
) -> str:
    document = _load(policy, queue_arn)
    if any(s.get("Sid") == label for s in document["Statement"]):
        raise InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: Already exists."
        )
    partition = queue_arn.split(":")[1]
    document["Statement"].append(
        {
            "Sid": label,
            "Effect": "Allow",
            "Principal": {
                "AWS": _one_or_many([f"arn:{partition}:iam::{a}:root" for a in accounts])
            },
            "Action": _one_or_many([f"SQS:{a}" for a in actions]),
            "Resource": queue_arn,
        }
    )
    return json.dumps(document, separators=(",", ":"))


def remove_statement(policy: str | None, queue_arn: str, label: str) -> str:
    """The policy without ``label``'s statement ('' when none is left)."""
    document = _load(policy, queue_arn)
    kept = [s for s in document["Statement"] if s.get("Sid") != label]
    if len(kept) == len(document["Statement"]):
        raise InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: can't find label."
        )
    document["Statement"] = kept
    return json.dumps(document, separators=(",", ":")) if kept else ""
