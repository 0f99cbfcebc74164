"""A process that claims one run in a shared registry and prints the outcome (for the race)."""

from __future__ import annotations

import sys

from trainmq.store import open_store
from trainmq.training.runs import RunRegistry

if __name__ == "__main__":
    root, worker = sys.argv[1], sys.argv[2]
    claim = RunRegistry(open_store(root)).claim("r-17", "train/r-17", "{}", 0.0, worker)
    print(claim.outcome, claim.run.run_id, claim.attempt, flush=True)
