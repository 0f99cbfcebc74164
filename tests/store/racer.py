"""A process that races to create one key in a local store (started under spawn)."""

from __future__ import annotations

from typing import Any

from trainmq.store import BlobExists, LocalStore


def race(root: str, key: str, payload: bytes, barrier: Any, results: Any) -> None:
    """Wait until every racer is ready, then create ``key``; report the outcome."""
    store = LocalStore(root)
    barrier.wait(timeout=60)
    try:
        store.create(key, payload)
    except BlobExists:
        results.put(("lost", payload))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put((f"error: {exc!r}", payload))
    else:
        results.put(("won", payload))
