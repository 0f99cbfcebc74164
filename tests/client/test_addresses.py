"""Queue addresses follow SQLAlchemy's convention for ``sqlite://`` URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

import trainmq
from trainmq.errors import ConfigurationError
from trainmq.queue.client import sqlite_path


def test_three_slashes_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///.trainmq/queues.db") == Path(".trainmq/queues.db")
    with trainmq.client("sqlite:///data/queues.db") as sqs:
        sqs.create_queue(QueueName="relative")
    assert (tmp_path / "data" / "queues.db").is_file()


def test_four_slashes_are_absolute(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "queues.db"
    assert sqlite_path(f"sqlite:///{target}") == target  # tmp_path starts with "/"
    assert sqlite_path("sqlite:////var/lib/queues.db") == Path("/var/lib/queues.db")
    with trainmq.client(f"sqlite:///{target}") as sqs:
        sqs.create_queue(QueueName="absolute")
    assert target.is_file()


@pytest.mark.parametrize(
    "address", ["sqlite://", "sqlite:///", "sqlite://host/queues.db", "mysql://x/y"]
)
def test_addresses_that_name_no_file_are_refused(address: str) -> None:
    with pytest.raises(ConfigurationError):
        sqlite_path(address)
