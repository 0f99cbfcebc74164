"""What each SQS action reads or writes, for checking a key's grants.

A grant check that reads other parameters than the action acts on can be
fooled: a decoy ``QueueUrl`` of a granted queue beside the ``SourceArn`` or
``QueueName`` the action really uses.  So each action has one function here
that names *every* queue it touches, computed from the same resolved values
the service acts on (``SQSService.name_from_url`` / ``name_from_arn``, the
task a handle really names, the dead-letter target of a RedrivePolicy, the
origins a redrive writes back to), and every one of them is checked.

Members an action does not model (botocore's service model for SQS
2012-11-05) are refused instead of ignored, for both protocols, so that no
parameter can be read by one part of the server and ignored by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import AccessDenied, InvalidParameterValue, ResourceNotFoundException
from ..queue import attributes as attrs
from ..queue.backend import RedriveDestinations
from ..queue.service import SQSService
from ..queue.validate import require
from .auth import AccessKey

__all__ = [
    "MODELLED_MEMBERS",
    "QUERY_COMMON_PARAMETERS",
    "Access",
    "accesses",
    "authorize_request",
    "check_members",
    "redrive_destinations",
]

#: (the action a grant must allow, the queue it must allow it on; None: no one queue).
Access = tuple[str, str | None]

_BATCH_MESSAGE = frozenset(
    {
        "Id",
        "MessageBody",
        "DelaySeconds",
        "MessageAttributes",
        "MessageSystemAttributes",
        "MessageDeduplicationId",
        "MessageGroupId",
    }
)

#: Each action's input members, as botocore's model lists them (a test compares the two).
MODELLED_MEMBERS: Mapping[str, frozenset[str]] = {
    "AddPermission": frozenset({"QueueUrl", "Label", "AWSAccountIds", "Actions"}),
    "CancelMessageMoveTask": frozenset({"TaskHandle"}),
    "ChangeMessageVisibility": frozenset({"QueueUrl", "ReceiptHandle", "VisibilityTimeout"}),
    "ChangeMessageVisibilityBatch": frozenset({"QueueUrl", "Entries"}),
    "CreateQueue": frozenset({"QueueName", "Attributes", "tags"}),
    "DeleteMessage": frozenset({"QueueUrl", "ReceiptHandle"}),
    "DeleteMessageBatch": frozenset({"QueueUrl", "Entries"}),
    "DeleteQueue": frozenset({"QueueUrl"}),
    "GetQueueAttributes": frozenset({"QueueUrl", "AttributeNames"}),
    "GetQueueUrl": frozenset({"QueueName", "QueueOwnerAWSAccountId"}),
    "ListDeadLetterSourceQueues": frozenset({"QueueUrl", "NextToken", "MaxResults"}),
    "ListMessageMoveTasks": frozenset({"SourceArn", "MaxResults"}),
    "ListQueueTags": frozenset({"QueueUrl"}),
    "ListQueues": frozenset({"QueueNamePrefix", "NextToken", "MaxResults"}),
    "PurgeQueue": frozenset({"QueueUrl"}),
    "ReceiveMessage": frozenset(
        {
            "QueueUrl",
            "AttributeNames",
            "MessageSystemAttributeNames",
            "MessageAttributeNames",
            "MaxNumberOfMessages",
            "VisibilityTimeout",
            "WaitTimeSeconds",
            "ReceiveRequestAttemptId",
        }
    ),
    "RemovePermission": frozenset({"QueueUrl", "Label"}),
    "SendMessage": frozenset({"QueueUrl"}) | (_BATCH_MESSAGE - {"Id"}),
    "SendMessageBatch": frozenset({"QueueUrl", "Entries"}),
    "SetQueueAttributes": frozenset({"QueueUrl", "Attributes"}),
    "StartMessageMoveTask": frozenset(
        {"SourceArn", "DestinationArn", "MaxNumberOfMessagesPerSecond"}
    ),
    "TagQueue": frozenset({"QueueUrl", "Tags"}),
    "UntagQueue": frozenset({"QueueUrl", "TagKeys"}),
}

#: The members of one entry of each batch action.
ENTRY_MEMBERS: Mapping[str, frozenset[str]] = {
    "SendMessageBatch": _BATCH_MESSAGE,
    "DeleteMessageBatch": frozenset({"Id", "ReceiptHandle"}),
    "ChangeMessageVisibilityBatch": frozenset({"Id", "ReceiptHandle", "VisibilityTimeout"}),
}

#: Parameters every Query request may carry beside the action's members (the
#: ``X-Amz-*`` signing parameters and ``Version`` never reach the action's members).
QUERY_COMMON_PARAMETERS = frozenset(
    {
        "AWSAccessKeyId",
        "Expires",
        "SecurityToken",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "Timestamp",
    }
)


def check_members(action: str, params: dict[str, Any], *, query: bool) -> None:
    """Refuse any member ``action`` does not model (and, for Query, drop the common
    signing parameters, which are not the action's)."""
    modelled = MODELLED_MEMBERS.get(action, frozenset())
    for name in list(params):
        if name in modelled:
            continue
        if query and name in QUERY_COMMON_PARAMETERS:
            del params[name]
            continue
        raise InvalidParameterValue(f"The parameter {name} is not recognized by {action}.")
    entry_members = ENTRY_MEMBERS.get(action)
    entries = params.get("Entries")
    if entry_members is None or not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, Mapping):
            for name in entry:
                if name not in entry_members:
                    raise InvalidParameterValue(
                        f"The parameter {name} is not recognized in an entry of {action}."
                    )


