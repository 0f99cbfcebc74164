"""Prometheus metrics of the endpoint: request counters, latency, and queue gauges.

The queue gauges name every queue and its depth, so with credentials a scrape
must be signed by a key granted :data:`GET_METRICS` on every queue (``*``), or the
server must be started with ``--metrics-public``.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from typing import Any

from ..errors import AccessDenied
from ..queue.service import SQSService
from .auth import AccessKey
from .peers import Peers

__all__ = ["GET_METRICS", "Metrics", "authorize_scrape"]

#: The grant (beside the SQS actions) that reads ``/metrics``; ``*`` covers it.
GET_METRICS = "trainmq:GetMetrics"


def authorize_scrape(key: AccessKey) -> None:
    """Refuse a key that may not see every queue's name and depth."""
    if not key.allows(GET_METRICS, "*"):
        raise AccessDenied(
            f"User: {key.name} is not authorized to perform: {GET_METRICS} on every queue "
            '(the metrics name all queues). Grant it with queues = ["*"], or start the '
            "server with --metrics-public."
        )


_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counts requests by action and outcome, and times them per action.

    With ``peers`` (``serve --workers N``) a scrape answers for the whole server:
    this process's counters plus the other processes' latest snapshots.
    """

    def __init__(self, peers: Peers | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._messages: dict[str, int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._peers = peers
        if peers is not None:
            previous = peers.previous()
            if previous is not None:  # a restarted process continues its counters
                self._add(previous)
            peers.start(self.snapshot)

    def observe(self, action: str, error_code: str | None, seconds: float, messages: int) -> None:
        with self._lock:
            self._requests[(action, error_code or "")] += 1
            if messages:
                self._messages[action] += messages
            buckets = self._buckets.setdefault(action, [0] * len(_BUCKETS))
            for index, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
            self._sums[action] += seconds
            self._counts[action] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain JSON data (what peers publish and sum)."""
        with self._lock:
            return {
                "requests": [[a, c, n] for (a, c), n in self._requests.items()],
                "messages": dict(self._messages),
                "buckets": {a: list(b) for a, b in self._buckets.items()},
                "sums": dict(self._sums),
                "counts": dict(self._counts),
            }

    def _add(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            for action, code, count in snapshot.get("requests", []):
                self._requests[(action, code)] += count
            for action, count in snapshot.get("messages", {}).items():
                self._messages[action] += count
            for action, counts in snapshot.get("buckets", {}).items():
                own = self._buckets.setdefault(action, [0] * len(_BUCKETS))
                for index, count in enumerate(counts[: len(_BUCKETS)]):
                    own[index] += count
            for action, total in snapshot.get("sums", {}).items():
                self._sums[action] += total
            for action, count in snapshot.get("counts", {}).items():
                self._counts[action] += count

    def close(self) -> None:
        """Publish the final counters (a restarted process resumes them)."""
        if self._peers is not None:
            self._peers.stop()

    def _server_wide(self) -> Metrics:
        """This process's counters summed with its peers' (itself without peers)."""
        if self._peers is None:
            return self
        total = Metrics()
        total._add(self.snapshot())
        for snapshot in self._peers.others():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                total._add(snapshot)
        return total

    def render(self, service: SQSService) -> str:
        return self._server_wide()._render_counters() + _render_gauges(service)

    def _render_counters(self) -> str:
        lines = [
            "# HELP trainmq_requests_total SQS requests by action and error code ('' = success).",
            "# TYPE trainmq_requests_total counter",
        ]
        with self._lock:
            for (action, code), count in sorted(self._requests.items()):
                lines.append(
                    f'trainmq_requests_total{{action="{action}",error="{_escape(code)}"}} {count}'
                )
            lines += [
                "# HELP trainmq_messages_total Messages sent, received and deleted.",
                "# TYPE trainmq_messages_total counter",
            ]
            for action, count in sorted(self._messages.items()):
                lines.append(f'trainmq_messages_total{{action="{action}"}} {count}')
            lines += [
                "# HELP trainmq_request_seconds Request latency by action.",
                "# TYPE trainmq_request_seconds histogram",
            ]
            for action, buckets in sorted(self._buckets.items()):
                for bound, count in zip(_BUCKETS, buckets, strict=True):
                    lines.append(
                        f'trainmq_request_seconds_bucket{{action="{action}",le="{bound}"}} {count}'
                    )
                total = self._counts[action]
                lines.append(
                    f'trainmq_request_seconds_bucket{{action="{action}",le="+Inf"}} {total}'
                )
                lines.append(
                    f'trainmq_request_seconds_sum{{action="{action}"}} {self._sums[action]}'
                )
                lines.append(f'trainmq_request_seconds_count{{action="{action}"}} {total}')
        return "\n".join(lines) + "\n"


def _render_gauges(service: SQSService) -> str:
    return "\n".join(_queue_gauges(service)) + "\n"


def _queue_gauges(service: SQSService) -> list[str]:
    backend = service.backend
    names = backend.list_queues(None)
    gauges: dict[str, list[str]] = {
        "trainmq_queue_messages": ["Visible messages (ApproximateNumberOfMessages)."],
        "trainmq_queue_in_flight": ["Received, not yet deleted or visible again."],
        "trainmq_queue_delayed": ["Messages waiting out a delay."],
        "trainmq_queue_oldest_message_age_seconds": ["Age of the oldest message."],
        "trainmq_queue_dead_letter_messages": ["Visible messages in the queue's DLQ."],
    }
    counts = {}
    for name in names:
        try:
            counts[name] = backend.queue_counts(name)
        except Exception:
            continue
    for name, values in counts.items():
        label = f'{{queue="{_escape(name)}"}}'
        gauges["trainmq_queue_messages"].append(f"{label} {values['ApproximateNumberOfMessages']}")
        gauges["trainmq_queue_in_flight"].append(
            f"{label} {values['ApproximateNumberOfMessagesNotVisible']}"
        )
        gauges["trainmq_queue_delayed"].append(
            f"{label} {values['ApproximateNumberOfMessagesDelayed']}"
        )
        age = getattr(backend, "oldest_message_age", lambda _n: None)(name)
        gauges["trainmq_queue_oldest_message_age_seconds"].append(f"{label} {age or 0}")
        record = backend.get_queue(name)
        policy = record.attributes.get("RedrivePolicy")
        if policy:
            from ..queue.attributes import parse_redrive_policy

            dlq = parse_redrive_policy(policy).dead_letter_target_arn.rsplit(":", 1)[1]
            depth = counts.get(dlq, {}).get("ApproximateNumberOfMessages", 0)
            gauges["trainmq_queue_dead_letter_messages"].append(f"{label} {depth}")
    lines = []
    for metric, (help_text, *samples) in gauges.items():
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} gauge")
        lines.extend(f"{metric}{sample}" for sample in samples)
    return lines
