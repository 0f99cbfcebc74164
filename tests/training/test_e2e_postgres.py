"""The pipeline end to end with its queues on PostgreSQL: the same tests, the same code.

``tests/training/test_e2e.py`` runs prepare -> train -> evaluate on real
``trainmq worker`` processes over the embedded database.  Here the pipeline's
queues live in a PostgreSQL schema instead: the workers get
``--db postgresql://...`` and the handlers ``TRAINMQ_DB``, and nothing else
changes.  The tests below are that module's, collected again with this
module's ``pipeline`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres.support import fresh_schema
from tests.training.test_e2e import (  # noqa: F401  (collected here, on PostgreSQL)
    dataset,
    test_a_corrupt_shard_dead_letters_with_the_reason,
    test_an_invalid_message_dead_letters_at_once,
    test_prepare_train_evaluate_and_a_duplicate_attaches,
)
from trainmq.queue.postgres import PostgresBackend
from trainmq.training.local import LocalPipeline


class PostgresPipeline(LocalPipeline):
    """LocalPipeline with its queues at ``address`` instead of ``root/queues.db``."""

    def __init__(self, address: str, root: Path, **options: Any) -> None:
        self.address = address
        super().__init__(root, **options)

    @property  # type: ignore[override]
    def db(self) -> Any:
        return self.address

    @db.setter
    def db(self, value: Any) -> None:
        """LocalPipeline names a file in its folder; the queues live in PostgreSQL here."""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    root = tmp_path_factory.mktemp("pipeline-pg")
    env = {"TRAINMQ_STALE_AFTER": "3", "TRAINMQ_BEAT_EVERY": "0.5"}
    with (
        fresh_schema("e2e") as address,
        PostgresPipeline(address, root, train_visibility=5, env=env) as running,
    ):
        assert isinstance(running.client.service.backend, PostgresBackend)
        running.start_worker("prepare", concurrency=2)
        running.start_worker("train")
        running.start_worker("evaluate")
        yield running
