"""``SqsBackend``: the queue contract over any SQS endpoint, through boto3.

``sqs://`` (or ``sqs://REGION``) is Amazon SQS itself, configured from the
usual AWS environment; ``http(s)://host:port`` is any SQS-compatible endpoint,
such as a remote ``trainmq serve``.  Requests are validated by the service
above before they leave; errors the endpoint returns come back as trainmq's
SQS errors with the endpoint's codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlparse

from ..errors import SQS_ERRORS, BackendUnavailable, ConfigurationError, RemoteError, SQSError
from .attributes import COMPUTED_ATTRIBUTES
from .model import (
    MessageAttributeValue,
    MoveTask,
    NewMessage,
    QueueRecord,
    ReceivedMessage,
    ReceiveRequest,
    SendResult,
)

__all__ = ["SqsBackend"]

T = TypeVar("T")
_BY_QUERY_CODE = {cls.query_code: cls for cls in SQS_ERRORS.values()}


def _translate(exc: Exception) -> Exception:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        cls = _BY_QUERY_CODE.get(code) or SQS_ERRORS.get(code)
        if cls is not None and cls is not RemoteError:
            try:
                return cls(message)
            except TypeError:
                pass
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        return RemoteError(code, code, message, status)
    if isinstance(exc, BotoCoreError):
        return BackendUnavailable(f"SQS endpoint unavailable: {exc}")
    return exc


def _entry_error(code: str, message: str) -> SQSError:
    """A batch entry's failure, as the error class its code names."""
    cls = SQS_ERRORS.get(code) or _BY_QUERY_CODE.get(code)
    if cls is not None:
        try:
            return cls(message)
        except TypeError:
            pass
    return RemoteError(code, code, message, 400)


