"""The model-based test of standard-queue semantics, on the PostgreSQL backend.

The same hypothesis state machines as ``tests/engine/test_model_based.py``
(sends with delays, receives, deletes and visibility changes through current,
stale and dead handles, clock moves, redrive), each example in a fresh schema
on a fake clock.  The backend delivers the oldest *sent* receivable message
first (as SQS does), so the model's receivable order here is send order.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

import trainmq
from tests.engine.sqs_model import ModelMessage, ModelQueue
from tests.engine.test_model_based import RedriveQueueMachine, StandardQueueMachine
from tests.postgres.support import drop_schema, require_postgres, schema_url


class SendOrderModel(ModelQueue):
    def receivable(self, now: float) -> list[ModelMessage]:
        ready = [m for m in self.messages.values() if m.visible_at <= now]
        return sorted(ready, key=lambda m: m.send_order)


class PostgresMachine:
    """Mixed in before a machine: its client is a PostgreSQL schema of its own."""

    directory: str
    clock: Any
    model: ModelQueue
    dead_letter: ModelQueue | None

    def __init__(self) -> None:
        super().__init__()
        self.model.__class__ = SendOrderModel
        if self.dead_letter is not None:
            self.dead_letter.__class__ = SendOrderModel

    def open_client(self) -> Any:
        url = require_postgres()
        self.schema = "m_" + self.directory.rsplit("-", 1)[-1].lower().replace("-", "_")[:40]
        return trainmq.client(schema_url(url, self.schema), clock=self.clock)

    def teardown(self) -> None:
        super().teardown()  # type: ignore[misc]
        drop_schema(require_postgres(), self.schema)


class PostgresStandardMachine(PostgresMachine, StandardQueueMachine):
    pass


class PostgresRedriveMachine(PostgresMachine, RedriveQueueMachine):
    pass


SETTINGS = settings(max_examples=25, stateful_step_count=30, deadline=None)
ROOM = pytest.mark.timeout(420)

TestPostgresStandardQueue = ROOM(PostgresStandardMachine.TestCase)
TestPostgresStandardQueue.settings = SETTINGS
TestPostgresRedriveQueue = ROOM(PostgresRedriveMachine.TestCase)
TestPostgresRedriveQueue.settings = SETTINGS
