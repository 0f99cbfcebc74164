"""Claim-check: large bodies through a blob store, interoperable with Amazon's extended client.

The interop tests run Amazon's ``amazon-sqs-extended-client`` package and
trainmq's :class:`ClaimCheckClient` against one moto server (SQS and S3): each
reads what the other wrote.  The round trips run on trainmq's embedded queue
with a local store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trainmq
from tests.store.conftest import REGION, Moto
from trainmq.clock import FakeClock
from trainmq.errors import InvalidParameterValue, SQSError
from trainmq.store import InvalidPointer, LocalStore, S3Store
from trainmq.store.claimcheck import (
    DEFAULT_THRESHOLD,
    LEGACY_POINTER_CLASS,
    POINTER_CLASS,
    ClaimCheckClient,
    PayloadPointer,
    decode_pointer,
    embed_pointer,
    encode_pointer,
    is_pointer,
    split_receipt_handle,
)

LARGE = "x" * (DEFAULT_THRESHOLD + 1)


def large_body(tag: str) -> str:
    return json.dumps({"tag": tag, "tokens": list(range(60_000))})


# -- the format -------------------------------------------------------------------------


def test_pointer_is_byte_for_byte_the_extended_clients() -> None:
    body = encode_pointer(PayloadPointer("bucket", "key-1"))
    expected = json.dumps([POINTER_CLASS, {"s3BucketName": "bucket", "s3Key": "key-1"}])
    assert body == expected
    assert decode_pointer(body) == PayloadPointer("bucket", "key-1")
    legacy = encode_pointer(PayloadPointer("b", "k"), legacy=True)
    assert json.loads(legacy)[0] == LEGACY_POINTER_CLASS
    assert decode_pointer(legacy) == PayloadPointer("b", "k")


@pytest.mark.parametrize(
    "body",
    ["hello", "[]", '["x", {}]', json.dumps([POINTER_CLASS, {"s3BucketName": "b"}]), "{"],
)
def test_non_pointers_are_recognised(body: str) -> None:
    assert not is_pointer(body)
    with pytest.raises(InvalidPointer):
        decode_pointer(body)


def test_receipt_handle_embedding_round_trips() -> None:
    pointer = PayloadPointer("bucket", "claimcheck/0f-1")
    handle = embed_pointer("abc-def==", pointer)
    assert handle == (
        "-..s3BucketName..-bucket-..s3BucketName..--..s3Key..-claimcheck/0f-1-..s3Key..-abc-def=="
    )
    assert split_receipt_handle(handle) == ("abc-def==", pointer)
    assert split_receipt_handle("plain-handle") == ("plain-handle", None)


# -- interop with Amazon's extended client over moto -------------------------------------


@pytest.fixture
def extended_session() -> Any:
    """The extended client's session class, without its import-time patching of boto3."""
    import boto3
    import boto3.session

    saved = boto3.Session, boto3.session.Session, boto3.DEFAULT_SESSION
    try:
        from sqs_extended_client.client import SQSExtendedClientSession
    finally:
        boto3.Session, boto3.session.Session, boto3.DEFAULT_SESSION = saved
    return SQSExtendedClientSession


@pytest.fixture
def world(moto: Moto, extended_session: Any) -> Iterator[dict[str, Any]]:
    bucket = moto.new_bucket()
    sqs = moto.client("sqs")
    queue_url = sqs.create_queue(QueueName="prepare")["QueueUrl"]
    session = extended_session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    extended = session.client("sqs", endpoint_url=moto.endpoint)
    extended.large_payload_support = bucket
    extended.delete_payload_from_s3 = True
    extended.s3_client = moto.client("s3")
    yield {"bucket": bucket, "sqs": sqs, "url": queue_url, "extended": extended, "moto": moto}


