"""Handlers the worker tests run (as ``tests.worker.handlers:NAME``) in real handler processes.

Each handler appends one JSON line per record it starts to the file named by
``TRAINMQ_TEST_LOG``, so tests can see what ran, where (pid) and in what order.
A record's body says what to do with it: ``{"n": 1, "do": "ok"}``; ``do`` is one of
ok, fail (report it in batchItemFailures), raise, sleep (``seconds``), exit
(``os._exit``), permanent (report it in permanentFailures), raise_permanent.
With ``"first": true`` the action only happens on the first receive.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from trainmq import PermanentFailure

LOG_ENV = "TRAINMQ_TEST_LOG"


def _log(entry: dict[str, Any]) -> None:
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def _instructions(record: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(record["body"])
    except ValueError:
        return {"do": "ok"}
    if not isinstance(body, dict):
        return {"do": "ok"}
    first_only = body.get("first", False)
    if first_only and record["attributes"]["ApproximateReceiveCount"] != "1":
        return {**body, "do": "ok"}
    return body


def scripted(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Do what each body says; report failures the Lambda way."""
    failures: list[dict[str, str]] = []
    permanent: list[dict[str, str]] = []
    for record in event["Records"]:
        body = _instructions(record)
        _log(
            {
                "pid": os.getpid(),
                "id": record["messageId"],
                "n": body.get("n"),
                "group": record["attributes"].get("MessageGroupId"),
                "receives": int(record["attributes"]["ApproximateReceiveCount"]),
                "batch": len(event["Records"]),
                "at": time.time(),
            }
        )
        action = body.get("do", "ok")
        if action == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
        elif action == "raise":
            raise RuntimeError(f"handler failed on {body.get('n')}")
        elif action == "sleep":
            time.sleep(float(body["seconds"]))
        elif action == "exit":
            os._exit(3)
        elif action == "permanent":
            permanent.append({"itemIdentifier": record["messageId"], "reason": body["reason"]})
        elif action == "raise_permanent":
            raise PermanentFailure(body["reason"])
    return {"batchItemFailures": failures, "permanentFailures": permanent}


def probe(event: dict[str, Any], context: Any) -> None:
    """Record the whole event and the context's fields."""
    _log(
        {
            "pid": os.getpid(),
            "event": event,
            "context": {
                "aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
            "env": {k: v for k, v in os.environ.items() if k.startswith("TRAINMQ_")},
        }
    )


def malformed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer with an itemIdentifier that names no message of the batch."""
    _log({"pid": os.getpid(), "ids": [r["messageId"] for r in event["Records"]]})
    return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}


def powertools(event: dict[str, Any], context: Any) -> Any:
    """A handler written for AWS Lambda with aws-lambda-powertools, unchanged."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> None:
        payload = record.json_body
        _log({"pid": os.getpid(), "id": record.message_id, "n": payload["n"],
              "receives": int(record.attributes.approximate_receive_count)})
        if payload.get("do") == "fail" and record.attributes.approximate_receive_count == "1":
            raise ValueError(f"cannot process {payload['n']}")

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

