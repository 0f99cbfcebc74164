"""What a handler's answer means for each message, by Lambda's rules.

With ReportBatchItemFailures, a null or empty response, or a null or empty
``batchItemFailures`` list, is full success; ``batchItemFailures`` naming
messages fails exactly those; anything malformed (not an object, a list that
is not a list, an entry without ``itemIdentifier``, an empty or unknown
identifier) fails the whole batch.  Without it, any answer is full success.
An exception, a timeout or a dead process always fails the whole batch.

Extension: ``permanentFailures: [{"itemIdentifier": id, "reason": "..."}]`` in
the response (or ``raise trainmq.PermanentFailure(reason)`` for the whole
batch) dead-letters those messages at once instead of retrying them.

On FIFO queues, once a message of a group fails, the later messages of that
group in the batch fail too, so a group is never processed out of order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .pool import Invocation

__all__ = ["Verdict", "judge"]


@dataclass
class Verdict:
    """Per message id: delete, retry, or dead-letter (with a reason)."""

    outcome: str
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    permanent: dict[str, str] = field(default_factory=dict)
    error: str = ""


def judge(
    invocation: Invocation,
    records: Sequence[dict[str, Any]],
    *,
    report_item_failures: bool,
    fifo: bool,
) -> Verdict:
    ids = [r["messageId"] for r in records]
    if invocation.kind == "permanent":
        return Verdict("permanent_failure", permanent=dict.fromkeys(ids, invocation.reason))
    if invocation.kind != "result":
        return Verdict(invocation.kind, failed=ids, error=invocation.error)
    response = invocation.response
    failed, problem = _item_failures(response, set(ids)) if report_item_failures else (set(), "")
    permanent, permanent_problem = _permanent_failures(response, set(ids))
    problem = problem or permanent_problem
    if problem:
        return Verdict("invalid_response", failed=ids, error=problem)
    failed -= set(permanent)
    if fifo:
        failed = _fail_rest_of_groups(records, failed)
    verdict = Verdict(
        "success" if not failed and not permanent else "partial_failure",
        succeeded=[i for i in ids if i not in failed and i not in permanent],
        failed=[i for i in ids if i in failed],
        permanent=permanent,
    )
    return verdict


def _item_failures(response: Any, known: set[str]) -> tuple[set[str], str]:
    if response is None or response == {}:
        return set(), ""
    if not isinstance(response, dict):
        return set(), f"the response is not a JSON object: {response!r:.200}"
    entries = response.get("batchItemFailures")
    if entries is None:
        return set(), ""
    return _identifiers(entries, known, "batchItemFailures")


def _identifiers(entries: Any, known: set[str], key: str) -> tuple[set[str], str]:
    if not isinstance(entries, list):
        return set(), f"{key} is not a list"
    found: set[str] = set()
    for entry in entries:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return set(), f"{key} has an entry without an itemIdentifier: {entry!r:.200}"
        if identifier not in known:
            return set(), f"{key} names a message not in the batch: {identifier!r}"
        found.add(identifier)
    return found, ""


def _permanent_failures(response: Any, known: set[str]) -> tuple[dict[str, str], str]:
    if not isinstance(response, dict) or response.get("permanentFailures") is None:
        return {}, ""
    entries = response["permanentFailures"]
    ids, problem = _identifiers(entries, known, "permanentFailures")
    if problem:
        return {}, problem
    reasons = {e["itemIdentifier"]: str(e.get("reason", "")) for e in entries}
    return {i: reasons[i] for i in ids}, ""


def _fail_rest_of_groups(records: Sequence[dict[str, Any]], failed: set[str]) -> set[str]:
    stopped: set[str] = set()
    result = set(failed)
    for record in records:
        group = record["attributes"].get("MessageGroupId", "")
        if group in stopped:
            result.add(record["messageId"])
        elif record["messageId"] in failed:
            stopped.add(group)
    return result