def objects(moto: Moto, bucket: str) -> list[str]:
    listing = moto.client("s3").list_objects_v2(Bucket=bucket)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def test_trainmq_reads_what_the_extended_client_wrote(world: dict[str, Any]) -> None:
    body, moto, bucket = large_body("from-amazon"), world["moto"], world["bucket"]
    world["extended"].send_message(
        QueueUrl=world["url"],
        MessageBody=body,
        MessageAttributes={"run": {"DataType": "String", "StringValue": "r1"}},
    )
    [payload_key] = objects(moto, bucket)
    client = ClaimCheckClient(world["sqs"], S3Store(bucket, client=moto.client("s3")))
    [message] = client.receive_message(QueueUrl=world["url"], MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert message["Body"] == body
    assert message["MessageAttributes"] == {"run": {"DataType": "String", "StringValue": "r1"}}
    assert split_receipt_handle(message["ReceiptHandle"])[1] == PayloadPointer(bucket, payload_key)
    client.delete_message(QueueUrl=world["url"], ReceiptHandle=message["ReceiptHandle"])
    assert objects(moto, bucket) == []
    assert "Messages" not in world["sqs"].receive_message(QueueUrl=world["url"])


def test_the_extended_client_reads_what_trainmq_wrote(world: dict[str, Any]) -> None:
    body, moto, bucket = large_body("from-trainmq"), world["moto"], world["bucket"]
    store = S3Store(bucket, "payloads", client=moto.client("s3"))
    ClaimCheckClient(world["sqs"], store).send_message(QueueUrl=world["url"], MessageBody=body)
    [payload_key] = objects(moto, bucket)
    assert payload_key.startswith("payloads/claimcheck/")
    [message] = world["extended"].receive_message(QueueUrl=world["url"])["Messages"]
    assert message["Body"] == body
    world["extended"].delete_message(QueueUrl=world["url"], ReceiptHandle=message["ReceiptHandle"])
    assert objects(moto, bucket) == []
    assert "Messages" not in world["sqs"].receive_message(QueueUrl=world["url"])


def test_the_wire_format_trainmq_sends(world: dict[str, Any]) -> None:
    body, moto, bucket = large_body("wire"), world["moto"], world["bucket"]
    store = S3Store(bucket, client=moto.client("s3"))
    ClaimCheckClient(world["sqs"], store).send_message(QueueUrl=world["url"], MessageBody=body)
    [raw] = world["sqs"].receive_message(QueueUrl=world["url"], MessageAttributeNames=["All"])[
        "Messages"
    ]
    [payload_key] = objects(moto, bucket)
    assert raw["Body"] == encode_pointer(PayloadPointer(bucket, payload_key))
    assert raw["MessageAttributes"] == {
        "ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(len(body.encode()))}
    }
    with store.get(payload_key) as stream:
        assert stream.read().decode() == body


# -- round trips on the embedded queue with a local store -------------------------------


@pytest.fixture
def local_world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    store = LocalStore(tmp_path / "store")
    with trainmq.client(f"sqlite:///{tmp_path / 'queues.db'}", clock=FakeClock()) as sqs:
        url = sqs.create_queue(QueueName="train")["QueueUrl"]
        yield {"store": store, "sqs": sqs, "url": url, "client": ClaimCheckClient(sqs, store)}


def test_round_trip_with_the_local_store(local_world: dict[str, Any]) -> None:
    client, store, url = local_world["client"], local_world["store"], local_world["url"]
    body = large_body("local")
    client.send_message(QueueUrl=url, MessageBody=body)
    [key] = store.list_keys()
    raw = json.loads(
        local_world["sqs"].receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"]
    )
    assert raw == [POINTER_CLASS, {"s3BucketName": store.bucket_name, "s3Key": key}]
    [message] = client.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == body
    assert "MessageAttributes" not in message
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=60
    )
    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert list(store.list_keys()) == []
    assert "Messages" not in client.receive_message(QueueUrl=url, VisibilityTimeout=0)


def test_small_bodies_are_not_offloaded(local_world: dict[str, Any]) -> None:
    client, store, url = local_world["client"], local_world["store"], local_world["url"]
    client.send_message(QueueUrl=url, MessageBody="small")
    assert list(store.list_keys()) == []
    [message] = client.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == "small"
    assert split_receipt_handle(message["ReceiptHandle"])[1] is None


