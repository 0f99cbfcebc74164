"""Model-based tests of the embedded engine's standard-queue semantics.

A hypothesis state machine runs random sequences of sends (with and without a
delay), receives (1-10 messages, with and without a visibility override),
deletes and visibility changes through current, stale and dead receipt
handles, and clock moves, against the engine and against the reference model
in ``sqs_model``.  After every step it compares the messages a receive returned
(ids, bodies, receive counts, timestamps) and the queue's approximate counts,
which the embedded engine keeps exact.

Time moves in half seconds, so every instant is exact in both the engine's
integer milliseconds and the model's floats, and the boundary ``now ==
visible_at`` is exercised (a message is receivable again at that instant).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
)

import trainmq
from tests.engine.sqs_model import (
    Counts,
    FifoModelQueue,
    HandleState,
    ModelQueue,
    ReceiveOutcome,
)
from trainmq.clock import FakeClock
from trainmq.errors import SQSError

DEFAULT_VISIBILITY = 5
MAX_RECEIVE_COUNT = 2
COUNT_NAMES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]
INVALID_HANDLE = "ReceiptHandleIsInvalid"
NOT_IN_FLIGHT = "AWS.SimpleQueueService.MessageNotInflight"
# What AWS answers a visibility change through the handle of a deleted message.
GONE = "InvalidParameterValue"

half_seconds = st.integers(0, 40).map(lambda halves: halves / 2)


def millis(seconds: float) -> str:
    return str(round(seconds * 1000))


def error_code(exc: SQSError) -> str:
    code: str = exc.response["Error"]["Code"]
    return code


def _record(text: str) -> None:
    """hypothesis.event, also callable when a replay runs the machine outside @given."""
    with contextlib.suppress(InvalidArgument):
        event(text)


class QueueMachine(RuleBasedStateMachine):
    """One standard queue (optionally with a dead-letter queue) against the model."""

    redrive = False
    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="trainmq-model-")
        self.clock = FakeClock()
        self.start = self.clock.now()
        self.client = self.open_client()
        self.sent = 0
        self.seen_ids: set[str] = set()
        attributes = {"VisibilityTimeout": str(DEFAULT_VISIBILITY)}
        self.dead_letter_url: str | None = None
        self.dead_letter: ModelQueue | None = None
        if self.redrive:
            self.dead_letter_url = self._create_queue("model-dlq", attributes)
            arn = self.client.get_queue_attributes(
                QueueUrl=self.dead_letter_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            policy = {"deadLetterTargetArn": arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            attributes = {**attributes, "RedrivePolicy": json.dumps(policy)}
            self.dead_letter = ModelQueue(DEFAULT_VISIBILITY)
        self.url = self._create_queue("model", attributes)
        limit = MAX_RECEIVE_COUNT if self.redrive else None
        self.model = ModelQueue(DEFAULT_VISIBILITY, limit, self.dead_letter)

    def open_client(self) -> Any:
        """The backend under test (other backends' suites override this)."""
        return trainmq.client(str(Path(self.directory) / "queues.db"), clock=self.clock)

    def _create_queue(self, name: str, attributes: dict[str, str]) -> str:
        url: str = self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return url

    def teardown(self) -> None:
        self.client.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- rules -------------------------------------------------------------------------

    @rule(delay=st.none() | st.integers(0, 20))
    def send(self, delay: int | None) -> None:
        body = f"body-{self.sent}"
        self.sent += 1
        extra = {} if delay is None else {"DelaySeconds": delay}
        response = self.client.send_message(QueueUrl=self.url, MessageBody=body, **extra)
        message_id = response["MessageId"]
        assert message_id not in self.seen_ids, f"message id {message_id} issued twice"
        self.seen_ids.add(message_id)
        assert response["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
        self.model.send(message_id, body, self.clock.now(), delay or 0)

    @rule(
        target=handles,
        max_messages=st.integers(1, 10),
        timeout=st.none() | st.integers(0, 60),
    )
    def receive(self, max_messages: int, timeout: int | None) -> Any:
        return self._receive_and_check(max_messages, timeout)

    @rule(target=handles, max_messages=st.integers(1, 10))
    def receive_and_release(self, max_messages: int) -> Any:
        """A zero visibility timeout: receive counts climb without waiting (and dead-letter)."""
        return self._receive_and_check(max_messages, 0)

    def _receive_and_check(self, max_messages: int, timeout: int | None) -> Any:
        now = self.clock.now()
        outcomes = self.model.receive_outcomes(now, max_messages)
        messages = self._receive(self.url, max_messages, timeout)
        delivered = {m["MessageId"] for m in messages}
        assert len(delivered) == len(messages), f"one receive returned a message twice: {messages}"
        matching = [o for o in outcomes if set(o.delivered) == delivered]
        assert matching, (
            f"receive of up to {max_messages} at t+{self._elapsed()} returned "
            f"{sorted(delivered)}; the model allows {[sorted(o.delivered) for o in outcomes]}"
        )
        outcome = self._disambiguate(matching)
        if outcome.dead_lettered:
            _record(f"receive dead-lettered messages (one of {len(outcomes)} allowed outcomes)")
        for message in messages:
            self._check_delivery(message, now)
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        assert len(set(handles.values())) == len(handles), "two deliveries share a handle"
        self.model.apply_receive(outcome, handles, now, timeout)
        return multiple(*handles.values())

    @rule(handle=handles)
    def delete(self, handle: str) -> None:
        state = self.model.handle_state(handle, self.clock.now())
        try:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=handle)
        except SQSError as exc:
            code = error_code(exc)
            _record(f"delete through a handle that is {state.value}: {code}")
            assert state is HandleState.DEAD_LETTERED and code == INVALID_HANDLE, (
                f"delete through a handle that is {state.value} raised {code}: {exc}"
            )
            return
        _record(f"delete through a handle that is {state.value}: ok")
        if state in (HandleState.IN_FLIGHT, HandleState.EXPIRED):
            self.model.delete(handle)

    @rule(handle=handles, timeout=st.integers(0, 60))
    def change_visibility(self, handle: str, timeout: int) -> None:
        now = self.clock.now()
        state = self.model.handle_state(handle, now)
        try:
            self.client.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=timeout
            )
        except SQSError as exc:
            code = error_code(exc)
            _record(f"change visibility through a handle that is {state.value}: {code}")
            # the latest handle works while in flight and after the visibility ended
            assert state not in (HandleState.IN_FLIGHT, HandleState.EXPIRED), (
                f"changing visibility through a handle that is {state.value} raised {exc!r}"
            )
            assert code in (INVALID_HANDLE, NOT_IN_FLIGHT, GONE), (
                f"changing visibility through a handle that is {state.value} raised {code}"
            )
            return
        _record(f"change visibility through a handle that is {state.value}: ok")
        if state in (HandleState.IN_FLIGHT, HandleState.EXPIRED):
            self.model.change_visibility(handle, now, timeout)

    @rule(handle=st.sampled_from(["not-a-receipt-handle", "AQEB" + "x" * 40]))
    def delete_malformed_handle(self, handle: str) -> None:
        try:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=handle)
        except SQSError as exc:
            assert error_code(exc) == INVALID_HANDLE, exc.response
        else:
            raise AssertionError(f"deleting with the handle {handle!r} succeeded")

    @rule(seconds=half_seconds)
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- checks ------------------------------------------------------------------------

    @invariant()
    def counts_match_the_model(self) -> None:
        now = self.clock.now()
        assert self._counts(self.url) == self.model.counts(now), f"queue at t+{self._elapsed()}"
        if self.dead_letter is not None and self.dead_letter_url is not None:
            assert self._counts(self.dead_letter_url) == self.dead_letter.counts(now), (
                f"dead-letter queue at t+{self._elapsed()}"
            )

    def _check_delivery(self, message: dict[str, Any], now: float) -> None:
        expected = self.model.messages[message["MessageId"]]
        attributes = message["Attributes"]
        assert message["Body"] == expected.body
        assert attributes["ApproximateReceiveCount"] == str(expected.receive_count + 1), (
            f"{expected.body}: receive count {attributes['ApproximateReceiveCount']}, "
            f"the model says {expected.receive_count + 1}"
        )
        assert attributes["SentTimestamp"] == millis(expected.sent_at)
        first = expected.first_received_at if expected.first_received_at is not None else now
        assert attributes["ApproximateFirstReceiveTimestamp"] == millis(first)

    def _disambiguate(self, outcomes: list[ReceiveOutcome]) -> ReceiveOutcome:
        """Among outcomes that delivered the same messages, the one the DLQ's size shows.

        Their dead-lettered sets are nested, so their sizes tell them apart.
        """
        if len(outcomes) == 1:
            return outcomes[0]
        assert self.dead_letter is not None and self.dead_letter_url is not None
        counts = self._counts(self.dead_letter_url)
        total = counts.visible + counts.not_visible + counts.delayed
        moved = total - len(self.dead_letter.messages)
        chosen = [o for o in outcomes if len(o.dead_lettered) == moved]
        assert len(chosen) == 1, f"{moved} messages dead-lettered; the model allows {outcomes}"
        return chosen[0]

    def _receive(self, url: str, max_messages: int, timeout: int | None) -> list[dict[str, Any]]:
        extra = {} if timeout is None else {"VisibilityTimeout": timeout}
        response = self.client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            **extra,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _counts(self, url: str) -> Counts:
        attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=COUNT_NAMES)
        values = [int(attributes["Attributes"][name]) for name in COUNT_NAMES]
        return Counts(*values)

    def _elapsed(self) -> float:
        return self.clock.now() - self.start


