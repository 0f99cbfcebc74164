"""The model-based tests of queue semantics, on the PostgreSQL backend.

The same hypothesis state machines and reference model as
``tests/engine/test_model_based.py`` (sends with delays, receives, deletes and
visibility changes through current, expired, stale and dead handles, clock moves,
redrive, FIFO groups), each example in a fresh schema on a fake clock: the
PostgreSQL backend follows exactly the rules the embedded engine does.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

import trainmq
from tests.engine.test_model_based import (
    FifoQueueMachine,
    RedriveQueueMachine,
    StandardQueueMachine,
)
from tests.postgres.support import drop_schema, require_postgres, schema_url


class PostgresMachine:
    """Mixed in before a machine: its client is a PostgreSQL schema of its own."""

    directory: str
    clock: Any

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


class PostgresFifoMachine(PostgresMachine, FifoQueueMachine):
    pass


SETTINGS = settings(max_examples=25, stateful_step_count=30, deadline=None)
ROOM = pytest.mark.timeout(420)

TestPostgresStandardQueue = ROOM(PostgresStandardMachine.TestCase)
TestPostgresStandardQueue.settings = SETTINGS
TestPostgresRedriveQueue = ROOM(PostgresRedriveMachine.TestCase)
TestPostgresRedriveQueue.settings = SETTINGS
TestPostgresFifoQueue = ROOM(PostgresFifoMachine.TestCase)
TestPostgresFifoQueue.settings = SETTINGS
