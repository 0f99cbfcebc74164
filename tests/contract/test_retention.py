"""MessageRetentionPeriod: messages older than the period are deleted, wherever they are."""

from __future__ import annotations


def _bodies(messages):
    return [m["Body"] for m in messages]


def test_messages_older_than_the_retention_period_are_gone(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(MessageRetentionPeriod=60)
    sqs.client.send_message(QueueUrl=url, MessageBody="old")
    sqs.advance(30)
    sqs.client.send_message(QueueUrl=url, MessageBody="young")
    sqs.advance(31)
    assert _bodies(sqs.receive(url)) == ["young"]
    assert sqs.count(url, "ApproximateNumberOfMessagesNotVisible") == 1
    sqs.advance(30)
    assert sqs.count(url, "ApproximateNumberOfMessagesNotVisible") == 0
    assert sqs.receive(url) == []


def test_retention_applies_to_delayed_and_in_flight_messages(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue(MessageRetentionPeriod=60, VisibilityTimeout=600)
    sqs.client.send_message(QueueUrl=url, MessageBody="held")
    sqs.receive_one(url)
    sqs.client.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=120)
    sqs.advance(601)
    assert sqs.receive(url) == []
    for name in (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ):
        assert sqs.count(url, name) == 0, name


def test_retention_applies_to_fifo_queues(sqs_clock):
    sqs = sqs_clock
    url = sqs.fifo_queue(MessageRetentionPeriod=60)
    sqs.client.send_message(
        QueueUrl=url, MessageBody="expiring", MessageGroupId="g", MessageDeduplicationId="d"
    )
    sqs.advance(61)
    assert sqs.receive(url) == []
