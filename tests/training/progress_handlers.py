"""Handlers for the worker's progress tests: one that hangs, one that can be preempted."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from trainmq.worker.progress import Preemption, ProgressReporter

LOG_ENV = "TRAINMQ_TEST_PROGRESS_LOG"


def _log(entry: dict[str, Any]) -> None:
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def stall(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """First delivery: report progress once, then stop this process (alive, no progress)."""
    for record in event["Records"]:
        receives = int(record["attributes"]["ApproximateReceiveCount"])
        _log({"receive": receives, "pid": os.getpid()})
        if receives == 1:
            ProgressReporter(every=0)()
            os.kill(os.getpid(), signal.SIGSTOP)
    return {}


def preemptible(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Work (reporting progress) until preempted, then return as after a checkpoint."""
    report = ProgressReporter(every=0)
    with Preemption() as preempted:
        report()
        _log({"started": True})  # after the first report: the worker now watches this handler
        while not preempted():
            report()
            time.sleep(0.05)
    _log({"preempted": True})
    return {}
