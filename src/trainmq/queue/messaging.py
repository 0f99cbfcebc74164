"""The message actions of ``SQSService``: send, receive, delete, change visibility."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from ..errors import BatchRequestTooLong, InvalidParameterValue, MissingParameter, SQSError
from . import limits
from .md5 import md5_of_attributes, md5_of_bytes
from .model import MessageAttributeValue, NewMessage, ReceivedMessage, ReceiveRequest, SendResult
from .validate import (
    attributes_size,
    check_batch_ids,
    check_body,
    check_fifo_id,
    check_int,
    check_names,
    message_attributes,
    require,
    system_attributes,
)

if TYPE_CHECKING:
    from .backend import QueueBackend
    from .model import QueueRecord

__all__ = ["MessagingActions", "PreparedReceive"]

Params = Mapping[str, Any]
Response = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class PreparedReceive:
    """A validated ReceiveMessage: the queue, the engine's request, what to answer with."""

    queue: str
    request: ReceiveRequest
    system_names: frozenset[str]
    user_names: list[str]


_SYSTEM_NAMES = {
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
    "SqsManagedSseEnabled",
}
# ReceiveMessage's deprecated AttributeNames is typed with the queue attribute names.
_LEGACY_NAMES = _SYSTEM_NAMES | {
    "Policy",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "ApproximateNumberOfMessagesDelayed",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
}


