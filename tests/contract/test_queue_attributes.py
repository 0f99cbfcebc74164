"""GetQueueAttributes and SetQueueAttributes, including RedrivePolicy and RedriveAllowPolicy."""

from __future__ import annotations

import json

import pytest

DEFAULTS = {
    "VisibilityTimeout": "30",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
    "MaximumMessageSize": "1048576",
    "ApproximateNumberOfMessages": "0",
    "ApproximateNumberOfMessagesNotVisible": "0",
    "ApproximateNumberOfMessagesDelayed": "0",
}


# --- GetQueueAttributes ----------------------------------------------------------


def test_new_queue_has_the_documented_defaults(sqs):
    attributes = sqs.attributes(sqs.queue("defaults"))
    for name, value in DEFAULTS.items():
        assert attributes[name] == value, name
    assert attributes["QueueArn"].startswith("arn:aws:sqs:")
    assert attributes["QueueArn"].endswith(":defaults")
    assert "FifoQueue" not in attributes


def test_new_queue_timestamps_are_epoch_seconds_of_creation(sqs):
    sqs.xfail_on("moto", "moto reports fractional timestamps, AWS whole seconds")
    before = int(sqs.now())
    attributes = sqs.attributes(sqs.queue())
    after = int(sqs.now()) + 1
    for name in ("CreatedTimestamp", "LastModifiedTimestamp"):
        assert attributes[name].isdigit(), name
        assert before <= int(attributes[name]) <= after, name


def test_new_fifo_queue_reports_its_fifo_defaults(sqs):
    attributes = sqs.attributes(sqs.fifo_queue())
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert attributes["DeduplicationScope"] == "queue"
    assert attributes["FifoThroughputLimit"] == "perQueue"


def test_get_queue_attributes_returns_only_the_names_asked_for(sqs):
    url = sqs.queue()
    attributes = sqs.attributes(url, "VisibilityTimeout", "QueueArn")
    assert set(attributes) == {"VisibilityTimeout", "QueueArn"}


def test_get_queue_attributes_without_names_returns_none(sqs):
    response = sqs.client.get_queue_attributes(QueueUrl=sqs.queue())
    assert response.get("Attributes", {}) == {}


def test_get_queue_attributes_rejects_unknown_names(sqs):
    with sqs.raises("InvalidAttributeName"):
        sqs.attributes(sqs.queue(), "VisibilityTimeout", "NoSuchAttribute")


def test_message_counts_separate_visible_in_flight_and_delayed(sqs):
    url = sqs.queue()
    for body in ("a", "b", "c"):
        sqs.client.send_message(QueueUrl=url, MessageBody=body)
    for body in ("d", "e"):
        sqs.client.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=600)
    sqs.receive_one(url)
    counts = sqs.attributes(
        url,
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    assert counts == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "ApproximateNumberOfMessagesDelayed": "2",
    }


def test_message_counts_follow_time(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(VisibilityTimeout=100)
    sqs.client.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=50)
    sqs.client.send_message(QueueUrl=url, MessageBody="now")
    sqs.receive_one(url)
    sqs.advance(60)
    assert sqs.count(url) == 1
    assert sqs.count(url, "ApproximateNumberOfMessagesDelayed") == 0
    assert sqs.count(url, "ApproximateNumberOfMessagesNotVisible") == 1
    sqs.advance(41)
    assert sqs.count(url) == 2
    assert sqs.count(url, "ApproximateNumberOfMessagesNotVisible") == 0


# --- SetQueueAttributes ------------------------------------------------------------

SETTABLE = {
    "DelaySeconds": "15",
    "MaximumMessageSize": "2048",
    "MessageRetentionPeriod": "3600",
    "ReceiveMessageWaitTimeSeconds": "5",
    "VisibilityTimeout": "120",
}


def test_set_queue_attributes_round_trips(sqs):
    url = sqs.queue()
    sqs.client.set_queue_attributes(QueueUrl=url, Attributes=SETTABLE)
    assert sqs.attributes(url, *SETTABLE) == SETTABLE


def test_set_queue_attributes_moves_last_modified(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue()
    created = int(sqs.attributes(url, "CreatedTimestamp")["CreatedTimestamp"])
    sqs.advance(100)
    sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})
    attributes = sqs.attributes(url, "CreatedTimestamp", "LastModifiedTimestamp")
    assert int(attributes["CreatedTimestamp"]) == created
    assert int(attributes["LastModifiedTimestamp"]) == created + 100


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("DelaySeconds", "901"),
        ("DelaySeconds", "-1"),
        ("MaximumMessageSize", "1023"),
        ("MaximumMessageSize", "1048577"),
        ("MessageRetentionPeriod", "59"),
        ("MessageRetentionPeriod", "1209601"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "soon"),
    ],
)
def test_set_queue_attributes_rejects_invalid_values(sqs, attribute, value):
    sqs.xfail_on("moto", "moto does not validate queue attribute values on SetQueueAttributes")
    url = sqs.queue()
    with sqs.raises("InvalidAttributeValue"):
        sqs.client.set_queue_attributes(QueueUrl=url, Attributes={attribute: value})


def test_set_queue_attributes_rejects_unknown_names(sqs):
    sqs.xfail_on("moto", "moto ignores unknown attribute names")
    url = sqs.queue()
    with sqs.raises("InvalidAttributeName"):
        sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"Colour": "blue"})