def _attributes_out(attributes: dict[str, MessageAttributeValue]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        if value.binary_value is not None:
            out[name] = {"DataType": value.data_type, "BinaryValue": value.binary_value}
        else:
            out[name] = {"DataType": value.data_type, "StringValue": value.string_value}
    return out


def _attributes_in(raw: dict[str, Any]) -> dict[str, MessageAttributeValue]:
    return {
        name: MessageAttributeValue(
            value["DataType"], value.get("StringValue"), value.get("BinaryValue")
        )
        for name, value in raw.items()
    }


def _chunks(items: Sequence[T], size: int = 10) -> Iterator[tuple[int, Sequence[T]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


class SqsBackend:
    """A ``QueueBackend`` that forwards to an SQS endpoint."""

    def __init__(self, client: Any, *, region: str, account_id: str | None = None) -> None:
        self.client = client
        self.region = region
        self._account_id = account_id
        self._urls: dict[str, str] = {}

    @classmethod
    def from_address(cls, address: str) -> SqsBackend:
        """``sqs://[REGION]`` for AWS, ``http(s)://host:port[?region=R&account=A]`` otherwise."""
        import boto3

        parsed = urlparse(address)
        query = dict(part.split("=", 1) for part in parsed.query.split("&") if "=" in part)
        if parsed.scheme == "sqs":
            region = (
                parsed.netloc
                or os.environ.get("AWS_REGION")
                or os.environ.get("AWS_DEFAULT_REGION")
            )
            if not region:
                raise ConfigurationError(
                    "sqs:// needs a region: set AWS_REGION or write sqs://REGION"
                )
            return cls(boto3.client("sqs", region_name=region), region=region)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            region = query.get("region", "us-east-1")
            endpoint = f"{parsed.scheme}://{parsed.netloc}"
            has_keys = "AWS_ACCESS_KEY_ID" in os.environ or "AWS_PROFILE" in os.environ
            keys = (
                {}
                if has_keys
                else {"aws_access_key_id": "trainmq", "aws_secret_access_key": "trainmq"}
            )
            client = boto3.client("sqs", endpoint_url=endpoint, region_name=region, **keys)
            return cls(client, region=region, account_id=query.get("account", "000000000000"))
        raise ConfigurationError(f"unsupported SQS address {address!r}")

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            import boto3

            sts = boto3.client("sts", region_name=self.region)
            self._account_id = str(self._call(sts.get_caller_identity)["Account"])
        return self._account_id

    def _call(self, method: Callable[..., dict[str, Any]], **params: Any) -> dict[str, Any]:
        try:
            return method(**params)
        except Exception as exc:
            raise _translate(exc) from exc

    def _url(self, name: str) -> str:
        url = self._urls.get(name)
        if url is None:
            url = str(self._call(self.client.get_queue_url, QueueName=name)["QueueUrl"])
            self._urls[name] = url
        return url

    def _arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    # -- queues -----------------------------------------------------------------------------
    def create_queue(
        self, name: str, attributes: dict[str, str], tags: dict[str, str]
    ) -> QueueRecord:
        params: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if tags:
            params["tags"] = tags
        self._urls[name] = str(self._call(self.client.create_queue, **params)["QueueUrl"])
        return self.get_queue(name)

    def delete_queue(self, name: str) -> None:
        self._call(self.client.delete_queue, QueueUrl=self._url(name))
        self._urls.pop(name, None)

    def list_queues(self, prefix: str | None) -> list[str]:
        names: list[str] = []
        params: dict[str, Any] = {"MaxResults": 1000}
        if prefix:
            params["QueueNamePrefix"] = prefix
        while True:
            page = self._call(self.client.list_queues, **params)
            for url in page.get("QueueUrls", []):
                name = url.rstrip("/").rsplit("/", 1)[-1]
                self._urls[name] = url
                names.append(name)
            if not page.get("NextToken"):
                return sorted(names)
            params["NextToken"] = page["NextToken"]

    def _attributes(self, name: str) -> dict[str, str]:
        response = self._call(
            self.client.get_queue_attributes, QueueUrl=self._url(name), AttributeNames=["All"]
        )
        return dict(response.get("Attributes", {}))

    def get_queue(self, name: str) -> QueueRecord:
        attributes = self._attributes(name)
        tags = self._call(self.client.list_queue_tags, QueueUrl=self._url(name)).get("Tags", {})
        settable = {k: v for k, v in attributes.items() if k not in COMPUTED_ATTRIBUTES}
        return QueueRecord(
            name,
            settable,
            dict(tags),
            int(float(attributes.get("CreatedTimestamp", "0")) * 1000),
            int(float(attributes.get("LastModifiedTimestamp", "0")) * 1000),
        )

    def queue_counts(self, name: str) -> dict[str, int]:
        attributes = self._attributes(name)
        return {
            key: int(attributes.get(key, "0"))
            for key in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            )
        }

    def set_queue_attributes(self, name: str, attributes: dict[str, str]) -> None:
        self._call(
            self.client.set_queue_attributes, QueueUrl=self._url(name), Attributes=attributes
        )

    def purge_queue(self, name: str) -> None:
        self._call(self.client.purge_queue, QueueUrl=self._url(name))

    def tag_queue(self, name: str, tags: dict[str, str]) -> None:
        self._call(self.client.tag_queue, QueueUrl=self._url(name), Tags=tags)

    def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        self._call(self.client.untag_queue, QueueUrl=self._url(name), TagKeys=list(keys))

    def add_permission(
        self, name: str, label: str, accounts: Sequence[str], actions: Sequence[str]
    ) -> None:
        self._call(
            self.client.add_permission,
            QueueUrl=self._url(name),
            Label=label,
            AWSAccountIds=list(accounts),
            Actions=list(actions),
        )

    def remove_permission(self, name: str, label: str) -> None:
        self._call(self.client.remove_permission, QueueUrl=self._url(name), Label=label)

    def list_dead_letter_source_queues(self, name: str) -> list[str]:
        names: list[str] = []
        params: dict[str, Any] = {"QueueUrl": self._url(name), "MaxResults": 1000}
        while True:
            page = self._call(self.client.list_dead_letter_source_queues, **params)
            names += [u.rstrip("/").rsplit("/", 1)[-1] for u in page.get("queueUrls", [])]
            if not page.get("NextToken"):
                return names
            params["NextToken"] = page["NextToken"]

    # -- messages ---------------------------------------------------------------------------
    def send_messages(self, name: str, batch: Sequence[NewMessage]) -> list[SendResult | SQSError]:
        url, fifo = self._url(name), name.endswith(".fifo")
        results: list[SendResult | SQSError] = []
        for _, chunk in _chunks(batch):
            entries = []
            for index, message in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(index), "MessageBody": message.body}
                if not fifo:
                    entry["DelaySeconds"] = message.delay_seconds
                if message.message_attributes:
                    entry["MessageAttributes"] = _attributes_out(message.message_attributes)
                if message.system_attributes:
                    entry["MessageSystemAttributes"] = _attributes_out(message.system_attributes)
                if message.group_id is not None:
                    entry["MessageGroupId"] = message.group_id
                if message.deduplication_id is not None:
                    entry["MessageDeduplicationId"] = message.deduplication_id
                entries.append(entry)
            response = self._call(self.client.send_message_batch, QueueUrl=url, Entries=entries)
            by_id: dict[str, SendResult | SQSError] = {}
            for ok in response.get("Successful", []):
                by_id[ok["Id"]] = SendResult(
                    ok["MessageId"],
                    ok["MD5OfMessageBody"],
                    ok.get("MD5OfMessageAttributes"),
                    ok.get("MD5OfMessageSystemAttributes"),
                    ok.get("SequenceNumber"),
                )
            for failed in response.get("Failed", []):
                by_id[failed["Id"]] = _entry_error(failed["Code"], failed.get("Message", ""))
            results += [by_id[str(i)] for i in range(len(chunk))]
        return results

    def receive_messages(self, name: str, request: ReceiveRequest) -> list[ReceivedMessage]:
        params: dict[str, Any] = {
            "QueueUrl": self._url(name),
            "MaxNumberOfMessages": request.max_messages,
            "WaitTimeSeconds": int(request.wait_seconds),
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if request.visibility_timeout is not None:
            params["VisibilityTimeout"] = request.visibility_timeout
        if request.attempt_id is not None:
            params["ReceiveRequestAttemptId"] = request.attempt_id
        response = self._call(self.client.receive_message, **params)
        return [
            ReceivedMessage(
                m["MessageId"],
                m["ReceiptHandle"],
                m["Body"],
                m["MD5OfBody"],
                dict(m.get("Attributes", {})),
                _attributes_in(m.get("MessageAttributes", {})),
            )
            for m in response.get("Messages", [])
        ]

    def _batch(
        self, method: Callable[..., dict[str, Any]], name: str, entries: list[dict[str, Any]]
    ) -> list[SQSError | None]:
        results: list[SQSError | None] = []
        for start, chunk in _chunks(entries):
            response = self._call(method, QueueUrl=self._url(name), Entries=list(chunk))
            failed = {
                f["Id"]: _entry_error(f["Code"], f.get("Message", ""))
                for f in response.get("Failed", [])
            }
            results += [failed.get(str(start + i)) for i in range(len(chunk))]
        return results

    def delete_messages(self, name: str, receipt_handles: Sequence[str]) -> list[SQSError | None]:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(receipt_handles)]
        return self._batch(self.client.delete_message_batch, name, entries)

    def change_visibility(
        self, name: str, changes: Sequence[tuple[str, int]]
    ) -> list[SQSError | None]:
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": t}
            for i, (h, t) in enumerate(changes)
        ]
        return self._batch(self.client.change_message_visibility_batch, name, entries)

    # -- message-move tasks -----------------------------------------------------------------
    def start_move_task(
        self, source: str, destination: str | None, max_per_second: int | None
    ) -> str:
        params: dict[str, Any] = {"SourceArn": self._arn(source)}
        if destination is not None:
            params["DestinationArn"] = self._arn(destination)
        if max_per_second is not None:
            params["MaxNumberOfMessagesPerSecond"] = max_per_second
        return str(self._call(self.client.start_message_move_task, **params)["TaskHandle"])

    def cancel_move_task(self, task_handle: str) -> int:
        response = self._call(self.client.cancel_message_move_task, TaskHandle=task_handle)
        return int(response.get("ApproximateNumberOfMessagesMoved", 0))

    def list_move_tasks(self, source: str, max_results: int) -> list[MoveTask]:
        response = self._call(
            self.client.list_message_move_tasks, SourceArn=self._arn(source), MaxResults=max_results
        )
        return [
            MoveTask(
                task_handle=r.get("TaskHandle", ""),
                source=r["SourceArn"].rsplit(":", 1)[-1],
                destination=r["DestinationArn"].rsplit(":", 1)[-1]
                if r.get("DestinationArn")
                else None,
                max_per_second=r.get("MaxNumberOfMessagesPerSecond"),
                status=r["Status"],
                moved=int(r.get("ApproximateNumberOfMessagesMoved", 0)),
                to_move=int(r.get("ApproximateNumberOfMessagesToMove", 0)),
                started_at=int(r.get("StartedTimestamp", 0)),
                failure_reason=r.get("FailureReason"),
            )
            for r in response.get("Results", [])
        ]

    def close(self) -> None:
        self.client.close()
