"""The event-source mapping: Lambda's SQS integration as a process on any machine.

``trainmq worker MODULE:FUNCTION --queue NAME`` (or ``run(WorkerConfig(...))``,
or ``Worker(config).start()`` / ``.stop()``) polls a queue in batches, invokes
a Lambda-style handler ``handler(event, context)`` in warm child processes,
and settles each batch by Lambda's rules, with visibility heartbeats,
permanent failures and graceful shutdown on top.
"""

from __future__ import annotations

from .config import WorkerConfig
from .event import LambdaContext, sqs_record
from .mapping import Worker
from .pool import HandlerInitError
from .runner import WorkerAborted, run
from .settle import DEAD_LETTER_REASON, SOURCE_QUEUE

__all__ = [
    "DEAD_LETTER_REASON",
    "SOURCE_QUEUE",
    "HandlerInitError",
    "LambdaContext",
    "Worker",
    "WorkerAborted",
    "WorkerConfig",
    "run",
    "sqs_record",
]
