"""Lambda's SQS event and context, so handlers written for Lambda run unchanged.

``sqs_record`` turns a ReceiveMessage message into the record Lambda builds
(camelCase keys, string system attributes, base64 binary attribute values);
``LambdaContext`` is the context object a Python Lambda handler receives.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

__all__ = ["EVENT_SYSTEM_ATTRIBUTES", "LambdaContext", "sqs_record"]

#: The system attributes Lambda puts in a record (FIFO ones only on FIFO queues).
EVENT_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One ``Records[]`` entry, exactly as Lambda's SQS event-source mapping shapes it."""
    system = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: str(system[k]) for k in EVENT_SYSTEM_ATTRIBUTES if k in system},
        "messageAttributes": {
            name: _attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = queue_arn.split(":")[3]
    return record


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        shaped["binaryValue"] = base64.b64encode(
            raw if isinstance(raw, bytes) else str(raw).encode()
        ).decode("ascii")
    shaped["stringListValues"] = []
    shaped["binaryListValues"] = []
    shaped["dataType"] = value["DataType"]
    return shaped


class LambdaContext:
    """The context object of a Python Lambda invocation.

    ``get_remaining_time_in_millis()`` counts down from the function timeout,
    starting when the invocation started, as in Lambda; at zero the worker
    kills the handler's process.
    """

    function_version = "$LATEST"

    def __init__(
        self,
        *,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        timeout_ms: int,
        log_stream_name: str,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return (
            f"LambdaContext(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r})"
        )