def test_a_rejected_set_changes_nothing(sqs):
    sqs.xfail_on("moto", "moto does not validate queue attribute values on SetQueueAttributes")
    url = sqs.queue()
    with sqs.raises("InvalidAttributeValue"):
        sqs.client.set_queue_attributes(
            QueueUrl=url, Attributes={"DelaySeconds": "10", "VisibilityTimeout": "99999"}
        )
    assert sqs.attributes(url, "DelaySeconds", "VisibilityTimeout") == {
        "DelaySeconds": "0",
        "VisibilityTimeout": "30",
    }


# --- RedrivePolicy -------------------------------------------------------------------


def _redrive(arn, count):
    return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count})


@pytest.mark.parametrize("count", [3, "3"])
def test_redrive_policy_round_trips(sqs, count):
    dlq_arn = sqs.arn(sqs.queue("dlq"))
    url = sqs.queue("source")
    sqs.client.set_queue_attributes(
        QueueUrl=url, Attributes={"RedrivePolicy": _redrive(dlq_arn, count)}
    )
    policy = json.loads(sqs.attributes(url, "RedrivePolicy")["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq_arn
    assert int(policy["maxReceiveCount"]) == 3


def test_redrive_policy_can_be_set_at_creation(sqs):
    dlq_arn = sqs.arn(sqs.queue("dlq"))
    url = sqs.queue("source", RedrivePolicy=_redrive(dlq_arn, 5))
    policy = json.loads(sqs.attributes(url, "RedrivePolicy")["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq_arn
    assert int(policy["maxReceiveCount"]) == 5


def test_redrive_policy_must_be_json(sqs):
    sqs.xfail_on("moto", "moto answers InvalidParameterValue, AWS InvalidAttributeValue")
    url = sqs.queue()
    with sqs.raises("InvalidAttributeValue"):
        sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": "{not json"})


def test_redrive_policy_target_must_exist(sqs):
    sqs.xfail_on("moto", "moto answers NonExistentQueue where AWS answers InvalidParameterValue")
    url = sqs.queue()
    missing = "arn:aws:sqs:us-east-1:000000000000:no-such-queue"
    with sqs.raises("InvalidParameterValue"):
        sqs.client.set_queue_attributes(
            QueueUrl=url, Attributes={"RedrivePolicy": _redrive(missing, 3)}
        )


@pytest.mark.parametrize("count", [0, 1001])
def test_redrive_policy_max_receive_count_is_1_to_1000(sqs, count):
    sqs.xfail_on("moto", "moto does not check the range of maxReceiveCount")
    dlq_arn = sqs.arn(sqs.queue("dlq"))
    url = sqs.queue()
    with sqs.raises("InvalidParameterValue"):
        sqs.client.set_queue_attributes(
            QueueUrl=url, Attributes={"RedrivePolicy": _redrive(dlq_arn, count)}
        )


@pytest.mark.parametrize("missing", ["deadLetterTargetArn", "maxReceiveCount"])
def test_redrive_policy_requires_both_keys(sqs, missing):
    dlq_arn = sqs.arn(sqs.queue("dlq"))
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    del policy[missing]
    url = sqs.queue()
    with sqs.raises("InvalidParameterValue"):
        sqs.client.set_queue_attributes(
            QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)}
        )


def test_fifo_queue_needs_a_fifo_dead_letter_queue(sqs):
    sqs.xfail_on("moto", "moto answers InvalidParameterCombination")
    dlq_arn = sqs.arn(sqs.queue("standard-dlq"))
    url = sqs.fifo_queue()
    with sqs.raises("InvalidParameterValue"):
        sqs.client.set_queue_attributes(
            QueueUrl=url, Attributes={"RedrivePolicy": _redrive(dlq_arn, 3)}
        )


def test_redrive_policy_can_be_removed_with_an_empty_value(sqs):
    dlq_arn = sqs.arn(sqs.queue("dlq"))
    url = sqs.queue(RedrivePolicy=_redrive(dlq_arn, 2))
    sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in sqs.attributes(url)


# --- RedriveAllowPolicy ----------------------------------------------------------------


def test_redrive_allow_policy_round_trips(sqs):
    sqs.xfail_on("moto", "moto does not know the RedriveAllowPolicy attribute")
    source_arn = sqs.arn(sqs.queue("source"))
    dlq = sqs.queue("dlq")
    for policy in (
        {"redrivePermission": "allowAll"},
        {"redrivePermission": "denyAll"},
        {"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]},
    ):
        sqs.client.set_queue_attributes(
            QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps(policy)}
        )
        stored = sqs.attributes(dlq, "RedriveAllowPolicy")["RedriveAllowPolicy"]
        assert json.loads(stored) == policy


@pytest.mark.parametrize(
    "policy",
    [
        "{not json",
        json.dumps({"redrivePermission": "sometimes"}),
        json.dumps({"redrivePermission": "byQueue"}),
        json.dumps({"redrivePermission": "allowAll", "sourceQueueArns": ["arn:x"]}),
        json.dumps(
            {
                "redrivePermission": "byQueue",
                "sourceQueueArns": [f"arn:aws:sqs:us-east-1:000000000000:q{i}" for i in range(11)],
            }
        ),
    ],
    ids=["not-json", "unknown-permission", "byQueue-no-arns", "arns-not-byQueue", "11-arns"],
)
def test_redrive_allow_policy_rejects_invalid_documents(sqs, policy):
    sqs.xfail_on("moto", "moto does not validate RedriveAllowPolicy")
    url = sqs.queue()
    with sqs.raises("InvalidAttributeValue", "InvalidParameterValue"):
        sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": policy})
