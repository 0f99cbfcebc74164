"""The message browser (the console's peek and move of selected messages) on PostgreSQL:
the embedded engine's tests, collected again over a fresh schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.test_browse import (  # noqa: F401  (collected here, on PostgreSQL)
    test_a_planted_source_queue_attribute_is_not_a_way_into_another_queue,
    test_move_selected_leaves_messages_in_flight_alone,
    test_move_selected_moves_exactly_the_named_dead_letters,
    test_move_selected_reports_a_vanished_source_queue,
    test_peek_leaves_receive_count_and_visibility_unchanged,
    test_peek_of_a_missing_queue_is_an_sqs_error,
    test_peek_pages_in_send_order_and_filters_by_id,
)
from tests.postgres.support import fresh_schema
from trainmq.clock import FakeClock
from trainmq.queue.backend import MessageBrowser
from trainmq.queue.client import LocalClient, open_service
from trainmq.queue.postgres import PostgresBackend


@pytest.fixture
def sqs() -> Iterator[LocalClient]:
    with fresh_schema("b") as address, LocalClient(
        open_service(address, clock=FakeClock())
    ) as client:
        yield client


def test_the_postgres_backend_is_a_message_browser(sqs: LocalClient) -> None:
    backend = sqs.service.backend
    assert isinstance(backend, PostgresBackend) and isinstance(backend, MessageBrowser)
