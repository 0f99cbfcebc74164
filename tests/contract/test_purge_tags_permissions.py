"""PurgeQueue, queue tags, AddPermission and RemovePermission."""

from __future__ import annotations

import json

import pytest

# --- PurgeQueue ---------------------------------------------------------------------------


def test_purge_removes_every_message(sqs):
    url = sqs.queue()
    for body in ("a", "b", "c"):
        sqs.client.send_message(QueueUrl=url, MessageBody=body)
    sqs.client.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    sqs.receive_one(url)
    sqs.client.purge_queue(QueueUrl=url)
    assert sqs.receive(url) == []
    for name in (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ):
        assert sqs.count(url, name) == 0, name


def test_purge_keeps_the_queue_and_its_attributes(sqs):
    url = sqs.queue(VisibilityTimeout=77)
    sqs.client.purge_queue(QueueUrl=url)
    assert sqs.attributes(url, "VisibilityTimeout") == {"VisibilityTimeout": "77"}
    sqs.client.send_message(QueueUrl=url, MessageBody="after")
    assert sqs.receive_one(url)["Body"] == "after"


def test_second_purge_within_60_seconds_is_rejected(sqs):
    url = sqs.queue()
    sqs.client.purge_queue(QueueUrl=url)
    with sqs.raises("AWS.SimpleQueueService.PurgeQueueInProgress"):
        sqs.client.purge_queue(QueueUrl=url)


def test_purge_is_allowed_again_after_60_seconds(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue()
    sqs.client.purge_queue(QueueUrl=url)
    sqs.advance(59)
    with sqs.raises("AWS.SimpleQueueService.PurgeQueueInProgress"):
        sqs.client.purge_queue(QueueUrl=url)
    sqs.advance(2)
    sqs.client.send_message(QueueUrl=url, MessageBody="x")
    sqs.client.purge_queue(QueueUrl=url)
    assert sqs.receive(url) == []


def test_purge_limit_is_per_queue(sqs):
    first, second = sqs.queue(), sqs.queue()
    sqs.client.purge_queue(QueueUrl=first)
    sqs.client.purge_queue(QueueUrl=second)
    assert sqs.receive(second) == []


# --- Tags -----------------------------------------------------------------------------------


def test_new_queue_has_no_tags(sqs):
    assert sqs.client.list_queue_tags(QueueUrl=sqs.queue()).get("Tags", {}) == {}


def test_tag_queue_adds_and_overwrites(sqs):
    url = sqs.queue()
    sqs.client.tag_queue(QueueUrl=url, Tags={"team": "ml", "cost": "1"})
    sqs.client.tag_queue(QueueUrl=url, Tags={"cost": "2", "env": "dev"})
    tags = sqs.client.list_queue_tags(QueueUrl=url)["Tags"]
    assert tags == {"team": "ml", "cost": "2", "env": "dev"}


def test_untag_queue_removes_only_the_named_keys(sqs):
    url = sqs.queue()
    sqs.client.tag_queue(QueueUrl=url, Tags={"a": "1", "b": "2", "c": "3"})
    sqs.client.untag_queue(QueueUrl=url, TagKeys=["a", "c", "never-set"])
    assert sqs.client.list_queue_tags(QueueUrl=url)["Tags"] == {"b": "2"}


def test_tags_belong_to_one_queue(sqs):
    first, second = sqs.queue(), sqs.queue()
    sqs.client.tag_queue(QueueUrl=first, Tags={"k": "v"})
    assert sqs.client.list_queue_tags(QueueUrl=second).get("Tags", {}) == {}


def test_tags_on_an_unknown_queue(sqs):
    url = sqs.queue()
    sqs.client.delete_queue(QueueUrl=url)
    with sqs.raises("AWS.SimpleQueueService.NonExistentQueue"):
        sqs.client.tag_queue(QueueUrl=url, Tags={"k": "v"})


def test_more_than_50_tags_are_rejected(sqs):
    url = sqs.queue()
    with sqs.raises("InvalidParameterValue"):
        sqs.client.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(51)})


# --- Permissions -------------------------------------------------------------------------------


def _statements(sqs, url):
    policy = sqs.attributes(url, "Policy").get("Policy")
    return json.loads(policy)["Statement"] if policy else []


def test_add_permission_records_a_policy_statement(sqs):
    url = sqs.queue()
    sqs.client.add_permission(
        QueueUrl=url,
        Label="producers",
        AWSAccountIds=["111122223333"],
        Actions=["SendMessage", "GetQueueUrl"],
    )
    (statement,) = _statements(sqs, url)
    assert statement["Sid"] == "producers"
    assert statement["Effect"] == "Allow"
    actions = statement["Action"]
    actions = [actions] if isinstance(actions, str) else actions
    assert sorted(actions) == ["SQS:GetQueueUrl", "SQS:SendMessage"]
    assert statement["Resource"] == sqs.arn(url)


def test_remove_permission_drops_only_the_labelled_permission(sqs):
    url = sqs.queue()
    for label in ("one", "two"):
        sqs.client.add_permission(
            QueueUrl=url, Label=label, AWSAccountIds=["111122223333"], Actions=["ReceiveMessage"]
        )
    sqs.client.remove_permission(QueueUrl=url, Label="one")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.remove_permission(QueueUrl=url, Label="one")
    sqs.client.remove_permission(QueueUrl=url, Label="two")


def test_removed_permission_leaves_the_policy(sqs):
    url = sqs.queue()
    for label in ("one", "two"):
        sqs.client.add_permission(
            QueueUrl=url, Label=label, AWSAccountIds=["111122223333"], Actions=["ReceiveMessage"]
        )
    sqs.client.remove_permission(QueueUrl=url, Label="one")
    assert [s["Sid"] for s in _statements(sqs, url)] == ["two"]


def test_add_permission_with_a_label_in_use_is_rejected(sqs):
    url = sqs.queue()
    sqs.client.add_permission(
        QueueUrl=url, Label="dup", AWSAccountIds=["111122223333"], Actions=["SendMessage"]
    )
    with sqs.raises("InvalidParameterValue"):
        sqs.client.add_permission(
            QueueUrl=url, Label="dup", AWSAccountIds=["111122223333"], Actions=["SendMessage"]
        )


def test_remove_permission_with_an_unknown_label_is_rejected(sqs):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.remove_permission(QueueUrl=sqs.queue(), Label="nobody")


@pytest.mark.parametrize(
    ("actions", "code"), [(["Fly"], "InvalidParameterValue"), ([], "MissingParameter")]
)
def test_add_permission_rejects_unknown_or_missing_actions(sqs, actions, code):
    with sqs.raises(code):
        sqs.client.add_permission(
            QueueUrl=sqs.queue(), Label="bad", AWSAccountIds=["111122223333"], Actions=actions
        )