def authorize_request(
    key: AccessKey, service: SQSService, action: str, params: Mapping[str, Any]
) -> None:
    """Raise AccessDenied unless ``key`` may do everything ``action`` would do."""
    for needed, queue in accesses(service, action, params):
        if not key.allows(needed, queue):
            arn = service.arn(queue or "*")
            raise AccessDenied(
                f"User: {key.name} is not authorized to perform: sqs:{needed} on resource: "
                f"{arn} because no identity-based policy allows the sqs:{needed} action"
            )


def accesses(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    """Every (action, queue) a request needs a grant for; resolution errors are the
    service's own (a missing member, an ARN of another account, an unknown task)."""
    resolve = _RESOLVERS.get(action, _by_queue_url)
    return resolve(service, action, params)


def redrive_destinations(service: SQSService, source: str) -> list[str]:
    """Every queue a move task from ``source`` without a destination may write into."""
    backend = service.backend
    if isinstance(backend, RedriveDestinations):
        return backend.redrive_destinations(source)
    return backend.list_dead_letter_source_queues(source)


# -- one resolver per kind of action ----------------------------------------------------------
Resolver = Callable[[SQSService, str, Mapping[str, Any]], list[Access]]


def _by_queue_url(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    return [(action, service.name_from_url(params))]


def _queue_name(params: Mapping[str, Any]) -> str:
    name = require(params, "QueueName")
    if not isinstance(name, str):
        raise InvalidParameterValue(f"Value {name} for parameter QueueName is invalid.")
    return name


def _by_queue_name(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    return [(action, _queue_name(params))]


def _dead_letter_target(params: Mapping[str, Any]) -> list[Access]:
    """Setting a RedrivePolicy lets the queue write into its target: SendMessage there."""
    given = params.get("Attributes")
    text = given.get("RedrivePolicy") if isinstance(given, Mapping) else None
    if not isinstance(text, str) or not text:
        return []
    arn = attrs.parse_redrive_policy(text).dead_letter_target_arn
    return [("SendMessage", arn.rsplit(":", 1)[1])]


def _create_queue(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    return [(action, _queue_name(params)), *_dead_letter_target(params)]


def _set_attributes(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    return [(action, service.name_from_url(params)), *_dead_letter_target(params)]


def _list_queues(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    return [(action, None)]  # the answer is filtered by the grants' queue patterns


def _by_source_arn(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    return [(action, service.name_from_arn(require(params, "SourceArn"), "SourceArn"))]


def _start_move(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    source = service.name_from_arn(require(params, "SourceArn"), "SourceArn")
    destination_arn = params.get("DestinationArn")
    if destination_arn is not None:
        destinations = [service.name_from_arn(destination_arn, "DestinationArn")]
    else:
        destinations = redrive_destinations(service, source)
    return [(action, source), *(("SendMessage", name) for name in destinations)]


def _cancel_move(service: SQSService, action: str, params: Mapping[str, Any]) -> list[Access]:
    """The task a handle names, looked up: a hand-built handle may pair one queue's ARN
    with another queue's task id, and the engine cancels by task id alone."""
    task_id, source_arn = _decode_handle(require(params, "TaskHandle"))
    source = service.name_from_arn(source_arn, "TaskHandle")
    running = service.backend.list_move_tasks(source, 10)
    task = next((t for t in running if t.task_handle == task_id), None)
    if task is None:
        raise ResourceNotFoundException("Task does not exist.")
    return [(action, task.source)]


def _decode_handle(handle: Any) -> tuple[str, str]:
    try:
        data = json.loads(base64.b64decode(str(handle), validate=True))
        task_id, source_arn = data["taskId"], data["sourceArn"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ResourceNotFoundException("Task does not exist.") from None
    if not isinstance(task_id, str) or not isinstance(source_arn, str):
        raise ResourceNotFoundException("Task does not exist.")
    return task_id, source_arn


_RESOLVERS: Mapping[str, Resolver] = {
    "CreateQueue": _create_queue,
    "GetQueueUrl": _by_queue_name,
    "ListQueues": _list_queues,
    "SetQueueAttributes": _set_attributes,
    "StartMessageMoveTask": _start_move,
    "CancelMessageMoveTask": _cancel_move,
    "ListMessageMoveTasks": _by_source_arn,
}
