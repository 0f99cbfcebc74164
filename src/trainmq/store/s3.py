"""A blob store in an S3 bucket (or anything that speaks S3), through boto3.

* Create-only puts send ``If-None-Match: *``; S3 answers 412 PreconditionFailed
  when the key exists, which becomes :class:`BlobExists`.  S3 decides the race,
  so it holds between any number of machines.
* Blobs above ``multipart_threshold`` (8 MiB) go up as a multipart upload,
  part by part, with the same ``If-None-Match`` on completion for create-only;
  a failed upload is aborted so no parts are left behind.
* The content's sha256 is stored as object metadata ``sha256`` (so ``head``
  reports it without reading the object).  A stream is spooled (memory up to
  the threshold, then a temporary file) to hash it before the upload starts.

boto3 is imported only when the first request needs a client, so trainmq
without the S3 extra still imports.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from trainmq.errors import ConfigurationError
from trainmq.store.base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobStream,
    Payload,
    iter_payload,
    validate_key,
    validate_prefix,
)
from trainmq.store.errors import (
    BlobExists,
    BlobNotFound,
    InvalidKey,
    InvalidPointer,
    StoreError,
    StoreUnavailable,
)

__all__ = ["MIN_PART_SIZE", "S3Store"]

#: S3's smallest part (every part but the last).
MIN_PART_SIZE = 5 * 1024 * 1024
_MAX_PARTS = 10_000
_MIB = 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_EXISTS = {"PreconditionFailed", "412"}
#: S3 asks the caller to retry when two conditional writes overlap.
_CONFLICT = "ConditionalRequestConflict"
_CONFLICT_RETRIES = 5


class S3Store:
    """Blobs as objects in ``bucket`` under ``prefix``.

    ``client`` is a boto3 S3 client; without one, ``boto3.client("s3")`` is
    made on first use from the usual AWS environment (``AWS_ENDPOINT_URL_S3``
    points it at another endpoint).  ``list_page_size`` is how many keys one
    list request asks for (S3 returns at most 1000).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        multipart_threshold: int = 8 * _MIB,
        part_size: int = 8 * _MIB,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ConfigurationError(f"invalid S3 bucket name {bucket!r}")
        if part_size < MIN_PART_SIZE:
            raise ConfigurationError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's)")
        if multipart_threshold < 1:
            raise ConfigurationError("multipart_threshold must be positive")
        if not 1 <= list_page_size <= 1000:
            raise ConfigurationError("list_page_size must be between 1 and 1000 (S3's limit)")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidKey as exc:
                raise ConfigurationError(f"invalid S3 prefix {prefix!r}: {exc.reason}") from exc
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._client = client
        self._threshold = multipart_threshold
        self._part_size = part_size
        self._page_size = list_page_size

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    @property
    def address(self) -> str:
        return f"s3://{self._bucket}/{self._prefix.rstrip('/')}"

    @property
    def bucket_name(self) -> str:
        return self._bucket

    def __repr__(self) -> str:
        return f"S3Store({self.address!r})"

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str, data: Payload) -> BlobInfo:
        return self._upload(key, data, create=False)

    def create(self, key: str, data: Payload) -> BlobInfo:
        return self._upload(key, data, create=True)

    def delete(self, key: str) -> None:
        with _translate(key):
            self.client.delete_object(Bucket=self._bucket, Key=self._object_key(key))

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> BlobStream:
        with _translate(key):
            response = self.client.get_object(Bucket=self._bucket, Key=self._object_key(key))
        return BlobStream(key, int(response["ContentLength"]), response["Body"])

    def head(self, key: str) -> BlobInfo:
        with _translate(key):
            response = self.client.head_object(Bucket=self._bucket, Key=self._object_key(key))
        return BlobInfo(
            key=key,
            size=int(response["ContentLength"]),
            sha256=response.get("Metadata", {}).get("sha256"),
            etag=str(response["ETag"]),
        )

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except BlobNotFound:
            return False
        return True

    def sha256(self, key: str) -> str:
        recorded = self.head(key).sha256
        if recorded:
            return recorded
        digest = hashlib.sha256()
        with self.get(key) as stream:
            for chunk in stream:
                digest.update(chunk)
        return digest.hexdigest()

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``; objects whose names break the key rules are not listed."""
        validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        with _translate(prefix):
            pages = paginator.paginate(
                Bucket=self._bucket,
                Prefix=self._prefix + prefix,
                PaginationConfig={"PageSize": self._page_size},
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    key = entry["Key"][len(self._prefix) :]
                    with contextlib.suppress(InvalidKey):
                        yield validate_key(key)

    # -- claim-check pointers --------------------------------------------------------------

    def location(self, key: str) -> tuple[str, str]:
        return self._bucket, self._object_key(key)

    def key_at(self, bucket_name: str, object_key: str) -> str:
        if bucket_name != self._bucket or not object_key.startswith(self._prefix):
            raise InvalidPointer(
                f"the pointer names s3://{bucket_name}/{object_key}, outside {self.address}"
            )
        try:
            return validate_key(object_key[len(self._prefix) :])
        except InvalidKey as exc:
            raise InvalidPointer(f"the pointer's key is refused: {exc.reason}") from exc

    # -- internals -------------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def _upload(self, key: str, data: Payload, *, create: bool) -> BlobInfo:
        object_key = self._object_key(key)
        with _spooled(data, self._threshold) as (body, size, sha256):
            condition = {"IfNoneMatch": "*"} if create else {}
            target = {"Bucket": self._bucket, "Key": object_key}
            with _translate(key, create=create):
                if size <= self._threshold:
                    payload = body.read()
                    response = _retry_conflicts(
                        lambda: self.client.put_object(
                            **target, Body=payload, Metadata={"sha256": sha256}, **condition
                        )
                    )
                else:
                    response = self._multipart(target, body, size, sha256, condition)
        return BlobInfo(key=key, size=size, sha256=sha256, etag=str(response["ETag"]))

    def _multipart(
        self, target: dict[str, str], body: IO[bytes], size: int, sha256: str, condition: Any
    ) -> Any:
        upload = self.client.create_multipart_upload(**target, Metadata={"sha256": sha256})
        upload_id = upload["UploadId"]
        part_size = max(self._part_size, math.ceil(size / _MAX_PARTS))
        try:
            parts = []
            number = 1
            while chunk := body.read(part_size):
                part = self.client.upload_part(
                    **target, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"ETag": part["ETag"], "PartNumber": number})
                number += 1
            return _retry_conflicts(
                lambda: self.client.complete_multipart_upload(
                    **target, UploadId=upload_id, MultipartUpload={"Parts": parts}, **condition
                )
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(**target, UploadId=upload_id)
            raise


@contextlib.contextmanager
def _spooled(data: Payload, memory_limit: int) -> Iterator[tuple[IO[bytes], int, str]]:
    """``data`` as a rewound binary file, with its size and hex sha256."""
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=memory_limit) as spool:
        for chunk in iter_payload(data, CHUNK_SIZE):
            spool.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        spool.seek(0)
        yield spool, size, digest.hexdigest()


def _retry_conflicts(call: Callable[[], Any]) -> Any:
    """Run ``call``, retrying while S3 reports an overlapping conditional write."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            return call()
        except Exception as exc:
            if _error_code(exc) != _CONFLICT or attempt == _CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@contextlib.contextmanager
def _translate(key: str, *, create: bool = False) -> Iterator[None]:
    """Turn botocore's errors into the store's."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code in _NOT_FOUND:
                raise BlobNotFound(key) from exc
            if create and code in _EXISTS:
                raise BlobExists(key) from exc
            raise StoreUnavailable(f"S3 refused the request for {key!r}: {exc}") from exc
        if isinstance(exc, BotoCoreError):
            raise StoreUnavailable(f"S3 could not be reached for {key!r}: {exc}") from exc
        raise
