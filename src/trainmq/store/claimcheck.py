"""Claim-check for large messages, in the format of Amazon's SQS Extended Client Library.

A body too large for the queue is stored in a blob store and the message
carries a pointer instead, exactly as Amazon's extended clients (Java, Python)
write it, so either side reads the other's messages::

    body:       ["software.amazon.payloadoffloading.PayloadS3Pointer",
                 {"s3BucketName": "<bucket>", "s3Key": "<key>"}]
    attribute:  ExtendedPayloadSize = <original body size in bytes> (DataType Number)

Receiving resolves the pointer and hands back the original body; the receipt
handle is prefixed with the payload's location, as the extended clients do::

    -..s3BucketName..-<bucket>-..s3BucketName..--..s3Key..-<key>-..s3Key..-<receipt handle>

so ``delete_message`` can delete the payload too.  Where the extended clients
delete the payload *before* the message, :class:`ClaimCheckClient` deletes the
message first: a failed message delete then leaves the payload for the
redelivery instead of leaving a message whose payload is gone.

For an S3 store, ``s3BucketName`` is the bucket and ``s3Key`` the full object
key (prefix included).  For a local store, ``s3BucketName`` is the store's
``bucket_name`` (by default its directory's name) and ``s3Key`` the blob key:
the pointer only has to mean the same thing to the writer and the reader.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trainmq.errors import InvalidParameterValue
from trainmq.store.base import BlobStore
from trainmq.store.errors import InvalidPointer

__all__ = [
    "BUCKET_MARKER",
    "DEFAULT_THRESHOLD",
    "KEY_MARKER",
    "LEGACY_POINTER_CLASS",
    "LEGACY_SIZE_ATTRIBUTE",
    "POINTER_CLASS",
    "SIZE_ATTRIBUTE",
    "ClaimCheckClient",
    "PayloadPointer",
    "decode_pointer",
    "embed_pointer",
    "encode_pointer",
    "is_pointer",
    "message_size",
    "split_receipt_handle",
]

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
BUCKET_MARKER = "-..s3BucketName..-"
KEY_MARKER = "-..s3Key..-"
#: Bodies (plus attributes) above this many bytes are offloaded: SQS's classic limit.
DEFAULT_THRESHOLD = 262_144
#: The extended client's name for a message attribute that fixes the payload's key.
KEY_ATTRIBUTE = "S3Key"
_MAX_USER_ATTRIBUTES = 9  # SQS allows 10; the size attribute takes one


@dataclass(frozen=True)
class PayloadPointer:
    """Where an offloaded body lives, as the extended client library names it."""

    bucket_name: str
    key: str


def encode_pointer(pointer: PayloadPointer, *, legacy: bool = False) -> str:
    """The message body that points at ``pointer`` (byte-for-byte the Python client's)."""
    details = {"s3BucketName": pointer.bucket_name, "s3Key": pointer.key}
    return json.dumps([LEGACY_POINTER_CLASS if legacy else POINTER_CLASS, details])


def decode_pointer(body: str) -> PayloadPointer:
    """The pointer a message body carries; raise :class:`InvalidPointer` if it is not one."""
    try:
        decoded = json.loads(body)
    except ValueError:
        raise InvalidPointer("the message body is not a payload pointer (not JSON)") from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 2
        or decoded[0] not in (POINTER_CLASS, LEGACY_POINTER_CLASS)
        or not isinstance(decoded[1], dict)
    ):
        raise InvalidPointer("the message body is not a payload pointer")
    bucket, key = decoded[1].get("s3BucketName"), decoded[1].get("s3Key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise InvalidPointer("the payload pointer lacks s3BucketName or s3Key")
    return PayloadPointer(bucket, key)


def is_pointer(body: str) -> bool:
    """Whether ``body`` is a payload pointer."""
    try:
        decode_pointer(body)
    except InvalidPointer:
        return False
    return True


def embed_pointer(receipt_handle: str, pointer: PayloadPointer) -> str:
    """The receipt handle the extended clients hand out for an offloaded message."""
    return (
        f"{BUCKET_MARKER}{pointer.bucket_name}{BUCKET_MARKER}"
        f"{KEY_MARKER}{pointer.key}{KEY_MARKER}{receipt_handle}"
    )


def split_receipt_handle(receipt_handle: str) -> tuple[str, PayloadPointer | None]:
    """The queue's own receipt handle and, for an offloaded message, its payload's pointer."""
    if BUCKET_MARKER not in receipt_handle or KEY_MARKER not in receipt_handle:
        return receipt_handle, None
    bucket = _between(receipt_handle, BUCKET_MARKER)
    key = _between(receipt_handle, KEY_MARKER)
    original = receipt_handle[receipt_handle.rindex(KEY_MARKER) + len(KEY_MARKER) :]
    return original, PayloadPointer(bucket, key)


def message_size(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """Body plus attributes in bytes, counted as the extended clients count them."""
    size = len(body.encode("utf-8"))
    for name, value in attributes.items():
        size += len(name.encode("utf-8"))
        for field in ("DataType", "StringValue", "BinaryValue"):
            part = value.get(field)
            if isinstance(part, str):
                size += len(part.encode("utf-8"))
            elif isinstance(part, bytes | bytearray):
                size += len(part)
    return size


def _between(text: str, marker: str) -> str:
    start = text.index(marker) + len(marker)
    return text[start : text.index(marker, start)]


class ClaimCheckClient:
    """A boto3-shaped SQS client that offloads large bodies to a blob store.

    Wraps any object with boto3's SQS method names (a ``boto3.client("sqs")``,
    ``trainmq.client(...)``).  The offloading methods are overridden; every
    other method passes through unchanged.  ``threshold`` is in bytes (body
    plus attributes); ``always_through_store`` offloads every body;
    ``delete_payloads`` deletes a payload once its message is deleted.
    """

    def __init__(
        self,
        sqs: Any,
        store: BlobStore | Callable[[], BlobStore],
        *,
        threshold: int = DEFAULT_THRESHOLD,
        always_through_store: bool = False,
        delete_payloads: bool = True,
        key_prefix: str = "claimcheck/",
        legacy: bool = False,
    ) -> None:
        self.sqs = sqs
        self._store = store
        self.threshold = threshold
        self.always_through_store = always_through_store
        self.delete_payloads = delete_payloads
        self.key_prefix = key_prefix
        self.legacy = legacy

    @property
    def store(self) -> BlobStore:
        """The store (a factory given instead is called once, on first use)."""
        if not hasattr(self._store, "put"):
            self._store = self._store()
        return self._store  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        if name in ("sqs", "_store"):
            raise AttributeError(name)
        return getattr(self.sqs, name)

    # -- sending ---------------------------------------------------------------------------

    def send_message(self, **kwargs: Any) -> Any:
        request, key = self._offload(dict(kwargs))
        try:
            return self.sqs.send_message(**request)
        except BaseException:
            if key is not None:
                self.store.delete(key)
            raise

    def send_message_batch(self, **kwargs: Any) -> Any:
        entries, keys = [], []
        for entry in kwargs.get("Entries", []):
            offloaded, key = self._offload(dict(entry))
            entries.append(offloaded)
            keys.append(key)
        try:
            response = self.sqs.send_message_batch(**{**kwargs, "Entries": entries})
        except BaseException:
            self._delete_keys(keys)
            raise
        failed = {item.get("Id") for item in response.get("Failed", [])}
        self._delete_keys([k for e, k in zip(entries, keys, strict=True) if e.get("Id") in failed])
        return response

    def _offload(self, request: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        body = request.get("MessageBody", "")
        attributes = dict(request.get("MessageAttributes") or {})
        large = message_size(body, attributes) > self.threshold
        if not body or not (large or self.always_through_store):
            return request, None
        for reserved in (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE):
            if reserved in attributes:
                raise InvalidParameterValue(f"Message attribute name {reserved} is reserved.")
        if len(attributes) > _MAX_USER_ATTRIBUTES:
            raise InvalidParameterValue(
                f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
                f"[{_MAX_USER_ATTRIBUTES}] for a message stored in the blob store."
            )
        key_attribute = attributes.get(KEY_ATTRIBUTE, {}).get("StringValue")
        key = key_attribute or f"{self.key_prefix}{uuid.uuid4()}"
        encoded = body.encode("utf-8")
        self.store.put(key, encoded)
        bucket, object_key = self.store.location(key)
        attributes[LEGACY_SIZE_ATTRIBUTE if self.legacy else SIZE_ATTRIBUTE] = {
            "DataType": "Number",
            "StringValue": str(len(encoded)),
        }
        request["MessageBody"] = encode_pointer(
            PayloadPointer(bucket, object_key), legacy=self.legacy
        )
        request["MessageAttributes"] = attributes
        return request, key

    # -- receiving -------------------------------------------------------------------------

    def receive_message(self, **kwargs: Any) -> Any:
        requested = list(kwargs.get("MessageAttributeNames") or [])
        sizes = (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE)
        missing = [name for name in sizes if not _covers(requested, name)]
        kwargs["MessageAttributeNames"] = [*requested, *missing]
        response = self.sqs.receive_message(**kwargs)
        for message in response.get("Messages", []):
            self.resolve(message)
        return response

    def resolve(self, message: dict[str, Any]) -> dict[str, Any]:
        """Replace an offloaded message's body and receipt handle in place (and return it)."""
        attributes = message.get("MessageAttributes") or {}
        if SIZE_ATTRIBUTE not in attributes and LEGACY_SIZE_ATTRIBUTE not in attributes:
            return message
        pointer = decode_pointer(message["Body"])
        message["Body"] = self.fetch(pointer)
        message["ReceiptHandle"] = embed_pointer(message["ReceiptHandle"], pointer)
        attributes.pop(SIZE_ATTRIBUTE, None)
        attributes.pop(LEGACY_SIZE_ATTRIBUTE, None)
        if not attributes:
            message.pop("MessageAttributes", None)
            message.pop("MD5OfMessageAttributes", None)
        return message

    def fetch(self, pointer: PayloadPointer) -> str:
        """The original body a pointer refers to."""
        key = self.store.key_at(pointer.bucket_name, pointer.key)
        with self.store.get(key) as stream:
            payload = stream.read()
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPointer(f"the payload under {key!r} is not UTF-8 text") from exc

    # -- deleting and visibility -------------------------------------------------------------

    def delete_message(self, **kwargs: Any) -> Any:
        original, pointer = split_receipt_handle(kwargs["ReceiptHandle"])
        response = self.sqs.delete_message(**{**kwargs, "ReceiptHandle": original})
        self._delete_payloads([pointer])
        return response

    def delete_message_batch(self, **kwargs: Any) -> Any:
        entries, pointers = [], {}
        for entry in kwargs.get("Entries", []):
            original, pointer = split_receipt_handle(entry["ReceiptHandle"])
            entries.append({**entry, "ReceiptHandle": original})
            pointers[entry.get("Id")] = pointer
        response = self.sqs.delete_message_batch(**{**kwargs, "Entries": entries})
        done = [pointers.get(item.get("Id")) for item in response.get("Successful", [])]
        self._delete_payloads(done)
        return response

    def change_message_visibility(self, **kwargs: Any) -> Any:
        original, _ = split_receipt_handle(kwargs["ReceiptHandle"])
        return self.sqs.change_message_visibility(**{**kwargs, "ReceiptHandle": original})

    def change_message_visibility_batch(self, **kwargs: Any) -> Any:
        entries = [
            {**entry, "ReceiptHandle": split_receipt_handle(entry["ReceiptHandle"])[0]}
            for entry in kwargs.get("Entries", [])
        ]
        return self.sqs.change_message_visibility_batch(**{**kwargs, "Entries": entries})

    def _delete_payloads(self, pointers: list[PayloadPointer | None]) -> None:
        if not self.delete_payloads:
            return
        for pointer in pointers:
            if pointer is not None:
                self.store.delete(self.store.key_at(pointer.bucket_name, pointer.key))

    def _delete_keys(self, keys: list[str | None]) -> None:
        for key in keys:
            if key is not None:
                self.store.delete(key)


def _covers(requested: list[str], attribute: str) -> bool:
    """Whether the requested attribute names already include ``attribute``."""
    for name in requested:
        if name in ("All", ".*", attribute):
            return True
        if name.endswith(".*") and attribute.startswith(name[:-2]):
            return True
    return False
