"""Corners where AWS's answer is specific: batch and attribute validation, queue type
changes, KMS attributes, permissions, tags, receive filters and the trace header."""

from __future__ import annotations

import json

import pytest

# --- FIFO batches fail as a whole -----------------------------------------------------------


def test_fifo_batch_entry_without_group_fails_the_whole_request(sqs):
    sqs.xfail_on("moto", "moto reports the entry as failed and sends the rest")
    url = sqs.fifo_queue(ContentBasedDeduplication="true")
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "ok", "MessageBody": "a", "MessageGroupId": "g"},
                {"Id": "bad", "MessageBody": "b"},
            ],
        )
    assert error.message == "The request must contain the parameter MessageGroupId."
    assert sqs.receive(url) == []


def test_fifo_batch_entry_without_deduplication_id_fails_the_whole_request(sqs):
    url = sqs.fifo_queue()
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": "ok",
                    "MessageBody": "a",
                    "MessageGroupId": "g",
                    "MessageDeduplicationId": "1",
                },
                {"Id": "bad", "MessageBody": "b", "MessageGroupId": "g"},
            ],
        )
    assert error.message == (
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )
    assert sqs.receive(url) == []


# --- Queue type attributes --------------------------------------------------------------------


def test_standard_queue_cannot_name_fifo_queue_false(sqs):
    sqs.xfail_on("moto", "moto accepts FifoQueue=false on a standard queue")
    with sqs.raises("InvalidAttributeName") as error:
        sqs.client.create_queue(QueueName=sqs.unique(), Attributes={"FifoQueue": "false"})
    assert error.message == "Unknown Attribute FifoQueue."


@pytest.mark.parametrize(
    ("name", "value"), [("DeduplicationScope", "queue"), ("FifoThroughputLimit", "perQueue")]
)
def test_fifo_only_attributes_on_a_standard_queue(sqs, name, value):
    sqs.xfail_on("moto", "moto accepts FIFO-only attributes on a standard queue")
    with sqs.raises("InvalidAttributeName") as error:
        sqs.client.create_queue(QueueName=sqs.unique(), Attributes={name: value})
    assert error.message == f"You can specify the {name} only when FifoQueue is set to true."


def test_setting_fifo_queue_true_on_a_fifo_queue_is_a_no_op(sqs):
    url = sqs.fifo_queue()
    sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "true"})
    assert sqs.attributes(url, "FifoQueue") == {"FifoQueue": "true"}


def test_a_fifo_queue_cannot_become_standard(sqs):
    sqs.xfail_on("moto", "moto accepts FifoQueue=false on a FIFO queue")
    url = sqs.fifo_queue()
    with sqs.raises("InvalidAttributeValue") as error:
        sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "false"})
    assert error.message == (
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported."
    )
    assert sqs.attributes(url, "FifoQueue") == {"FifoQueue": "true"}


def test_an_empty_kms_key_removes_both_kms_attributes(sqs):
    url = sqs.queue(KmsMasterKeyId="alias/aws/sqs")
    assert sqs.attributes(url)["KmsMasterKeyId"] == "alias/aws/sqs"
    assert "KmsDataKeyReusePeriodSeconds" in sqs.attributes(url)
    sqs.client.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": ""})
    remaining = sqs.attributes(url)
    assert "KmsMasterKeyId" not in remaining
    assert "KmsDataKeyReusePeriodSeconds" not in remaining


# --- Message attributes -----------------------------------------------------------------------


def test_attribute_names_may_use_letters_of_any_script(sqs):
    sqs.xfail_on("moto", "moto accepts only ASCII letters in attribute names")
    url = sqs.queue()
    attributes = {"attr.1øßä": {"DataType": "String", "StringValue": "v"}}
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attributes)
    message = sqs.receive_one(url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == attributes


def test_an_empty_string_attribute_is_rejected_with_aws_wording(sqs):
    sqs.xfail_on("moto", "moto words the error differently")
    attributes = {"ErrorDetails": {"DataType": "String", "StringValue": ""}}
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.send_message(QueueUrl=sqs.queue(), MessageBody="x", MessageAttributes=attributes)
    assert error.message == (
        "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'."
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["All"], {"Hello", "Help.Me", "World"}),
        (["*"], {"Hello", "Help.Me", "World"}),
        (["Hel.*"], {"Hello", "Help.Me"}),
        (["Help.*"], {"Help.Me"}),
    ],
)
def test_message_attribute_name_wildcards(sqs, names, expected):
    if names == ["*"]:
        sqs.xfail_on("moto", "moto does not read * as every attribute")
    url = sqs.queue()
    attributes = {
        name: {"DataType": "String", "StringValue": name} for name in ("Hello", "Help.Me", "World")
    }
    sqs.client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attributes)
    message = sqs.receive_one(url, MessageAttributeNames=names)
    assert set(message.get("MessageAttributes", {})) == expected


# --- Permissions and tags ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ["RemovePermission", "AddPermission", "DeleteQueue"])
def test_owner_only_actions_cannot_be_granted(sqs, action):
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.add_permission(
            QueueUrl=sqs.queue(), Label="grant", AWSAccountIds=["111122223333"], Actions=[action]
        )
    assert error.message == (
        f"Value SQS:{action} for parameter ActionName is invalid. Reason: Only the queue owner "
        "is allowed to invoke this action."
    )


def test_permission_policy_looks_like_aws(sqs):
    sqs.xfail_on("moto", "moto writes lists for a single action and principal")
    url = sqs.queue()
    sqs.client.add_permission(
        QueueUrl=url, Label="one", AWSAccountIds=["111122223333"], Actions=["SendMessage"]
    )
    sqs.client.add_permission(
        QueueUrl=url,
        Label="two",
        AWSAccountIds=["111122223333", "444455556666"],
        Actions=["ReceiveMessage", "DeleteMessage"],
    )
    policy = json.loads(sqs.attributes(url, "Policy")["Policy"])
    assert policy["Version"] == "2008-10-17"
    one, two = policy["Statement"]
    assert one["Action"] == "SQS:SendMessage"
    assert one["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert two["Action"] == ["SQS:ReceiveMessage", "SQS:DeleteMessage"]
    assert two["Principal"]["AWS"] == [
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::444455556666:root",
    ]


def test_removing_an_unknown_label_says_so(sqs):
    sqs.xfail_on("moto", "moto adds 'on existing policy' to the reason")
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.remove_permission(QueueUrl=sqs.queue(), Label="nobody")
    assert error.message == "Value nobody for parameter Label is invalid. Reason: can't find label."


def test_untag_with_no_keys_is_rejected(sqs):
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.untag_queue(QueueUrl=sqs.queue(), TagKeys=[])
    assert error.message == "Tag keys must be between 1 and 128 characters in length."


# --- The trace header -------------------------------------------------------------------------


def test_trace_header_becomes_the_aws_trace_header_attribute(sqs):
    if sqs.name in ("sqlite", "remote", "postgres"):
        pytest.skip("an in-process client sends no HTTP headers")
    sqs.xfail_on("moto", "moto ignores the X-Amzn-Trace-Id header")
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    def add_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = trace

    url = sqs.queue()
    sqs.client.meta.events.register("before-sign.sqs.SendMessage", add_header)
    try:
        sqs.client.send_message(QueueUrl=url, MessageBody="traced")
    finally:
        sqs.client.meta.events.unregister("before-sign.sqs.SendMessage", add_header)
    message = sqs.receive_one(url, MessageSystemAttributeNames=["AWSTraceHeader"])
    assert message["Attributes"] == {"AWSTraceHeader": trace}
