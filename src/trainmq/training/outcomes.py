"""How a stage says "not now": the message is delivered again later."""

from __future__ import annotations

__all__ = ["RetryLater"]


class RetryLater(Exception):
    """The message cannot be finished now; the queue will deliver it again."""
