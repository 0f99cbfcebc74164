"""IAM and bucket policy documents, as plain functions of the ARNs they name.

Least privilege means every statement names its actions and its resources
one by one: no ``*`` action, no ``*`` resource, nothing the code does not call.
The intake function's grants, statement by statement, and why each is there:

* ``sqs:ReceiveMessage``, ``sqs:DeleteMessage``, ``sqs:GetQueueAttributes`` on
  the intake queue: what Lambda's SQS event-source mapping needs to poll, and to
  delete what the handler did not report failed (the handler itself never
  changes visibility).
* ``sqs:SendMessage`` on the prepare, train and evaluate queues and the intake
  dead-letter queue: where the handler routes and dead-letters.
* ``s3:GetObject``, ``s3:PutObject`` on ``<prefix>runs/*`` and
  ``<prefix>intake/*``: the run registry's create-only claims and reads, and
  the forwarded markers.  ``s3:ListBucket`` on the bucket: without it S3
  answers a missing object with 403 instead of 404, and "is this run new?"
  could not be told from "access denied".
* ``logs:CreateLogStream``, ``logs:PutLogEvents`` on its own log group (the
  stack creates the group, so no ``logs:CreateLogGroup``).
* ``kms:Decrypt``, ``kms:GenerateDataKey`` on the customer key, only when
  ``trainmq:kmsKeyArn`` is set (AWS-managed keys need no grant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "STORE_AREAS",
    "WORKER_QUEUE_ACTIONS",
    "assume_role_policy",
    "intake_policy",
    "tls_only_bucket_policy",
    "worker_policy",
]

Document = dict[str, Any]

#: The parts of the store the intake stage writes: the run registry and its markers.
STORE_AREAS = ("runs/", "intake/")
#: What the event-source mapping calls on its source queue.
MAPPING_QUEUE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
#: What ``trainmq worker`` calls on the queue it consumes (heartbeats change visibility).
WORKER_QUEUE_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
#: What the S3 store calls for the worker stages (reads, writes, lists, deletes, multipart).
WORKER_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
)
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str]) -> Document:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": sorted(resources),
    }


def assume_role_policy() -> Document:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def intake_policy(
    *,
    source_queue_arn: str,
    target_queue_arns: Sequence[str],
    bucket_arn: str,
    store_prefix: str,
    log_group_arn: str,
    kms_key_arn: str | None,
) -> Document:
    """The intake function's grants (see the module docstring for each)."""
    statements = [
        _statement("ConsumeIntakeQueue", MAPPING_QUEUE_ACTIONS, [source_queue_arn]),
        _statement("RouteToStages", ["sqs:SendMessage"], target_queue_arns),
        _statement(
            "RunRegistry",
            ["s3:GetObject", "s3:PutObject"],
            [f"{bucket_arn}/{store_prefix}{area}*" for area in STORE_AREAS],
        ),
        _statement("TellMissingFromForbidden", ["s3:ListBucket"], [bucket_arn]),
        _statement(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{log_group_arn}:*"],
        ),
    ]
    if kms_key_arn is not None:
        statements.append(_statement("UseCustomerKey", KMS_ACTIONS, [kms_key_arn]))
    return {"Version": "2012-10-17", "Statement": statements}


def worker_policy(
    *,
    consumed_queue_arns: Sequence[str],
    target_queue_arns: Sequence[str],
    bucket_arn: str,
    store_prefix: str,
    kms_key_arn: str | None,
) -> Document:
    """What a ``trainmq worker`` host running the prepare, train and evaluate stages needs."""
    statements = [
        _statement("ConsumeStageQueues", WORKER_QUEUE_ACTIONS, consumed_queue_arns),
        _statement("SendToStagesAndDeadLetter", ["sqs:SendMessage"], target_queue_arns),
        _statement("Store", WORKER_OBJECT_ACTIONS, [f"{bucket_arn}/{store_prefix}*"]),
        _statement("ListStore", ["s3:ListBucket"], [bucket_arn]),
    ]
    if kms_key_arn is not None:
        statements.append(_statement("UseCustomerKey", KMS_ACTIONS, [kms_key_arn]))
    return {"Version": "2012-10-17", "Statement": statements}


def tls_only_bucket_policy(bucket_arn: str) -> Document:
    """Refuse every request to the bucket that does not arrive over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
