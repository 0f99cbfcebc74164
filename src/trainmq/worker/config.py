"""``WorkerConfig``: the settings of one event-source mapping, checked before anything runs.

The limits are Lambda's (``CreateEventSourceMapping``): a batch of 1-10, or up
to 10,000 on a standard queue when a batching window is set; a batching window
of 0-300 s (none on FIFO queues, checked once the queue is known); a function
timeout of 1-900 s.  ``long_running`` is our extension for training jobs: it
lifts the 900 s cap (to SQS's 12-hour visibility cap) and relies on heartbeats
instead of a visibility timeout longer than the job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .filters import parse_pattern

__all__ = ["MAX_LONG_RUNNING_TIMEOUT", "WorkerConfig"]

MAX_BATCH = 10
MAX_BATCH_WITH_WINDOW = 10_000
MAX_WINDOW = 300
MAX_TIMEOUT = 900
MAX_LONG_RUNNING_TIMEOUT = 43_200
MAX_WAIT_SECONDS = 20
_HANDLER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class WorkerConfig:
    """What ``trainmq worker`` was asked to do; ``validate()`` runs on construction.

    ``backend`` is any queue address (``sqlite:///path``, a path, ``http://host:port``,
    ``sqs://REGION``); ``None`` means the default embedded database.  ``store`` is
    where claim-check payloads of large messages live (default ``./.trainmq/store``,
    opened only when a message points there); ``delete_payloads`` deletes a
    payload once its message is deleted.
    """

    handler: str
    queue: str
    backend: str | Path | None = None
    batch_size: int = 10
    batching_window: float = 0.0
    concurrency: int = 1
    timeout: float = 3.0
    long_running: bool = False
    report_batch_item_failures: bool = False
    filters: tuple[str, ...] = ()
    heartbeat: bool = True
    allow_no_dlq: bool = False
    backoff: float | None = None
    backoff_max: float = 900.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    function_name: str | None = None
    memory_limit_in_mb: int = 128
    wait_seconds: int = MAX_WAIT_SECONDS
    durability: str = "full"
    store: str | None = None
    delete_payloads: bool = True
    #: Seconds without progress after which a handler that reports progress is killed
    #: (None: never); see ``worker.progress``.
    progress_timeout: float | None = None
    #: Seconds a stopping worker waits for preempted (progress-reporting) handlers.
    preempt_grace: float = 60.0
    parsed_filters: tuple[dict[str, Any], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "parsed_filters", tuple(parse_pattern(p) for p in self.filters))

    def validate(self) -> None:
        """Reject what Lambda's API would reject, with the option's name in the message."""
        if not _HANDLER.match(self.handler):
            raise ConfigurationError(
                f"handler must look like MODULE:FUNCTION (e.g. app.handlers:handle), "
                f"got {self.handler!r}"
            )
        if not self.queue:
            raise ConfigurationError("--queue must name a queue or give its URL")
        limit = MAX_BATCH_WITH_WINDOW if self.batching_window > 0 else MAX_BATCH
        if not 1 <= self.batch_size <= limit:
            hint = "" if self.batching_window > 0 else " (up to 10000 with --batching-window > 0)"
            raise ConfigurationError(f"--batch-size must be between 1 and {limit}{hint}")
        if not 0 <= self.batching_window <= MAX_WINDOW:
            raise ConfigurationError("--batching-window must be between 0 and 300 seconds")
        if self.concurrency < 1:
            raise ConfigurationError("--concurrency must be at least 1")
        cap = MAX_LONG_RUNNING_TIMEOUT if self.long_running else MAX_TIMEOUT
        if not 1 <= self.timeout <= cap:
            hint = "" if self.long_running else " (use --long-running for longer handlers)"
            raise ConfigurationError(f"--timeout must be between 1 and {cap} seconds{hint}")
        if self.backoff is not None and not 0 < self.backoff <= self.backoff_max:
            raise ConfigurationError("--backoff must be > 0 and at most --backoff-max")
        if not 0 < self.backoff_max <= MAX_LONG_RUNNING_TIMEOUT:
            raise ConfigurationError("--backoff-max must be between 1 and 43200 seconds")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigurationError("--metrics-port must be between 0 and 65535")
        if not 0 <= self.wait_seconds <= MAX_WAIT_SECONDS:
            raise ConfigurationError("wait_seconds must be between 0 and 20")
        if self.progress_timeout is not None and self.progress_timeout <= 0:
            raise ConfigurationError("--progress-timeout must be positive")
        if self.preempt_grace < 0:
            raise ConfigurationError("--preempt-grace must not be negative")
        if self.memory_limit_in_mb < 128:
            raise ConfigurationError("memory_limit_in_mb must be at least 128")

    @property
    def queue_name(self) -> str:
        return self.queue.rstrip("/").rsplit("/", 1)[-1]

    @property
    def name(self) -> str:
        """The function name the context reports (Lambda's FunctionName)."""
        return self.function_name or f"trainmq-{self.queue_name.removesuffix('.fifo')}"
