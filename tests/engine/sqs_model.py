"""A small pure-Python model of an SQS queue (standard or FIFO), for model-based tests.

Time is passed in explicitly.  A message is receivable when ``visible_at <= now``;
a message that is not receivable counts as *delayed* until it has been received
once and as *not visible* (in flight) after that.  Receives pick the oldest
receivable messages first, in send order: a message whose visibility ended comes
before a newer one that was never received, as in SQS.

Where SQS leaves a choice open, the model lists every allowed outcome and the
test follows the one the system under test took (see ``receive_outcomes``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum


class HandleState(Enum):
    """What a receipt handle refers to at a given moment."""

    IN_FLIGHT = "in flight"  # the message's latest handle, visibility not expired
    EXPIRED = "expired"  # the latest handle, but the message is receivable again
    STALE = "stale"  # the message was received again since: an older delivery
    DELETED = "deleted"  # the message was deleted
    DEAD_LETTERED = "dead-lettered"  # the message moved to the dead-letter queue


@dataclass
class ModelMessage:
    message_id: str
    body: str
    send_order: int
    sent_at: float
    visible_at: float
    receive_count: int = 0
    first_received_at: float | None = None
    handle: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class ReceiveOutcome:
    """One allowed result of a receive: what is delivered and what is dead-lettered."""

    delivered: tuple[str, ...]
    dead_lettered: tuple[str, ...]


@dataclass(frozen=True)
class Counts:
    visible: int
    not_visible: int
    delayed: int


class ModelQueue:
    """SQS semantics of one standard queue."""

    def __init__(
        self,
        visibility_timeout: int,
        max_receive_count: int | None = None,
        dead_letter: ModelQueue | None = None,
    ) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.dead_letter = dead_letter
        self.messages: dict[str, ModelMessage] = {}
        self._handle_owner: dict[str, str] = {}  # every handle ever issued -> message id
        self._deleted: set[str] = set()
        self._dead_lettered: set[str] = set()
        self._send_order = itertools.count()

    def send(self, message_id: str, body: str, now: float, delay: int) -> None:
        self.messages[message_id] = ModelMessage(
            message_id, body, next(self._send_order), sent_at=now, visible_at=now + delay
        )

    def counts(self, now: float) -> Counts:
        visible = not_visible = delayed = 0
        for message in self.messages.values():
            if message.visible_at <= now:
                visible += 1
            elif message.receive_count == 0:
                delayed += 1
            else:
                not_visible += 1
        return Counts(visible, not_visible, delayed)

    def receivable(self, now: float) -> list[ModelMessage]:
        """Receivable messages, oldest sent first."""
        ready = [m for m in self.messages.values() if m.visible_at <= now]
        return sorted(ready, key=lambda m: m.send_order)

    def receive_outcomes(self, now: float, max_messages: int) -> list[ReceiveOutcome]:
        """Every outcome SQS allows for a receive of up to ``max_messages``.

        Without a redrive policy there is one: the oldest receivable messages.
        With one, a message already received ``maxReceiveCount`` times is moved
        to the dead-letter queue instead of being delivered; SQS does not say
        whether the receive then takes the next candidates in its place, only
        considers its first ``max_messages`` candidates, or first moves every
        such message.  All three are allowed.
        """
        candidates = self.receivable(now)
        outcomes = [
            self._take(candidates[:max_messages], max_messages),
            self._take(candidates, max_messages),
            self._sweep_then_take(candidates, max_messages),
        ]
        return list(dict.fromkeys(outcomes))

    def _exhausted(self, message: ModelMessage) -> bool:
        limit = self.max_receive_count
        return limit is not None and message.receive_count >= limit

    def _take(self, candidates: list[ModelMessage], max_messages: int) -> ReceiveOutcome:
        delivered: list[str] = []
        dead_lettered: list[str] = []
        for message in candidates:
            if len(delivered) == max_messages:
                break
            target = dead_lettered if self._exhausted(message) else delivered
            target.append(message.message_id)
        return ReceiveOutcome(tuple(delivered), tuple(dead_lettered))

    def _sweep_then_take(self, candidates: list[ModelMessage], max_messages: int) -> ReceiveOutcome:
        dead_lettered = tuple(m.message_id for m in candidates if self._exhausted(m))
        rest = [m.message_id for m in candidates if not self._exhausted(m)]
        return ReceiveOutcome(tuple(rest[:max_messages]), dead_lettered)

    def apply_receive(
        self, outcome: ReceiveOutcome, handles: dict[str, str], now: float, timeout: int | None
    ) -> None:
        """Record a receive: ``handles`` maps each delivered message id to its new handle."""
        for message_id in outcome.dead_lettered:
            self._move_to_dead_letter(message_id, now)
        visible_at = now + (self.visibility_timeout if timeout is None else timeout)
        for message_id in outcome.delivered:
            message = self.messages[message_id]
            message.receive_count += 1
            if message.first_received_at is None:
                message.first_received_at = now
            message.visible_at = visible_at
            message.handle = handles[message_id]
            self._handle_owner[message.handle] = message_id

    def _move_to_dead_letter(self, message_id: str, now: float) -> None:
        message = self.messages.pop(message_id)
        self._dead_lettered.add(message_id)
        assert self.dead_letter is not None
        self.dead_letter.messages[message_id] = ModelMessage(
            message_id,
            message.body,
            next(self.dead_letter._send_order),
            sent_at=message.sent_at,
            visible_at=now,
            receive_count=message.receive_count,
            first_received_at=message.first_received_at,
        )

    def owner(self, handle: str) -> str:
        return self._handle_owner[handle]

    def handle_state(self, handle: str, now: float) -> HandleState:
        message_id = self._handle_owner[handle]
        if message_id in self._deleted:
            return HandleState.DELETED
        if message_id in self._dead_lettered:
            return HandleState.DEAD_LETTERED
        message = self.messages[message_id]
        if message.handle != handle:
            return HandleState.STALE
        return HandleState.IN_FLIGHT if message.visible_at > now else HandleState.EXPIRED

    def delete(self, handle: str) -> None:
        """Delete through the message's latest handle."""
        message_id = self._handle_owner[handle]
        del self.messages[message_id]
        self._deleted.add(message_id)

    def change_visibility(self, handle: str, now: float, timeout: int) -> None:
        """Change visibility through the message's latest handle."""
        self.messages[self._handle_owner[handle]].visible_at = now + timeout


class FifoModelQueue(ModelQueue):
    """SQS semantics of one FIFO queue (without deduplication or a redrive policy).

    A message is receivable when it is visible and no earlier message of its group is
    hidden.  A receive takes whole groups in turn, each in send order; groups are served
    in the order they became available: a group whose first message was never received
    from that message's send, a group whose first message came back from in flight from
    that return and, on a tie, after groups never delivered.
    """

    def send_to_group(self, message_id: str, body: str, now: float, group: str) -> None:
        self.send(message_id, body, now, 0)
        self.messages[message_id].group = group

    def receivable(self, now: float) -> list[ModelMessage]:
        groups: dict[str | None, list[ModelMessage]] = {}
        for message in sorted(self.messages.values(), key=lambda m: m.send_order):
            groups.setdefault(message.group, []).append(message)
        ready: list[list[ModelMessage]] = []
        for members in groups.values():
            prefix = list(itertools.takewhile(lambda m: m.visible_at <= now, members))
            if prefix:
                ready.append(prefix)

        def availability(prefix: list[ModelMessage]) -> tuple[float, bool, int]:
            head = prefix[0]
            return (head.visible_at, head.receive_count > 0, head.send_order)

        return [m for prefix in sorted(ready, key=availability) for m in prefix]
