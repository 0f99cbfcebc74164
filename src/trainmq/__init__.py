"""trainmq: durable, SQS-compatible message handling for LLM training.

``trainmq.client()`` opens the embedded queue database and returns a client
with boto3's SQS interface::

    import trainmq

    sqs = trainmq.client("sqlite:///.trainmq/queues.db")
    url = sqs.create_queue(QueueName="prepare")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"shard": 1}')
"""

from __future__ import annotations

from pathlib import Path

from .clock import Clock, FakeClock, SystemClock
from .errors import PermanentFailure, SQSError, TrainmqError
from .queue import LocalClient, QueueBackend, SQSService, open_service

__all__ = [
    "Clock",
    "FakeClock",
    "LocalClient",
    "PermanentFailure",
    "QueueBackend",
    "SQSError",
    "SQSService",
    "SystemClock",
    "TrainmqError",
    "__version__",
    "client",
]

__version__ = "0.1.0"


def client(
    address: str | Path | None = None,
    *,
    clock: Clock | None = None,
    durability: str = "full",
    endpoint: str = "http://localhost:9324",
    region: str = "us-east-1",
    account_id: str = "000000000000",
) -> LocalClient:
    """A boto3-shaped SQS client over the embedded database at ``address``.

    ``address`` is ``sqlite:///relative/queues.db``, ``sqlite:////absolute/queues.db``
    (SQLAlchemy's convention), a path (default ``./.trainmq/queues.db``),
    ``postgresql://user@host/db`` for queues that several hosts share (the ``postgres``
    extra; see docs/postgres.md), or a remote endpoint: ``http(s)://host:port`` or
    ``sqs://[REGION]``.  ``durability="full"`` fsyncs every send, delete and visibility
    change before returning; ``"normal"`` is the explicit opt-out (safe against process
    crashes, not power loss).
    """
    return LocalClient(
        open_service(
            address,
            clock=clock,
            durability=durability,
            endpoint=endpoint,
            region=region,
            account_id=account_id,
        )
    )