class MessagingActions:
    backend: QueueBackend
    name_from_url: Callable[[Params], str]
    cached_queue: Callable[[str], QueueRecord]

    # -- send --------------------------------------------------------------------------------
    def _new_message(self, entry: Params, queue: QueueRecord) -> NewMessage:
        return self._sized_message(entry, queue)[0]

    def _sized_message(self, entry: Params, queue: QueueRecord) -> tuple[NewMessage, int]:
        """The validated message and its size against MaximumMessageSize; the body is
        encoded once, for both the size and the MD5."""
        body = check_body(entry.get("MessageBody"))
        raw = entry.get("MessageAttributes")
        user = {} if raw is None else message_attributes(raw)
        raw = entry.get("MessageSystemAttributes")
        system = {} if raw is None else system_attributes(raw)
        max_size = int(queue.attributes["MaximumMessageSize"])
        data = body.encode("utf-8")
        size = len(data) + attributes_size(user) if user else len(data)
        if size > max_size:
            raise InvalidParameterValue(
                f"One or more parameters are invalid. Reason: Message must be shorter than "
                f"{max_size} bytes."
            )
        fifo = queue.attributes.get("FifoQueue") == "true"
        delay = entry.get("DelaySeconds")
        group_id = entry.get("MessageGroupId")
        dedup_id = entry.get("MessageDeduplicationId")
        if fifo:
            if delay is not None and str(delay) != "0":
                raise InvalidParameterValue(
                    f"Value {delay} for parameter DelaySeconds is invalid. Reason: The request "
                    "include parameter that is not valid for this queue type."
                )
            if group_id is None:
                raise MissingParameter("The request must contain the parameter MessageGroupId.")
            check_fifo_id(group_id, "MessageGroupId")
            if dedup_id is None:
                if queue.attributes.get("ContentBasedDeduplication") != "true":
                    raise InvalidParameterValue(
                        "The queue should either have ContentBasedDeduplication enabled or "
                        "MessageDeduplicationId provided explicitly"
                    )
            else:
                check_fifo_id(dedup_id, "MessageDeduplicationId")
            delay_seconds = int(queue.attributes["DelaySeconds"])
        else:
            if dedup_id is not None:
                raise InvalidParameterValue(
                    f"Value {dedup_id} for parameter MessageDeduplicationId is invalid. Reason: "
                    "The request include parameter that is not valid for this queue type."
                )
            if group_id is not None:
                check_fifo_id(group_id, "MessageGroupId")
            delay_seconds = (
                int(queue.attributes["DelaySeconds"])
                if delay is None
                else check_int(
                    delay,
                    "DelaySeconds",
                    0,
                    limits.MAX_DELAY_SECONDS,
                    "DelaySeconds must be >= 0 and <= 900.",
                )
            )
        message = NewMessage(
            body=body,
            md5_of_body=md5_of_bytes(data),
            delay_seconds=delay_seconds,
            message_attributes=user,
            md5_of_message_attributes=md5_of_attributes(user) if user else None,
            system_attributes=system,
            md5_of_system_attributes=md5_of_attributes(system) if system else None,
            group_id=group_id,
            deduplication_id=dedup_id,
        )
        return message, size

    def send_message(self, params: Params) -> Response:
        name = self.name_from_url(params)
        queue = self.cached_queue(name)
        message = self._new_message(params, queue)
        result = self.backend.send_messages(name, [message])[0]
        if isinstance(result, SQSError):
            raise result
        return _send_response(result)

    def send_message_batch(self, params: Params) -> Response:
        name = self.name_from_url(params)
        entries = check_batch_ids(require(params, "Entries"), "SendMessageBatchRequestEntry")
        queue = self.cached_queue(name)
        if queue.attributes.get("FifoQueue") == "true":
            _check_fifo_entries(entries, queue)
        failed: list[Response] = []
        ready: list[tuple[str, NewMessage]] = []
        total = 0
        for entry in entries:
            try:
                message, size = self._sized_message(entry, queue)
            except SQSError as exc:
                failed.append(_failure(entry["Id"], exc))
                total += len(str(entry.get("MessageBody") or "").encode("utf-8"))
                continue
            ready.append((entry["Id"], message))
            total += size
        if total > limits.MAX_BATCH_BYTES:  # the whole request is refused, entries or not
            raise BatchRequestTooLong(
                f"Batch requests cannot be longer than {limits.MAX_BATCH_BYTES} bytes. "
                f"You have sent {total} bytes."
            )
        successful: list[Response] = []
        if ready:
            results = self.backend.send_messages(name, [m for _, m in ready])
            for (entry_id, _), result in zip(ready, results, strict=True):
                if isinstance(result, SQSError):
                    failed.append(_failure(entry_id, result))
                else:
                    successful.append({"Id": entry_id, **_send_response(result)})
        return {"Successful": successful, "Failed": failed}

    # -- receive -----------------------------------------------------------------------------
    def receive_message(self, params: Params) -> Response:
        return self.receive_prepared(self.prepare_receive(params))

    def prepare_receive(self, params: Params) -> PreparedReceive:
        """ReceiveMessage's request, validated, with the queue's default wait applied:
        what a caller that does its own waiting (the HTTP endpoint) claims with."""
        name = self.name_from_url(params)
        max_messages = params.get("MaxNumberOfMessages")
        wait = params.get("WaitTimeSeconds")
        visibility = params.get("VisibilityTimeout")
        attempt_id = params.get("ReceiveRequestAttemptId")
        count = (
            1
            if max_messages is None
            else check_int(
                max_messages,
                "MaxNumberOfMessages",
                1,
                limits.MAX_RECEIVE_MESSAGES,
                "Must be between 1 and 10, if provided.",
            )
        )
        wait_seconds = (
            None if wait is None else check_int(wait, "WaitTimeSeconds", 0, limits.MAX_WAIT_SECONDS)
        )
        timeout = (
            None
            if visibility is None
            else check_int(visibility, "VisibilityTimeout", 0, limits.MAX_VISIBILITY_TIMEOUT)
        )
        if attempt_id is not None:
            check_fifo_id(attempt_id, "ReceiveRequestAttemptId")
        system_names = set(check_names(params.get("AttributeNames"), _LEGACY_NAMES))
        system_names |= set(check_names(params.get("MessageSystemAttributeNames"), _SYSTEM_NAMES))
        user_names = _user_attribute_names(params.get("MessageAttributeNames"))
        queue = self.cached_queue(name)
        if wait_seconds is None:
            wait_seconds = int(queue.attributes["ReceiveMessageWaitTimeSeconds"])
        request = ReceiveRequest(count, wait_seconds, timeout, attempt_id)
        return PreparedReceive(name, request, frozenset(system_names), user_names)

    def receive_prepared(self, prepared: PreparedReceive, *, wait: bool = True) -> Response:
        """Claim for a prepared ReceiveMessage; ``wait=False``: one try, no long poll."""
        request = prepared.request
        if not wait and request.wait_seconds:
            request = dataclasses.replace(request, wait_seconds=0)
        received = self.backend.receive_messages(prepared.queue, request)
        if not received:
            return {}
        return {
            "Messages": [
                _message_response(m, prepared.system_names, prepared.user_names) for m in received
            ]
        }

    # -- delete and visibility -----------------------------------------------------------------
    def delete_message(self, params: Params) -> Response:
        name = self.name_from_url(params)
        handle = require(params, "ReceiptHandle")
        error = self.backend.delete_messages(name, [str(handle)])[0]
        if error is not None:
            raise error
        return {}

    def delete_message_batch(self, params: Params) -> Response:
        name = self.name_from_url(params)
        entries = check_batch_ids(require(params, "Entries"), "DeleteMessageBatchRequestEntry")
        return self._batch(
            entries,
            lambda items: self.backend.delete_messages(name, [handle for handle, _ in items]),
            with_timeout=False,
        )

    def change_message_visibility(self, params: Params) -> Response:
        name = self.name_from_url(params)
        handle = str(require(params, "ReceiptHandle"))
        timeout = check_int(
            require(params, "VisibilityTimeout"),
            "VisibilityTimeout",
            0,
            limits.MAX_VISIBILITY_TIMEOUT,
            "Must be between 0 and 43200, if provided.",
        )
        error = self.backend.change_visibility(name, [(handle, timeout)])[0]
        if error is not None:
            raise error
        return {}

    def change_message_visibility_batch(self, params: Params) -> Response:
        name = self.name_from_url(params)
        entries = check_batch_ids(
            require(params, "Entries"), "ChangeMessageVisibilityBatchRequestEntry"
        )
        return self._batch(
            entries, lambda items: self.backend.change_visibility(name, items), with_timeout=True
        )

    def _batch(
        self,
        entries: Sequence[Params],
        run: Callable[[list[tuple[str, int]]], list[SQSError | None]],
        *,
        with_timeout: bool,
    ) -> Response:
        failed: list[Response] = []
        ready: list[tuple[str, tuple[str, int]]] = []
        for entry in entries:
            try:
                handle = str(require(entry, "ReceiptHandle"))
                timeout = (
                    check_int(
                        entry.get("VisibilityTimeout", 0),
                        "VisibilityTimeout",
                        0,
                        limits.MAX_VISIBILITY_TIMEOUT,
                        "Must be between 0 and 43200, if provided.",
                    )
                    if with_timeout
                    else 0
                )
                ready.append((entry["Id"], (handle, timeout)))
            except SQSError as exc:
                failed.append(_failure(entry["Id"], exc))
        successful: list[Response] = []
        if ready:
            errors = run([item for _, item in ready])
            for (entry_id, _), error in zip(ready, errors, strict=True):
                if error is None:
                    successful.append({"Id": entry_id})
                else:
                    failed.append(_failure(entry_id, error))
        return {"Successful": successful, "Failed": failed}


