"""The Pulumi component's resource graph, asserted property by property under mocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from trainmq_stack import HANDLER, STAGES, PipelineSettings, TrainingPipeline

from tests.deploy.conftest import DEPLOY_AWS
from tests.deploy.pulumi_harness import ACCOUNT, REGION, Deployment, run

QUEUE = "aws:sqs/queue:Queue"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f2c1a5e-1111-2222-3333-444455556666"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"


def deploy(**settings: Any) -> Deployment:
    def program() -> pulumi.Output[dict[str, Any]]:
        pipeline = TrainingPipeline(
            "trainmq", PipelineSettings(name="tm", **settings), pulumi.AssetArchive({})
        )
        return pulumi.Output.all(**pipeline.outputs())

    return run(program)


@pytest.fixture(scope="module")
def default() -> Iterator[Deployment]:
    yield deploy()


def sqs_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def queue(d: Deployment, name: str) -> dict[str, Any]:
    return d.one(QUEUE, name).inputs


def statements(document: str) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = json.loads(document)["Statement"]
    return parsed


def grants(document: str) -> set[tuple[str, str]]:
    """Every (action, resource) pair a policy allows."""
    pairs = set()
    for statement in statements(document):
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement and "NotAction" not in statement
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                pairs.add((action, resource))
    return pairs


# -- least privilege ------------------------------------------------------------------------
def test_intake_role_grants_exactly_what_the_function_and_mapping_use(default: Deployment) -> None:
    bucket = default.outputs["bucketArn"]
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/tm-intake:*"
    expected = {
        *{(a, sqs_arn("tm-intake")) for a in
          ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")},
        *{("sqs:SendMessage", sqs_arn(q)) for q in
          ("tm-prepare", "tm-train", "tm-evaluate", "tm-intake-dlq")},
        *{(a, f"{bucket}/{area}/*") for a in ("s3:GetObject", "s3:PutObject")
          for area in ("runs", "intake")},
        ("s3:ListBucket", bucket),
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
    }  # fmt: skip
    assert grants(default.one(ROLE_POLICY).inputs["policy"]) == expected


@pytest.mark.parametrize("policy_type", [ROLE_POLICY, "aws:iam/policy:Policy"])
def test_no_wildcard_action_or_resource(default: Deployment, policy_type: str) -> None:
    for action, resource in grants(default.one(policy_type).inputs["policy"]):
        assert "*" not in action, action
        assert resource != "*" and not resource.startswith("arn:aws:sqs:*"), resource
        assert resource.split(":")[3] in ("", REGION), resource  # this region (S3 has none)
        assert resource.split(":")[4] in ("", ACCOUNT), resource  # this account


def test_role_has_no_managed_policies_and_trusts_only_lambda(default: Deployment) -> None:
    role = default.one("aws:iam/role:Role").inputs
    assert not role.get("managedPolicyArns")
    trust = statements(role["assumeRolePolicy"])
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_kms_is_granted_only_when_a_key_is_used(default: Deployment) -> None:
    assert not any(
        a.startswith("kms:") for a, _ in grants(default.one(ROLE_POLICY).inputs["policy"])
    )
    keyed = deploy(kms_key_arn=KEY)
    kms = {
        (a, r) for a, r in grants(keyed.one(ROLE_POLICY).inputs["policy"]) if a.startswith("kms:")
    }
    assert kms == {("kms:Decrypt", KEY), ("kms:GenerateDataKey", KEY)}


def test_store_prefix_narrows_the_object_grants() -> None:
    d = deploy(store_prefix="pipeline/")
    bucket = d.outputs["bucketArn"]
    objects = {r for a, r in grants(d.one(ROLE_POLICY).inputs["policy"]) if a == "s3:PutObject"}
    assert objects == {f"{bucket}/pipeline/runs/*", f"{bucket}/pipeline/intake/*"}
    assert d.outputs["storeAddress"] == f"s3://{d.outputs['bucketName']}/pipeline"


def test_worker_policy_covers_the_host_stages_only(default: Deployment) -> None:
    pairs = grants(default.one("aws:iam/policy:Policy").inputs["policy"])
    consumed = {r for a, r in pairs if a == "sqs:ReceiveMessage"}
    assert consumed == {sqs_arn(q) for q in ("tm-prepare", "tm-train", "tm-evaluate")}
    assert ("sqs:ChangeMessageVisibility", sqs_arn("tm-train")) in pairs  # heartbeats
    assert not {r for _, r in pairs} & {sqs_arn("tm-intake"), sqs_arn("tm-intake-dlq")}


# -- queues ---------------------------------------------------------------------------------
def test_intake_visibility_is_six_function_timeouts_plus_the_window() -> None:
    d = deploy(function_timeout=120, batching_window=20, batch_size=50)
    assert queue(d, "tm-intake")["visibilityTimeoutSeconds"] == 6 * 120 + 20
    explicit = deploy(function_timeout=60, intake_visibility_timeout=1000)
    assert queue(explicit, "tm-intake")["visibilityTimeoutSeconds"] == 1000


def test_the_reference_designs_visibility_timeout_is_refused() -> None:
    from trainmq_stack import SettingsError

    with pytest.raises(SettingsError, match="trainmq:intakeVisibilityTimeout is 60 s"):
        PipelineSettings(function_timeout=300, intake_visibility_timeout=60)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_a_dead_letter_queue_with_longer_retention(
    default: Deployment, stage: str
) -> None:
    source = queue(default, f"tm-{stage}")
    dlq = queue(default, f"tm-{stage}-dlq")
    redrive = json.loads(source["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": sqs_arn(f"tm-{stage}-dlq"), "maxReceiveCount": 5}
    assert dlq["messageRetentionSeconds"] > source["messageRetentionSeconds"]
    assert "redrivePolicy" not in dlq
    allow = default.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy", f"tm-{stage}-dlq").inputs
    assert allow["queueUrl"] == default.outputs[f"{stage}DeadLetterQueueUrl"]
    assert json.loads(allow["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [sqs_arn(f"tm-{stage}")],
    }


def test_queues_are_encrypted_by_sqs_or_by_the_customer_key(default: Deployment) -> None:
    queues = default.of_type(QUEUE)
    assert len(queues) == 2 * len(STAGES)
    assert all(q.inputs.get("sqsManagedSseEnabled") is True for q in queues)
    assert all("kmsMasterKeyId" not in q.inputs for q in queues)
    keyed = deploy(kms_key_arn=KEY).of_type(QUEUE)
    assert all(q.inputs["kmsMasterKeyId"] == KEY for q in keyed)
    assert all(not q.inputs.get("sqsManagedSseEnabled") for q in keyed)


def test_settings_reach_the_queues() -> None:
    d = deploy(
        message_retention=3600, dlq_retention=7200, max_receive_count=3,
        worker_visibility_timeout=1800,
    )  # fmt: skip
    train = queue(d, "tm-train")
    assert train["messageRetentionSeconds"] == 3600
    assert train["visibilityTimeoutSeconds"] == 1800
    assert json.loads(train["redrivePolicy"])["maxReceiveCount"] == 3
    assert queue(d, "tm-train-dlq")["messageRetentionSeconds"] == 7200


# -- the function and its mapping -----------------------------------------------------------
def test_function_runs_the_intake_handler_on_a_supported_runtime(default: Deployment) -> None:
    function = default.one(FUNCTION).inputs
    assert function["runtime"] == "python3.12"
    assert function["handler"] == HANDLER == "trainmq.training.intake.handler"
    assert function["architectures"] == ["x86_64"]
    assert function["timeout"] == 60 and function["memorySize"] == 512
    assert function["role"] == f"arn:aws:iam::{ACCOUNT}:role/tm-intake"
    assert function["loggingConfig"]["logGroup"] == "/aws/lambda/tm-intake"
    assert function["environment"]["variables"] == {
        "TRAINMQ_STORE": f"s3://{default.outputs['bucketName']}",
        "TRAINMQ_PREPARE_QUEUE_URL": default.outputs["prepareQueueUrl"],
        "TRAINMQ_TRAIN_QUEUE_URL": default.outputs["trainQueueUrl"],
        "TRAINMQ_EVALUATE_QUEUE_URL": default.outputs["evaluateQueueUrl"],
        "TRAINMQ_DEAD_LETTER_QUEUE_URL": default.outputs["intakeDeadLetterQueueUrl"],
    }


def test_log_group_is_the_functions_with_retention(default: Deployment) -> None:
    group = default.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group == {"name": "/aws/lambda/tm-intake", "retentionInDays": 30}


def test_mapping_reports_batch_item_failures_and_applies_the_settings() -> None:
    d = deploy(batch_size=100, batching_window=5, maximum_concurrency=25)
    mapping = d.one(MAPPING).inputs
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["eventSourceArn"] == sqs_arn("tm-intake")
    assert mapping["functionName"] == d.outputs["intakeFunctionArn"]
    assert mapping["batchSize"] == 100
    assert mapping["maximumBatchingWindowInSeconds"] == 5
    assert mapping["scalingConfig"] == {"maximumConcurrency": 25}


def test_mapping_and_function_are_created_after_the_role_policy(default: Deployment) -> None:
    policy = default.one(ROLE_POLICY).urn
    group = default.one("aws:cloudwatch/logGroup:LogGroup").urn
    assert policy in default.one(MAPPING).dependencies
    assert {policy, group} <= set(default.one(FUNCTION).dependencies)
    # The mapping's inputs never mention the policy: the dependency is the explicit one.
    assert "policy" not in json.dumps(default.one(MAPPING).inputs)


def test_every_resource_belongs_to_the_component(default: Deployment) -> None:
    component = default.one("trainmq:aws:TrainingPipeline").urn
    for resource in default.resources:
        if resource.type.startswith("aws:"):
            assert resource.parent == component, resource.name


# -- the bucket -----------------------------------------------------------------------------
def test_bucket_is_versioned_encrypted_with_a_bucket_key_and_owner_enforced(
    default: Deployment,
) -> None:
    versioning = default.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    encryption = default.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert encryption["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"},
            "bucketKeyEnabled": True,
        }
    ]
    ownership = default.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    bucket = default.outputs["bucketName"]
    for sub in (versioning, encryption, ownership):
        assert sub["bucket"] == bucket


def test_bucket_encryption_uses_the_customer_key_when_given() -> None:
    d = deploy(kms_key_arn=KEY)
    encryption = d.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    rule = encryption["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": KEY,
    }
    assert rule["bucketKeyEnabled"] is True


def test_public_access_is_fully_blocked(default: Deployment) -> None:
    block = default.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag


def test_bucket_policy_denies_everything_without_tls(default: Deployment) -> None:
    policy = default.one("aws:s3/bucketPolicy:BucketPolicy")
    arn = default.outputs["bucketArn"]
    assert statements(policy.inputs["policy"]) == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    block = default.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").urn
    assert block in policy.dependencies


def test_lifecycle_rules_abort_uploads_expire_old_versions_and_claim_checks() -> None:
    d = deploy(store_prefix="pipeline/", abort_multipart_days=3, noncurrent_version_days=10)
    rules = {
        rule["id"]: rule
        for rule in d.one(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        ).inputs["rules"]
    }
    assert all(rule["status"] == "Enabled" for rule in rules.values())
    abort = rules["abort-incomplete-multipart-uploads"]
    assert abort["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 3}
    noncurrent = rules["expire-noncurrent-versions"]
    assert noncurrent["noncurrentVersionExpiration"] == {"noncurrentDays": 10}
    claims = rules["expire-claim-check-payloads"]
    assert claims["filter"] == {"prefix": "pipeline/claimcheck/"}
    assert claims["expiration"] == {"days": 15}


# -- alarms ---------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", STAGES)
def test_alarms_on_dead_letters_and_message_age(default: Deployment, stage: str) -> None:
    dlq = default.one(ALARM, f"tm-{stage}-dlq-not-empty").inputs
    assert (dlq["namespace"], dlq["metricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dlq["dimensions"] == {"QueueName": f"tm-{stage}-dlq"}
    assert (dlq["comparisonOperator"], dlq["threshold"]) == ("GreaterThanThreshold", 0)
    age = default.one(ALARM, f"tm-{stage}-oldest-message").inputs
    assert (age["namespace"], age["metricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert age["dimensions"] == {"QueueName": f"tm-{stage}"}
    assert (age["comparisonOperator"], age["threshold"]) == ("GreaterThanThreshold", 3600)


def test_alarms_notify_the_given_topic() -> None:
    d = deploy(alarm_topic_arn=TOPIC)
    alarms = d.of_type(ALARM)
    assert len(alarms) == 2 * len(STAGES) + 1
    assert all(a.inputs["alarmActions"] == [TOPIC] for a in alarms)
    assert not d.of_type("aws:sns/topic:Topic")
    assert d.outputs["alarmTopicArn"] == TOPIC


def test_an_alarm_email_gets_a_topic_and_subscription() -> None:
    d = deploy(alarm_email="ops@example.com")
    topic = d.one("aws:sns/topic:Topic")
    subscription = d.one("aws:sns/topicSubscription:TopicSubscription").inputs
    arn = d.outputs["alarmTopicArn"]
    assert arn == topic.state["arn"]
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")
    assert subscription["topic"] == arn
    assert all(a.inputs["alarmActions"] == [arn] for a in d.of_type(ALARM))


# -- outputs --------------------------------------------------------------------------------
def test_outputs_name_every_queue_the_bucket_and_the_function(default: Deployment) -> None:
    out = default.outputs
    for stage in STAGES:
        assert out[f"{stage}QueueUrl"] == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/tm-{stage}"
        assert out[f"{stage}QueueArn"] == sqs_arn(f"tm-{stage}")
        assert out[f"{stage}DeadLetterQueueUrl"].endswith(f"/tm-{stage}-dlq")
        assert out[f"{stage}DeadLetterQueueArn"] == sqs_arn(f"tm-{stage}-dlq")
    assert out["intakeFunctionName"] == "tm-intake"
    assert out["bucketName"] == default.one("aws:s3/bucket:Bucket").state["bucket"]
    assert out["workerPolicyArn"] == f"arn:aws:iam::{ACCOUNT}:policy/tm-worker"
    assert "websiteEndpoint" not in json.dumps(out)


# -- the program ----------------------------------------------------------------------------
def test_the_program_exports_the_outputs_from_stack_config(tmp_path: Path) -> None:
    import runpy

    zip_path = tmp_path / "lambda.zip"
    _handler_only_zip(zip_path)
    config = {"trainmq:lambdaZip": str(zip_path), "trainmq:functionTimeout": "30"}

    def program() -> Any:
        runpy.run_path(str(DEPLOY_AWS / "__main__.py"))
        return {}

    d = run(program, config)
    assert queue(d, "trainmq-test-intake")["visibilityTimeoutSeconds"] == 180
    function = d.one(FUNCTION).inputs
    assert function["name"] == "trainmq-test-intake" and function["timeout"] == 30


def test_the_program_refuses_bad_settings_before_creating_anything(tmp_path: Path) -> None:
    import runpy

    zip_path = tmp_path / "lambda.zip"
    _handler_only_zip(zip_path)
    config = {"trainmq:lambdaZip": str(zip_path), "trainmq:runtime": "python3.8"}

    def program() -> Any:
        runpy.run_path(str(DEPLOY_AWS / "__main__.py"))
        return {}

    with pytest.raises(pulumi.RunError, match=r"trainmq:runtime is 'python3\.8'"):
        run(program, config)


def _handler_only_zip(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("trainmq/training/intake.py", "")
