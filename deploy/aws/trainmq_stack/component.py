"""``TrainingPipeline``: the whole AWS side of trainmq as one Pulumi component.

::

    producers ─▶ intake queue ─(event-source mapping)─▶ intake Lambda ─┬─▶ prepare queue ─▶ hosts
                     │                                     │           ├─▶ train queue   ─▶ hosts
                     └─▶ intake DLQ ◀── invalid messages ──┘           └─▶ evaluate queue ─▶ hosts
                                           run registry ─▶ dataset bucket ◀─ hosts

Every queue has its dead-letter queue; every dead-letter queue and every
queue's oldest message has an alarm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from . import policies
from .settings import PipelineSettings

__all__ = ["HANDLER", "STAGES", "WORKER_STAGES", "StageQueues", "TrainingPipeline"]

#: The Lambda entry point inside the deployment zip.
HANDLER = "trainmq.training.intake.handler"
#: Every stage has a queue and a dead-letter queue; ``intake`` is consumed by Lambda.
STAGES = ("intake", "prepare", "train", "evaluate")
#: The stages ``trainmq worker`` hosts run.
WORKER_STAGES = ("prepare", "train", "evaluate")


@dataclass(frozen=True)
class StageQueues:
    queue: aws.sqs.Queue
    dead_letter: aws.sqs.Queue


class TrainingPipeline(pulumi.ComponentResource):
    """The dataset bucket, the stage queues, the intake Lambda and its alarms."""

    def __init__(
        self,
        name: str,
        settings: PipelineSettings,
        code: pulumi.Archive,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("trainmq:aws:TrainingPipeline", name, None, opts)
        self.settings = settings
        self._child = pulumi.ResourceOptions(parent=self)
        self.bucket = self._dataset_bucket(name)
        prefix = settings.store_prefix.rstrip("/")
        self.store_address: pulumi.Output[str] = self.bucket.bucket.apply(
            lambda bucket: f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        )
        self.stages = {stage: self._stage_queues(stage) for stage in STAGES}
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-intake",
            name=f"/aws/lambda/{self._named('intake')}",
            retention_in_days=settings.log_retention_days,
            opts=self._child,
        )
        self.role, self.role_policy = self._intake_role(name)
        self.function = self._intake_function(name, code)
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-intake",
            event_source_arn=self.stages["intake"].queue.arn,
            function_name=self.function.arn,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=settings.batching_window,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={"maximum_concurrency": settings.maximum_concurrency},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        self.worker_policy = self._worker_policy(name)
        self.alarm_topic_arn = self._alarm_topic(name)
        self.alarms = self._alarms(name)
        self.register_outputs(self.outputs())

    # -- naming ----------------------------------------------------------------------------
    def _named(self, *parts: str) -> str:
        return "-".join([self.settings.name, *parts])

    # -- the bucket ------------------------------------------------------------------------
    def _dataset_bucket(self, name: str) -> aws.s3.Bucket:
        s = self.settings
        bucket = aws.s3.Bucket(f"{name}-datasets", bucket=s.bucket_name, opts=self._child)
        after = pulumi.ResourceOptions(parent=self, depends_on=[bucket])
        aws.s3.BucketOwnershipControls(
            f"{name}-datasets",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=after,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-datasets",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=after,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-datasets",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=after,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-datasets",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": s.kms_key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=after,
        )
        aws.s3.BucketPolicy(
            f"{name}-datasets",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(policies.tls_only_bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-datasets",
            bucket=bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": s.abort_multipart_days
                    },
                },
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": s.noncurrent_version_days},
                },
                {
                    "id": "expire-claim-check-payloads",
                    "status": "Enabled",
                    "filter": {"prefix": f"{s.store_prefix}claimcheck/"},
                    "expiration": {"days": s.claim_check_days},
                },
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        return bucket

    # -- queues ----------------------------------------------------------------------------
    def _encryption(self) -> dict[str, Any]:
        if self.settings.kms_key_arn is None:
            return {"sqs_managed_sse_enabled": True}
        return {
            "kms_master_key_id": self.settings.kms_key_arn,
            "kms_data_key_reuse_period_seconds": 300,
        }

    def _stage_queues(self, stage: str) -> StageQueues:
        s = self.settings
        dead_letter = aws.sqs.Queue(
            self._named(stage, "dlq"),
            name=self._named(stage, "dlq"),
            message_retention_seconds=s.dlq_retention,
            opts=self._child,
            **self._encryption(),
        )
        visibility = s.visibility_timeout if stage == "intake" else s.worker_visibility_timeout
        queue = aws.sqs.Queue(
            self._named(stage),
            name=self._named(stage),
            visibility_timeout_seconds=visibility,
            message_retention_seconds=s.message_retention,
            redrive_policy=dead_letter.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": s.max_receive_count}
                )
            ),
            opts=self._child,
            **self._encryption(),
        )
        aws.sqs.RedriveAllowPolicy(
            self._named(stage, "dlq"),
            queue_url=dead_letter.url,
            redrive_allow_policy=queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=self._child,
        )
        return StageQueues(queue, dead_letter)

    # -- the intake function ---------------------------------------------------------------
    def _intake_role(self, name: str) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        s = self.settings
        role = aws.iam.Role(
            f"{name}-intake",
            name=self._named("intake"),
            assume_role_policy=json.dumps(policies.assume_role_policy()),
            opts=self._child,
        )
        stages = self.stages
        document = pulumi.Output.all(
            stages["intake"].queue.arn,
            [stages[stage].queue.arn for stage in WORKER_STAGES],
            stages["intake"].dead_letter.arn,
            self.bucket.arn,
            self.log_group.arn,
        ).apply(
            lambda values: json.dumps(
                policies.intake_policy(
                    source_queue_arn=values[0],
                    target_queue_arns=[*values[1], values[2]],
                    bucket_arn=values[3],
                    store_prefix=s.store_prefix,
                    log_group_arn=values[4],
                    kms_key_arn=s.kms_key_arn,
                )
            )
        )
        policy = aws.iam.RolePolicy(
            f"{name}-intake", role=role.id, policy=document, opts=self._child
        )
        return role, policy

    def _intake_function(self, name: str, code: pulumi.Archive) -> aws.lambda_.Function:
        s = self.settings
        stages = self.stages
        return aws.lambda_.Function(
            f"{name}-intake",
            name=self._named("intake"),
            runtime=s.runtime,
            architectures=[s.architecture],
            handler=HANDLER,
            code=code,
            role=self.role.arn,
            timeout=s.function_timeout,
            memory_size=s.memory_size,
            logging_config={"log_format": "Text", "log_group": self.log_group.name},
            environment={
                "variables": {
                    "TRAINMQ_STORE": self.store_address,
                    "TRAINMQ_PREPARE_QUEUE_URL": stages["prepare"].queue.url,
                    "TRAINMQ_TRAIN_QUEUE_URL": stages["train"].queue.url,
                    "TRAINMQ_EVALUATE_QUEUE_URL": stages["evaluate"].queue.url,
                    "TRAINMQ_DEAD_LETTER_QUEUE_URL": stages["intake"].dead_letter.url,
                }
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.role_policy]),
        )

    def _worker_policy(self, name: str) -> aws.iam.Policy:
        s = self.settings
        stages = self.stages
        document = pulumi.Output.all(
            [stages[stage].queue.arn for stage in WORKER_STAGES],
            [stages[stage].dead_letter.arn for stage in WORKER_STAGES],
            self.bucket.arn,
        ).apply(
            lambda values: json.dumps(
                policies.worker_policy(
                    consumed_queue_arns=values[0],
                    target_queue_arns=[*values[0], *values[1]],
                    bucket_arn=values[2],
                    store_prefix=s.store_prefix,
                    kms_key_arn=s.kms_key_arn,
                )
            )
        )
        return aws.iam.Policy(
            f"{name}-worker",
            name=self._named("worker"),
            description="What a trainmq worker host needs for the prepare, train and evaluate "
            "stages; attach it to the hosts' role",
            policy=document,
            opts=self._child,
        )

    # -- alarms ----------------------------------------------------------------------------
    def _alarm_topic(self, name: str) -> pulumi.Output[str] | None:
        s = self.settings
        if s.alarm_topic_arn is not None:
            return pulumi.Output.from_input(s.alarm_topic_arn)
        if s.alarm_email is None:
            return None
        topic = aws.sns.Topic(f"{name}-alarms", name=self._named("alarms"), opts=self._child)
        aws.sns.TopicSubscription(
            f"{name}-alarms",
            topic=topic.arn,
            protocol="email",
            endpoint=s.alarm_email,
            opts=self._child,
        )
        return topic.arn

    def _alarms(self, name: str) -> list[aws.cloudwatch.MetricAlarm]:
        s = self.settings
        actions = [self.alarm_topic_arn] if self.alarm_topic_arn is not None else []
        common: dict[str, Any] = {
            "alarm_actions": actions,
            "ok_actions": actions,
            "treat_missing_data": "notBreaching",
            "evaluation_periods": 1,
            "opts": self._child,
        }
        alarms = []
        for stage, queues in self.stages.items():
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    self._named(stage, "dlq-not-empty"),
                    name=self._named(stage, "dlq-not-empty"),
                    alarm_description=f"Messages of the {stage} stage were dead-lettered",
                    namespace="AWS/SQS",
                    metric_name="ApproximateNumberOfMessagesVisible",
                    dimensions={"QueueName": queues.dead_letter.name},
                    statistic="Maximum",
                    period=60,
                    comparison_operator="GreaterThanThreshold",
                    threshold=0,
                    **common,
                )
            )
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    self._named(stage, "oldest-message"),
                    name=self._named(stage, "oldest-message"),
                    alarm_description=f"The {stage} queue's oldest message waits longer than "
                    f"{s.oldest_message_alarm} s",
                    namespace="AWS/SQS",
                    metric_name="ApproximateAgeOfOldestMessage",
                    dimensions={"QueueName": queues.queue.name},
                    statistic="Maximum",
                    period=60,
                    comparison_operator="GreaterThanThreshold",
                    threshold=s.oldest_message_alarm,
                    **common,
                )
            )
        alarms.append(
            aws.cloudwatch.MetricAlarm(
                self._named("intake", "errors"),
                name=self._named("intake", "errors"),
                alarm_description="The intake function failed (not a record: the invocation)",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": self.function.name},
                statistic="Sum",
                period=300,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                **common,
            )
        )
        return alarms

    # -- outputs ---------------------------------------------------------------------------
    def outputs(self) -> dict[str, Any]:
        """What a user needs to point producers, workers and the CLI at the stack."""
        result: dict[str, Any] = {
            "bucketName": self.bucket.bucket,
            "bucketArn": self.bucket.arn,
            "storeAddress": self.store_address,
            "intakeFunctionName": self.function.name,
            "intakeFunctionArn": self.function.arn,
            "intakeLogGroup": self.log_group.name,
            "workerPolicyArn": self.worker_policy.arn,
        }
        for stage, queues in self.stages.items():
            result[f"{stage}QueueUrl"] = queues.queue.url
            result[f"{stage}QueueArn"] = queues.queue.arn
            result[f"{stage}DeadLetterQueueUrl"] = queues.dead_letter.url
            result[f"{stage}DeadLetterQueueArn"] = queues.dead_letter.arn
        if self.alarm_topic_arn is not None:
            result["alarmTopicArn"] = self.alarm_topic_arn
        return result
