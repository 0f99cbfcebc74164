"""The three batch actions: shared entry rules, results per entry, partial failure."""

from __future__ import annotations

import hashlib

import pytest

BATCH_ACTIONS = ["send", "delete", "change_visibility"]


def _entry(sqs, url, action, entry_id):
    if action == "send":
        return {"Id": entry_id, "MessageBody": f"body {entry_id}"}
    sqs.client.send_message(QueueUrl=url, MessageBody=entry_id)
    handle = sqs.receive_one(url)["ReceiptHandle"]
    if action == "delete":
        return {"Id": entry_id, "ReceiptHandle": handle}
    return {"Id": entry_id, "ReceiptHandle": handle, "VisibilityTimeout": 60}


def _call(sqs, url, action, entries):
    method = {
        "send": sqs.client.send_message_batch,
        "delete": sqs.client.delete_message_batch,
        "change_visibility": sqs.client.change_message_visibility_batch,
    }[action]
    return method(QueueUrl=url, Entries=entries)


def _fake_entries(action, ids):
    if action == "send":
        return [{"Id": i, "MessageBody": "x"} for i in ids]
    if action == "delete":
        return [{"Id": i, "ReceiptHandle": f"handle-{n}"} for n, i in enumerate(ids)]
    return [
        {"Id": i, "ReceiptHandle": f"handle-{n}", "VisibilityTimeout": 1} for n, i in enumerate(ids)
    ]


# --- Rules every batch action shares ----------------------------------------------------


@pytest.mark.parametrize("action", BATCH_ACTIONS)
def test_empty_batch_is_rejected(sqs, action):
    if action == "change_visibility":
        sqs.xfail_on("moto", "moto accepts an empty ChangeMessageVisibilityBatch")
    with sqs.raises("AWS.SimpleQueueService.EmptyBatchRequest"):
        _call(sqs, sqs.queue(), action, [])


@pytest.mark.parametrize("action", BATCH_ACTIONS)
def test_more_than_ten_entries_are_rejected(sqs, action):
    if action != "send":
        sqs.xfail_on("moto", "moto limits only SendMessageBatch to ten entries")
    entries = _fake_entries(action, [f"e{i}" for i in range(11)])
    with sqs.raises("AWS.SimpleQueueService.TooManyEntriesInBatchRequest"):
        _call(sqs, sqs.queue(), action, entries)


@pytest.mark.parametrize("action", BATCH_ACTIONS)
def test_duplicate_entry_ids_are_rejected(sqs, action):
    if action != "send":
        sqs.xfail_on("moto", "moto compares receipt handles, not entry ids, or nothing at all")
    entries = _fake_entries(action, ["same", "other", "same"])
    with sqs.raises("AWS.SimpleQueueService.BatchEntryIdsNotDistinct"):
        _call(sqs, sqs.queue(), action, entries)


@pytest.mark.parametrize("action", BATCH_ACTIONS)
@pytest.mark.parametrize("bad_id", ["has space", "dot.id", "x" * 81, ""])
def test_invalid_entry_ids_are_rejected(sqs, action, bad_id):
    if action != "send":
        sqs.xfail_on("moto", "moto checks entry ids only for SendMessageBatch")
    entries = _fake_entries(action, ["good", bad_id])
    with sqs.raises("AWS.SimpleQueueService.InvalidBatchEntryId"):
        _call(sqs, sqs.queue(), action, entries)


@pytest.mark.parametrize("action", BATCH_ACTIONS)
def test_valid_entry_ids_up_to_80_characters(sqs, action):
    url = sqs.queue()
    ids = ["a", "A-z_0-9", "y" * 80]
    entries = [_entry(sqs, url, action, i) for i in ids]
    result = _call(sqs, url, action, entries)
    assert sorted(e["Id"] for e in result["Successful"]) == sorted(ids)
    assert result.get("Failed", []) == []


def test_batch_entries_on_an_unknown_queue_fail_as_a_whole(sqs):
    url = sqs.queue()
    sqs.client.delete_queue(QueueUrl=url)
    with sqs.raises("AWS.SimpleQueueService.NonExistentQueue"):
        sqs.client.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])


# --- SendMessageBatch ---------------------------------------------------------------------