class StandardQueueMachine(QueueMachine):
    redrive = False


class RedriveQueueMachine(QueueMachine):
    redrive = True

    @rule(timeout=st.integers(0, 60))
    def receive_dead_letters(self, timeout: int) -> None:
        """Dead letters are whole messages: same id and body, receivable in the DLQ."""
        assert self.dead_letter is not None and self.dead_letter_url is not None
        now = self.clock.now()
        receivable = {m.message_id for m in self.dead_letter.receivable(now)}
        messages = self._receive(self.dead_letter_url, 10, timeout)
        delivered = {m["MessageId"] for m in messages}
        assert len(delivered) == len(messages), f"one receive returned a message twice: {messages}"
        assert delivered <= receivable, f"DLQ returned {delivered}, receivable {receivable}"
        assert len(delivered) == min(10, len(receivable)), (delivered, receivable)
        for message in messages:
            expected = self.dead_letter.messages[message["MessageId"]]
            assert message["Body"] == expected.body
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        outcome = ReceiveOutcome(tuple(handles), ())
        self.dead_letter.apply_receive(outcome, handles, now, timeout)


class FifoQueueMachine(QueueMachine):
    """One FIFO queue: which messages a receive may take depends on their groups."""

    def __init__(self) -> None:
        super().__init__()
        self.url = self._create_queue(
            "model.fifo",
            {
                "FifoQueue": "true",
                "VisibilityTimeout": str(DEFAULT_VISIBILITY),
            },
        )
        self.model = FifoModelQueue(DEFAULT_VISIBILITY)

    @rule(group=st.sampled_from(["g1", "g2", "g3"]))
    def send(self, group: str) -> None:  # type: ignore[override]
        body = f"body-{self.sent}"
        self.sent += 1
        response = self.client.send_message(
            QueueUrl=self.url,
            MessageBody=body,
            MessageGroupId=group,
            MessageDeduplicationId=body,
        )
        self.model.send_to_group(response["MessageId"], body, self.clock.now(), group)

    @rule(handle=QueueMachine.handles)
    def delete(self, handle: str) -> None:
        """A FIFO handle deletes only while its delivery lasts; once the visibility ran
        out it has expired; a stale or deleted one deletes nothing, as on a standard queue."""
        state = self.model.handle_state(handle, self.clock.now())
        try:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=handle)
        except SQSError as exc:
            _record(f"FIFO delete through a handle that is {state.value}: {error_code(exc)}")
            assert state is HandleState.EXPIRED, (
                f"delete through a handle that is {state.value} raised {exc!r}"
            )
            assert error_code(exc) == GONE and "has expired" in str(exc), exc.response
            return
        _record(f"FIFO delete through a handle that is {state.value}: ok")
        assert state is not HandleState.EXPIRED, "delete through an expired handle succeeded"
        if state is HandleState.IN_FLIGHT:
            self.model.delete(handle)


MACHINE_SETTINGS = settings(max_examples=50, stateful_step_count=30, deadline=None)
# Hypothesis may spend up to five minutes shrinking a failure: let it finish and report.
SHRINKING_ROOM = pytest.mark.timeout(420)

TestStandardQueue = SHRINKING_ROOM(StandardQueueMachine.TestCase)
TestStandardQueue.settings = MACHINE_SETTINGS
TestRedriveQueue = SHRINKING_ROOM(RedriveQueueMachine.TestCase)
TestRedriveQueue.settings = MACHINE_SETTINGS
TestFifoQueue = SHRINKING_ROOM(FifoQueueMachine.TestCase)
TestFifoQueue.settings = MACHINE_SETTINGS


def test_receive_that_dead_letters_with_zero_visibility_delivers_each_message_once() -> None:
    """A sequence the machine found: the receive dead-letters one message and takes the
    next one in its place, whose zero visibility timeout makes it receivable at once."""
    machine = RedriveQueueMachine()
    try:
        machine.send(delay=None)
        machine.send(delay=None)
        for max_messages in (1, 1, 2):
            machine.receive_and_release(max_messages=max_messages)
            machine.counts_match_the_model()
    finally:
        machine.teardown()
