"""Which messages a receive delivers, and in what order, as AWS does it.

FIFO: a receive fills its batch from one group first; only an earlier hidden
message holds back its group; groups coming back from in flight queue up behind
groups never delivered; an expired handle cannot delete; a purge forgets the
deduplication ids.  Standard: the oldest sent message first.
"""

from __future__ import annotations


def _send(sqs, url, body, group):
    sqs.client.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body
    )


def _bodies(messages):
    return [m["Body"] for m in messages]


def test_a_receive_fills_its_batch_from_one_group_first(sqs):
    sqs.xfail_on("moto", "moto interleaves groups in send order")
    url = sqs.fifo_queue()
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g1-m2", "g1"), ("g1-m3", "g1")):
        _send(sqs, url, body, group)
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=10)) == [
        "g1-m1",
        "g1-m2",
        "g1-m3",
        "g2-m1",
    ]


def test_only_an_earlier_hidden_message_holds_back_its_group(sqs):
    sqs.xfail_on("moto", "moto holds back a whole group while any of its messages is in flight")
    url = sqs.fifo_queue(VisibilityTimeout=30)
    _send(sqs, url, "g1-m1", "g1")
    _send(sqs, url, "g1-m2", "g1")
    _send(sqs, url, "g2-m1", "g2")
    first, second = sqs.receive(url, MaxNumberOfMessages=2)
    assert [first["Body"], second["Body"]] == ["g1-m1", "g1-m2"]
    # g1-m1 is visible again; g1-m2, later in the group, is still in flight
    sqs.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=3)) == ["g2-m1", "g1-m1"]


def test_a_later_message_in_flight_does_not_hold_back_an_earlier_one(sqs):
    sqs.xfail_on("moto", "moto holds back a whole group while any of its messages is in flight")
    url = sqs.fifo_queue(VisibilityTimeout=30)
    _send(sqs, url, "foo", "g")
    _send(sqs, url, "bar", "g")
    foo, bar = sqs.receive(url, MaxNumberOfMessages=2)
    sqs.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=bar["ReceiptHandle"], VisibilityTimeout=600
    )
    sqs.client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=foo["ReceiptHandle"], VisibilityTimeout=0
    )
    assert _bodies(sqs.receive(url)) == ["foo"]


def test_groups_returning_from_flight_come_after_groups_never_delivered(sqs):
    sqs.xfail_on("moto", "moto serves groups by their oldest message")
    url = sqs.fifo_queue()
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g2-m2", "g2"), ("g3-m1", "g3")):
        _send(sqs, url, body, group)
    _send(sqs, url, "g1-m2", "g1")
    first = sqs.receive(url, MaxNumberOfMessages=3, VisibilityTimeout=0)
    assert _bodies(first) == ["g1-m1", "g1-m2", "g2-m1"]
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=10, VisibilityTimeout=0)) == [
        "g3-m1",
        "g1-m1",
        "g1-m2",
        "g2-m1",
        "g2-m2",
    ]


def test_a_group_whose_visibility_timed_out_waits_behind_new_groups(sqs_clock):
    sqs = sqs_clock
    url = sqs.fifo_queue(VisibilityTimeout=10)
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g3-m1", "g3")):
        _send(sqs, url, body, group)
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=1)) == ["g1-m1"]
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=1)) == ["g2-m1"]
    sqs.advance(10)
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=10)) == ["g3-m1", "g1-m1", "g2-m1"]


def test_a_group_emptied_by_deletes_keeps_its_place(sqs):
    sqs.xfail_on("moto", "moto interleaves groups in send order")
    url = sqs.fifo_queue()
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g1-m2", "g1"), ("g1-m3", "g1")):
        _send(sqs, url, body, group)
    _send(sqs, url, "g3-m1", "g3")
    taken = sqs.receive(url, MaxNumberOfMessages=2)
    assert _bodies(taken) == ["g1-m1", "g1-m2"]
    for message in taken:
        sqs.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert _bodies(sqs.receive(url)) == ["g2-m1", "g1-m3", "g3-m1"]


def test_deleting_with_an_expired_handle_fails_on_a_fifo_queue(sqs):
    sqs.xfail_on("moto", "moto deletes with an expired FIFO receipt handle")
    url = sqs.fifo_queue()
    _send(sqs, url, "m", "g")
    handle = sqs.receive_one(url, VisibilityTimeout=0)["ReceiptHandle"]
    with sqs.raises("InvalidParameterValue") as error:
        sqs.client.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert error.message == (
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle "
        "has expired."
    )
    assert _bodies(sqs.receive(url)) == ["m"]


def test_deleting_with_a_current_handle_works_on_a_fifo_queue(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "m", "g")
    handle = sqs.receive_one(url)["ReceiptHandle"]
    sqs.client.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert sqs.count(url, "ApproximateNumberOfMessagesNotVisible") == 0


def test_purge_clears_the_deduplication_cache(sqs):
    url = sqs.fifo_queue()
    _send(sqs, url, "once", "g")
    sqs.client.purge_queue(QueueUrl=url)
    _send(sqs, url, "once", "g")
    assert _bodies(sqs.receive(url)) == ["once"]


def test_standard_queue_delivers_the_oldest_sent_message_first(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="old")
    assert sqs.receive_one(url, VisibilityTimeout=1)["Body"] == "old"
    sqs.client.send_message(QueueUrl=url, MessageBody="new")
    sqs.advance(1.1)  # "old" is visible again, later than "new" became visible
    assert _bodies(sqs.receive(url, MaxNumberOfMessages=10)) == ["old", "new"]