def test_threshold_counts_attributes_and_is_configurable(local_world: dict[str, Any]) -> None:
    store, sqs, url = local_world["store"], local_world["sqs"], local_world["url"]
    client = ClaimCheckClient(sqs, store, threshold=100)
    client.send_message(QueueUrl=url, MessageBody="b" * 90)
    assert list(store.list_keys()) == []
    attributes = {"stage": {"DataType": "String", "StringValue": "prepare"}}
    client.send_message(QueueUrl=url, MessageBody="b" * 90, MessageAttributes=attributes)
    assert len(list(store.list_keys())) == 1
    messages = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["stage"]
    )["Messages"]
    assert sorted(m["Body"] for m in messages) == ["b" * 90, "b" * 90]
    assert [m.get("MessageAttributes") for m in messages].count(attributes) == 1


def test_batches_offload_and_delete_payloads(local_world: dict[str, Any]) -> None:
    client, store, url = local_world["client"], local_world["store"], local_world["url"]
    bodies = {"big": large_body("b1"), "small": "tiny"}
    sent = client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": k, "MessageBody": v} for k, v in bodies.items()]
    )
    assert len(sent["Successful"]) == 2
    assert len(list(store.list_keys())) == 1
    messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in messages) == sorted(bodies.values())
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    client.change_message_visibility_batch(
        QueueUrl=url, Entries=[{**e, "VisibilityTimeout": 30} for e in entries]
    )
    assert len(client.delete_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 2
    assert list(store.list_keys()) == []


def test_payloads_can_outlive_their_messages(local_world: dict[str, Any]) -> None:
    store, sqs, url = local_world["store"], local_world["sqs"], local_world["url"]
    client = ClaimCheckClient(sqs, store, delete_payloads=False, always_through_store=True)
    client.send_message(QueueUrl=url, MessageBody="kept")
    [message] = client.receive_message(QueueUrl=url)["Messages"]
    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    [key] = store.list_keys()
    with store.get(key) as stream:
        assert stream.read() == b"kept"


def test_a_failed_send_leaves_no_payload(local_world: dict[str, Any]) -> None:
    client, store = local_world["client"], local_world["store"]
    missing = local_world["url"].rsplit("/", 1)[0] + "/missing"
    with pytest.raises(SQSError):
        client.send_message(QueueUrl=missing, MessageBody=LARGE)
    assert list(store.list_keys()) == []


def test_the_reserved_attribute_is_refused(local_world: dict[str, Any]) -> None:
    client, url = local_world["client"], local_world["url"]
    reserved = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "1"}}
    with pytest.raises(InvalidParameterValue, match="reserved"):
        client.send_message(QueueUrl=url, MessageBody=LARGE, MessageAttributes=reserved)


def test_legacy_pointers_are_read(local_world: dict[str, Any]) -> None:
    store, sqs, url = local_world["store"], local_world["sqs"], local_world["url"]
    ClaimCheckClient(sqs, store, legacy=True).send_message(QueueUrl=url, MessageBody=LARGE)
    raw = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MessageAttributeNames=["All"])
    assert "SQSLargePayloadSize" in raw["Messages"][0]["MessageAttributes"]
    [message] = local_world["client"].receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == LARGE


def test_a_pointer_into_another_store_is_refused(
    local_world: dict[str, Any], tmp_path: Path
) -> None:
    sqs, url = local_world["sqs"], local_world["url"]
    other = ClaimCheckClient(sqs, LocalStore(tmp_path / "elsewhere"))
    other.send_message(QueueUrl=url, MessageBody=LARGE)
    with pytest.raises(InvalidPointer, match="elsewhere"):
        local_world["client"].receive_message(QueueUrl=url)


def test_other_methods_pass_through(local_world: dict[str, Any]) -> None:
    client = local_world["client"]
    assert client.get_queue_url(QueueName="train")["QueueUrl"] == local_world["url"]
