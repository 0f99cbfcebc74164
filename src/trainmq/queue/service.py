"""``SQSService``: SQS's 23 actions on AWS-shaped requests, over any ``QueueBackend``.

Requests and responses are the dicts of the SQS API (boto3's shapes: the JSON
protocol's member names).  Validation, defaults and MD5s happen here, once,
for every backend; backends see only validated plain data.  The in-process
client (``trainmq.client``) and the HTTP endpoint both call ``dispatch``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import (
    InvalidAction,
    InvalidAttributeValue,
    InvalidParameterValue,
    MissingParameter,
    QueueDoesNotExist,
    ResourceNotFoundException,
)
from . import attributes as attrs
from . import limits
from .backend import QueueBackend
from .messaging import MessagingActions
from .model import QueueRecord
from .validate import (
    check_int,
    check_label,
    check_names,
    check_queue_name,
    check_tag_keys,
    check_tags,
    require,
)

__all__ = ["ACTIONS", "SQSService"]

Params = Mapping[str, Any]
Response = dict[str, Any]

QUEUE_CACHE_SECONDS = 1.0
_URL_CACHE_SIZE = 1024

#: The 23 SQS actions.
ACTIONS = (
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
)


#: The actions AddPermission may grant to other accounts; the rest (creating, deleting,
#: configuring, tagging a queue, granting) only the queue's owner may call.  Granting a
#: message action also grants its batch form.
GRANTABLE_ACTIONS = frozenset(
    {
        "*",
        "ChangeMessageVisibility",
        "DeleteMessage",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "PurgeQueue",
        "ReceiveMessage",
        "SendMessage",
    }
)


class SQSService(MessagingActions):
    """Every SQS action, validated, over one backend."""

    def __init__(self, backend: QueueBackend, *, endpoint: str = "http://localhost:9324") -> None:
        self.backend = backend
        self.endpoint = endpoint.rstrip("/")
        self._queues: dict[str, tuple[float, QueueRecord]] = {}
        self._names: dict[str, str] = {}  # queue URL -> name, for URLs that passed the check
        self._handlers: dict[str, str] = {action: _snake(action) for action in ACTIONS}

    # -- addressing ----------------------------------------------------------------------------
    def dispatch(self, action: str, params: Params) -> Response:
        """Run one SQS action; raises ``SQSError`` with AWS's code on failure."""
        method = self._handlers.get(action)
        if method is None:
            raise InvalidAction(f"The action {action} is not valid for this endpoint.")
        if type(params) is not dict and not isinstance(params, Mapping):
            raise InvalidParameterValue("The request body must be a JSON object.")
        handler: Callable[[Params], Response] = getattr(self, method)
        # AWS leaves a list with no members out of a response (no "Failed": []).
        return {key: value for key, value in handler(params).items() if value != []}

    def with_endpoint(self, endpoint: str) -> SQSService:
        """The same service answering with queue URLs under ``endpoint`` (per request)."""
        view = copy.copy(self)
        view.endpoint = endpoint.rstrip("/")
        return view

    def url(self, name: str) -> str:
        return f"{self.endpoint}/{self.backend.account_id}/{name}"

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.backend.region}:{self.backend.account_id}:{name}"

    def name_from_url(self, params: Params) -> str:
        url = require(params, "QueueUrl")
        name = self._names.get(url) if isinstance(url, str) else None
        if name is not None:
            return name  # every message action names its queue: parse each URL once
        if not isinstance(url, str) or not url:
            raise QueueDoesNotExist()
        parts = url.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2].isdigit() and parts[-2] != self.backend.account_id:
            raise QueueDoesNotExist()
        name = parts[-1]
        if len(self._names) >= _URL_CACHE_SIZE:
            self._names.clear()
        self._names[url] = name
        return name

    def name_from_arn(self, arn: Any, parameter: str) -> str:
        if not isinstance(arn, str) or arn.count(":") != 5 or not arn.startswith("arn:"):
            raise InvalidParameterValue(
                f"Value {arn} for parameter {parameter} is invalid. Reason: invalid ARN."
            )
        _, _, service, _region, account, name = arn.split(":")
        if service != "sqs" or account != self.backend.account_id:
            raise ResourceNotFoundException(
                f"The resource that you specified for the {parameter} parameter doesn't exist."
            )
        return name

    def cached_queue(self, name: str) -> QueueRecord:
        """The queue's record for validating messages, at most ``QUEUE_CACHE_SECONDS`` old.

        Changes made through this service are seen at once; changes made by other
        processes within a second (SQS itself takes up to 60 s to propagate them).
        The backend still checks, inside its own transaction, that the queue exists.
        """
        now = time.monotonic()
        cached = self._queues.get(name)
        if cached is not None and now - cached[0] < QUEUE_CACHE_SECONDS:
            return cached[1]
        record = self.backend.get_queue(name)
        self._queues[name] = (now, record)
        return record

    def _forget(self, name: str) -> None:
        self._queues.pop(name, None)

    # -- queues --------------------------------------------------------------------------------
    def create_queue(self, params: Params) -> Response:
        given = params.get("Attributes") or {}
        if not isinstance(given, Mapping):
            raise InvalidParameterValue("Attributes must be a map.")
        fifo = str(given.get("FifoQueue", "false")).lower() == "true"
        name = check_queue_name(require(params, "QueueName"), fifo=fifo)
        if not fifo and name.endswith(".fifo"):
            check_queue_name(name[:-5] + "!", fifo=False)  # raises AWS's naming error
        normalized = attrs.normalize(given, fifo=fifo)
        tags = self._tags(params.get("tags") or {})
        self._check_redrive(name, normalized, fifo)
        self._forget(name)
        self.backend.create_queue(name, normalized, tags)
        return {"QueueUrl": self.url(name)}

    def delete_queue(self, params: Params) -> Response:
        name = self.name_from_url(params)
        self._forget(name)
        self.backend.delete_queue(name)
        return {}

    def get_queue_url(self, params: Params) -> Response:
        name = require(params, "QueueName")
        owner = params.get("QueueOwnerAWSAccountId")
        if owner is not None and owner != self.backend.account_id:
            raise QueueDoesNotExist()
        if not isinstance(name, str):
            raise QueueDoesNotExist()
        self.backend.get_queue(name)
        return {"QueueUrl": self.url(name)}

    def list_queues(
        self, params: Params, *, visible: Callable[[str], bool] | None = None
    ) -> Response:
        """One page of queue URLs; ``visible`` (the caller's grants) filters the names
        before paging, so that neither a page nor its NextToken reveals hidden ones."""
        prefix = params.get("QueueNamePrefix")
        names = self.backend.list_queues(prefix if isinstance(prefix, str) else None)
        if visible is not None:
            names = [name for name in names if visible(name)]
        return self._page(names, params, "QueueUrls")

    def _page(self, names: list[str], params: Params, key: str) -> Response:
        max_results = params.get("MaxResults")
        token = params.get("NextToken")
        start = 0
        if token:
            start = _decode_token(token)
        if max_results is None:
            page = names[start : start + limits.MAX_LIST_RESULTS]
            result: Response = {key: [self.url(n) for n in page]} if page else {}
            return result
        count = check_int(
            max_results,
            "MaxResults",
            1,
            limits.MAX_LIST_RESULTS,
            "MaxResults must be an integer between 1 and 1000.",
        )
        page = names[start : start + count]
        result = {key: [self.url(n) for n in page]} if page else {}
        if start + count < len(names):
            result["NextToken"] = _encode_token(start + count)
        return result

    def get_queue_attributes(self, params: Params) -> Response:
        name = self.name_from_url(params)
        wanted = check_names(params.get("AttributeNames"), attrs.READABLE)
        record = self.backend.get_queue(name)
        if not wanted:
            return {}
        every = "All" in wanted
        values = dict(record.attributes)
        values["QueueArn"] = self.arn(name)
        values["CreatedTimestamp"] = str(record.created_at // 1000)
        values["LastModifiedTimestamp"] = str(record.modified_at // 1000)
        if every or any(n.startswith("ApproximateNumber") for n in wanted):
            values |= {k: str(v) for k, v in self.backend.queue_counts(name).items()}
        chosen = values if every else {k: values[k] for k in wanted if k in values}
        return {"Attributes": chosen} if chosen else {}

    def set_queue_attributes(self, params: Params) -> Response:
        name = self.name_from_url(params)
        given = require(params, "Attributes")
        if not isinstance(given, Mapping):
            raise InvalidParameterValue("Attributes must be a map.")
        record = self.backend.get_queue(name)
        fifo = record.attributes.get("FifoQueue") == "true"
        if fifo and "FifoQueue" in given:
            if str(given["FifoQueue"]).lower() != "true":
                raise InvalidAttributeValue(
                    "Invalid value for the parameter FifoQueue. Reason: Modifying queue type "
                    "is not supported."
                )
            given = {k: v for k, v in given.items() if k != "FifoQueue"}  # a no-op, as in SQS
        normalized = attrs.normalize(given, fifo=fifo)
        self._check_redrive(name, normalized, fifo)
        self._forget(name)
        self.backend.set_queue_attributes(name, normalized)
        return {}

    def _check_redrive(self, name: str, normalized: dict[str, str], fifo: bool) -> None:
        text = normalized.get("RedrivePolicy")
        if not text:
            return
        policy = attrs.parse_redrive_policy(text)
        target = policy.dead_letter_target_arn.rsplit(":", 1)[1]
        try:
            dead_letter = self.backend.get_queue(target)
        except QueueDoesNotExist:
            raise InvalidParameterValue(
                f"Value {text} for parameter RedrivePolicy is invalid. Reason: Dead letter "
                "target does not exist."
            ) from None
        if (dead_letter.attributes.get("FifoQueue") == "true") != fifo:
            raise InvalidParameterValue(
                f"Value {text} for parameter RedrivePolicy is invalid. Reason: Dead-letter "
                "queue must be same type of queue as the source."
            )
        if not attrs.redrive_allowed(
            dead_letter.attributes.get("RedriveAllowPolicy"), self.arn(name)
        ):
            raise InvalidParameterValue(
                f"Value {text} for parameter RedrivePolicy is invalid. Reason: Queue "
                f"{self.arn(target)} does not allow this queue to use it as a dead-letter queue."
            )

    def purge_queue(self, params: Params) -> Response:
        self.backend.purge_queue(self.name_from_url(params))
        return {}

    def list_dead_letter_source_queues(self, params: Params) -> Response:
        names = self.backend.list_dead_letter_source_queues(self.name_from_url(params))
        result = self._page(names, params, "queueUrls")
        result.setdefault("queueUrls", [])
        return result

    # -- tags and permissions --------------------------------------------------------------------
    def _tags(self, tags: Any) -> dict[str, str]:
        return check_tags(tags)

    def tag_queue(self, params: Params) -> Response:
        name = self.name_from_url(params)
        tags = self._tags(require(params, "Tags"))
        if not tags:
            raise InvalidParameterValue("The request must contain a non-empty Tags map.")
        current = self.backend.get_queue(name).tags
        if len(current | tags) > limits.MAX_TAGS:
            raise InvalidParameterValue(f"Too many tags added for queue {name}.")
        self.backend.tag_queue(name, tags)
        return {}

    def untag_queue(self, params: Params) -> Response:
        name = self.name_from_url(params)
        keys = check_tag_keys(require(params, "TagKeys"))
        self.backend.untag_queue(name, keys)
        return {}

    def list_queue_tags(self, params: Params) -> Response:
        tags = self.backend.get_queue(self.name_from_url(params)).tags
        return {"Tags": tags} if tags else {}

    def add_permission(self, params: Params) -> Response:
        name = self.name_from_url(params)
        label = require(params, "Label")
        accounts = require(params, "AWSAccountIds")
        actions = require(params, "Actions")
        check_label(label)
        if not isinstance(accounts, list | tuple) or not accounts:
            raise MissingParameter("The request must contain the parameter AWSAccountIds.")
        if not isinstance(actions, list | tuple) or not actions:
            raise MissingParameter("The request must contain the parameter Actions.")
        for action in actions:
            if not isinstance(action, str) or action not in GRANTABLE_ACTIONS:
                raise InvalidParameterValue(
                    f"Value SQS:{action} for parameter ActionName is invalid. Reason: Only the "
                    "queue owner is allowed to invoke this action."
                )
        self.backend.add_permission(name, label, list(accounts), list(actions))
        return {}

    def remove_permission(self, params: Params) -> Response:
        name = self.name_from_url(params)
        label = check_label(require(params, "Label"))
        self.backend.remove_permission(name, label)
        return {}

    # -- message-move tasks ----------------------------------------------------------------------
    def start_message_move_task(self, params: Params) -> Response:
        source = self.name_from_arn(require(params, "SourceArn"), "SourceArn")
        destination_arn = params.get("DestinationArn")
        destination = (
            None
            if destination_arn is None
            else self.name_from_arn(destination_arn, "DestinationArn")
        )
        rate = params.get("MaxNumberOfMessagesPerSecond")
        max_per_second = (
            None
            if rate is None
            else check_int(
                rate,
                "MaxNumberOfMessagesPerSecond",
                1,
                500,
                "MaxNumberOfMessagesPerSecond must be between 1 and 500.",
            )
        )
        try:
            self.backend.get_queue(source)
        except QueueDoesNotExist:
            raise ResourceNotFoundException(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            ) from None
        task_id = self.backend.start_move_task(source, destination, max_per_second)
        return {"TaskHandle": _encode_task(task_id, self.arn(source))}

    def cancel_message_move_task(self, params: Params) -> Response:
        task_id = _decode_task(require(params, "TaskHandle"))
        return {"ApproximateNumberOfMessagesMoved": self.backend.cancel_move_task(task_id)}

    def list_message_move_tasks(self, params: Params) -> Response:
        source = self.name_from_arn(require(params, "SourceArn"), "SourceArn")
        max_results = params.get("MaxResults")
        count = (
            1
            if max_results is None
            else check_int(max_results, "MaxResults", 1, 10, "MaxResults must be between 1 and 10.")
        )
        try:
            tasks = self.backend.list_move_tasks(source, count)
        except QueueDoesNotExist:
            raise ResourceNotFoundException(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            ) from None
        results = []
        for task in tasks:
            entry: Response = {
                "Status": task.status,
                "SourceArn": self.arn(task.source),
                "ApproximateNumberOfMessagesMoved": task.moved,
                "ApproximateNumberOfMessagesToMove": task.to_move,
                "StartedTimestamp": task.started_at,
            }
            if task.status == "RUNNING":
                entry["TaskHandle"] = _encode_task(task.task_handle, self.arn(task.source))
            if task.destination is not None:
                entry["DestinationArn"] = self.arn(task.destination)
            if task.max_per_second is not None:
                entry["MaxNumberOfMessagesPerSecond"] = task.max_per_second
            if task.failure_reason:
                entry["FailureReason"] = task.failure_reason
            results.append(entry)
        return {"Results": results}


def _snake(action: str) -> str:
    out = []
    for index, char in enumerate(action):
        if char.isupper() and index:
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: Any) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(str(token)))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise InvalidParameterValue("Invalid or expired next token.")


def _encode_task(task_id: str, source_arn: str) -> str:
    raw = json.dumps({"taskId": task_id, "sourceArn": source_arn}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_task(handle: Any) -> str:
    try:
        task_id = json.loads(base64.b64decode(str(handle), validate=True))["taskId"]
        if isinstance(task_id, str):
            return task_id
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise ResourceNotFoundException("Task does not exist.")