def _check_fifo_entries(entries: Sequence[Params], queue: QueueRecord) -> None:
    """SQS refuses a whole FIFO batch, not one entry, when an entry lacks its group or
    deduplication id: sending the others would break the order of their groups."""
    content_based = queue.attributes.get("ContentBasedDeduplication") == "true"
    for entry in entries:
        if entry.get("MessageGroupId") is None:
            raise InvalidParameterValue("The request must contain the parameter MessageGroupId.")
        if entry.get("MessageDeduplicationId") is None and not content_based:
            raise InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly"
            )


def _failure(entry_id: str, error: SQSError) -> Response:
    return {
        "Id": entry_id,
        "SenderFault": error.sender_fault,
        "Code": error.code,
        "Message": error.message,
    }


def _send_response(result: SendResult) -> Response:
    response: Response = {"MD5OfMessageBody": result.md5_of_body, "MessageId": result.message_id}
    if result.md5_of_message_attributes:
        response["MD5OfMessageAttributes"] = result.md5_of_message_attributes
    if result.md5_of_system_attributes:
        response["MD5OfMessageSystemAttributes"] = result.md5_of_system_attributes
    if result.sequence_number:
        response["SequenceNumber"] = result.sequence_number
    return response


def _user_attribute_names(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise InvalidParameterValue("MessageAttributeNames must be a list.")
    return [str(name) for name in raw]


def _wants(name: str, patterns: list[str]) -> bool:
    """SQS's filter: ``All``, ``*`` or ``.*`` for every attribute, an exact name, or
    ``prefix.*`` for every name starting with ``prefix`` (``Hel.*`` matches ``Hello``)."""
    for pattern in patterns:
        if pattern in ("All", "*", ".*") or pattern == name:
            return True
        if pattern.endswith(".*") and name.startswith(pattern[:-2]):
            return True
    return False


def _message_response(
    message: ReceivedMessage, system_names: AbstractSet[str], user_names: list[str]
) -> Response:
    response: Response = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    if system_names:
        every = "All" in system_names
        chosen = {
            k: v
            for k, v in message.attributes.items()
            if (every and k != "SqsManagedSseEnabled") or k in system_names
        }
        if chosen:
            response["Attributes"] = chosen
    if user_names:
        chosen_user = {k: v for k, v in message.message_attributes.items() if _wants(k, user_names)}
        if chosen_user:
            response["MD5OfMessageAttributes"] = md5_of_attributes(chosen_user)
            response["MessageAttributes"] = {
                k: _attribute_response(v) for k, v in chosen_user.items()
            }
    return response


def _attribute_response(value: MessageAttributeValue) -> Response:
    if value.binary_value is not None:
        return {"BinaryValue": value.binary_value, "DataType": value.data_type}
    return {"StringValue": value.string_value, "DataType": value.data_type}