def test_send_batch_reports_each_message(sqs):
    url = sqs.queue()
    bodies = {f"m{i}": f"body number {i}" for i in range(10)}
    result = sqs.client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": i, "MessageBody": b} for i, b in bodies.items()]
    )
    assert result.get("Failed", []) == []
    assert len(result["Successful"]) == 10
    for entry in result["Successful"]:
        assert entry["MD5OfMessageBody"] == hashlib.md5(bodies[entry["Id"]].encode()).hexdigest()
    assert len({e["MessageId"] for e in result["Successful"]}) == 10
    received = []
    for _ in range(10):
        batch = sqs.receive(url)
        received.extend(m["Body"] for m in batch)
        if len(received) == 10:
            break
    assert sorted(received) == sorted(bodies.values())


def test_send_batch_honours_per_entry_delay_and_attributes(sqs):
    url = sqs.queue()
    attributes = {"kind": {"DataType": "String", "StringValue": "urgent"}}
    sqs.client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "now", "MessageBody": "now", "MessageAttributes": attributes},
            {"Id": "later", "MessageBody": "later", "DelaySeconds": 1},
        ],
    )
    messages = sqs.receive(url, MessageAttributeNames=["All"])
    assert [m["Body"] for m in messages] == ["now"]
    assert messages[0]["MessageAttributes"] == attributes
    assert sqs.count(url, "ApproximateNumberOfMessagesDelayed") == 1


def test_send_batch_total_size_is_limited(sqs):
    url = sqs.queue()
    entries = [{"Id": f"e{i}", "MessageBody": "b" * 300_000} for i in range(4)]
    with sqs.raises("AWS.SimpleQueueService.BatchRequestTooLong"):
        sqs.client.send_message_batch(QueueUrl=url, Entries=entries)
    assert sqs.count(url) == 0


def test_send_batch_reports_invalid_entries_and_sends_the_rest(sqs):
    url = sqs.queue()
    result = sqs.client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "late", "MessageBody": "too late", "DelaySeconds": 901},
        ],
    )
    assert [e["Id"] for e in result["Successful"]] == ["good"]
    (failed,) = result["Failed"]
    assert failed["Id"] == "late"
    assert failed["Code"] == "InvalidParameterValue"
    assert failed["SenderFault"] is True
    assert failed["Message"]
    assert [m["Body"] for m in sqs.receive(url)] == ["fine"]


def test_send_batch_reports_bad_bodies_per_entry(sqs):
    sqs.xfail_on("moto", "moto does not check bodies per entry")
    url = sqs.queue()
    result = sqs.client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "nul", "MessageBody": "bad\x00"},
        ],
    )
    assert [e["Id"] for e in result["Successful"]] == ["good"]
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "nul",
        "InvalidMessageContents",
        True,
    )


# --- DeleteMessageBatch and ChangeMessageVisibilityBatch ------------------------------------


def test_delete_batch_reports_invalid_handles_and_deletes_the_rest(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="good")
    handle = sqs.receive_one(url, VisibilityTimeout=0)["ReceiptHandle"]
    result = sqs.client.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "ReceiptHandle": handle},
            {"Id": "bad", "ReceiptHandle": "not-a-receipt-handle"},
        ],
    )
    assert [e["Id"] for e in result["Successful"]] == ["good"]
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "bad",
        "ReceiptHandleIsInvalid",
        True,
    )
    assert sqs.receive(url) == []


def test_change_visibility_batch_reports_invalid_handles_and_changes_the_rest(sqs):
    url = sqs.queue(VisibilityTimeout=60)
    sqs.client.send_message(QueueUrl=url, MessageBody="back")
    handle = sqs.receive_one(url)["ReceiptHandle"]
    result = sqs.client.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "ReceiptHandle": handle, "VisibilityTimeout": 0},
            {"Id": "bad", "ReceiptHandle": "not-a-receipt-handle", "VisibilityTimeout": 0},
        ],
    )
    assert [e["Id"] for e in result["Successful"]] == ["good"]
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "bad",
        "ReceiptHandleIsInvalid",
        True,
    )
    assert [m["Body"] for m in sqs.receive(url)] == ["back"]


def test_change_visibility_batch_reports_out_of_range_timeouts_per_entry(sqs):
    url = sqs.queue()
    sqs.client.send_message(QueueUrl=url, MessageBody="m")
    handle = sqs.receive_one(url)["ReceiptHandle"]
    result = sqs.client.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[{"Id": "long", "ReceiptHandle": handle, "VisibilityTimeout": 43201}],
    )
    assert result.get("Successful", []) == []
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"]) == ("long", "InvalidParameterValue")
