"""Every error trainmq raises, in one tree.

::

    TrainmqError
    ├── SQSError                    an SQS API error: AWS's code, HTTP status and wording
    │   ├── QueueDoesNotExist       AWS.SimpleQueueService.NonExistentQueue
    │   ├── QueueNameExists         QueueAlreadyExists
    │   ├── QueueDeletedRecently    ... and every other error SQS defines
    │   ├── InvalidParameterValue
    │   └── ...
    ├── PermanentFailure            a handler's verdict: dead-letter this message now
    ├── StoreError                  the dataset store (trainmq.store.errors: InvalidKey,
    │                               BlobNotFound, BlobExists, ...)
    ├── StorageError                the database cannot be used
    │   ├── NotATrainmqDatabase     a foreign or corrupt file (left untouched)
    │   ├── SchemaTooNew            written by a newer trainmq
    │   └── BackendUnavailable      a remote SQS endpoint cannot be reached
    └── ConfigurationError          a bad address or option

``SQSError`` instances look like botocore's ``ClientError`` (``exc.response``),
so code that handles errors from boto3 handles ours unchanged.  Each error has
three names, as AWS's service model gives them:

* ``code``: the modelled shape name (``QueueDoesNotExist``), or for an error the
  model does not list, the Query code (``InvalidParameterValue``);
* ``json_type``: the JSON protocol's ``__type``. Modelled errors are
  ``com.amazonaws.sqs#<shape>``; the rest are AWS's service-framework types
  (``com.amazon.coral.service#InvalidParameterValueException``). boto3 picks
  the exception class from it, so a modelled error raises its own class;
* ``query_code``: the Query protocol's code and the JSON protocol's
  ``x-amzn-query-error`` header, which boto3 shows as ``Error.Code``.

Status codes and Query codes of modelled errors are those of the
``awsQueryError`` traits in AWS's Smithy model of SQS (botocore's copy drops
them); the others are as AWS answers them.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: The namespace of SQS's modelled shapes, as the JSON protocol's ``__type`` names them.
MODEL_NAMESPACE = "com.amazonaws.sqs"
#: The namespace of errors AWS's service framework raises outside SQS's model.
SERVICE_NAMESPACE = "com.amazon.coral.service"

__all__ = [
    "AccessDenied",
    "BackendUnavailable",
    "BatchEntryIdsNotDistinct",
    "BatchRequestTooLong",
    "ConfigurationError",
    "EmptyBatchRequest",
    "IncompleteSignature",
    "InvalidAction",
    "InvalidAddress",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "InvalidClientTokenId",
    "InvalidIdFormat",
    "InvalidMessageContents",
    "InvalidParameterValue",
    "InvalidSecurity",
    "KmsAccessDenied",
    "KmsDisabled",
    "KmsInvalidKeyUsage",
    "KmsInvalidState",
    "KmsNotFound",
    "KmsOptInRequired",
    "KmsThrottled",
    "MessageNotInflight",
    "MissingAuthenticationToken",
    "MissingParameter",
    "NotATrainmqDatabase",
    "OverLimit",
    "PermanentFailure",
    "PurgeQueueInProgress",
    "QueueDeletedRecently",
    "QueueDoesNotExist",
    "QueueNameExists",
    "ReceiptHandleIsInvalid",
    "RemoteError",
    "RequestEntityTooLarge",
    "RequestExpired",
    "RequestThrottled",
    "ResourceNotFoundException",
    "SQSError",
    "SchemaTooNew",
    "SignatureDoesNotMatch",
    "StorageError",
    "TooManyEntriesInBatchRequest",
    "TrainmqError",
    "UnsupportedOperation",
]


class TrainmqError(Exception):
    """The root of every error trainmq raises on purpose."""


class SQSError(TrainmqError):
    """An error of the SQS API, carrying AWS's code, status and wording."""

    code: ClassVar[str] = "InternalError"
    query_code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 400
    sender_fault: ClassVar[bool] = True
    default_message: ClassVar[str] = ""
    modelled: ClassVar[bool] = True
    json_type: ClassVar[str] = "com.amazon.coral.service#InternalFailure"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "json_type" not in cls.__dict__ and cls.modelled:
            cls.json_type = f"{MODEL_NAMESPACE}#{cls.code}"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    @property
    def response(self) -> dict[str, Any]:
        """The error as botocore's ``ClientError.response`` shapes it."""
        return {
            "Error": {
                "Code": self.query_code,
                "Message": self.message,
                "QueryErrorCode": self.json_type.rsplit("#", 1)[-1],
                "Type": "Sender" if self.sender_fault else "Receiver",
            },
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }

    def __str__(self) -> str:
        return f"{self.query_code}: {self.message}"


class QueueDoesNotExist(SQSError):
    """SQS error ``QueueDoesNotExist``."""

    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"
    default_message = "The specified queue does not exist."


class QueueNameExists(SQSError):
    """SQS error ``QueueNameExists``."""

    code = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class QueueDeletedRecently(SQSError):
    """SQS error ``QueueDeletedRecently``."""

    code = "QueueDeletedRecently"
    query_code = "AWS.SimpleQueueService.QueueDeletedRecently"
    default_message = (
        "You must wait 60 seconds after deleting a queue before you can create "
        "another with the same name."
    )


class PurgeQueueInProgress(SQSError):
    """SQS error ``PurgeQueueInProgress``."""

    code = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"
    status = 403


class EmptyBatchRequest(SQSError):
    """SQS error ``EmptyBatchRequest``."""

    code = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class TooManyEntriesInBatchRequest(SQSError):
    """SQS error ``TooManyEntriesInBatchRequest``."""

    code = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class BatchEntryIdsNotDistinct(SQSError):
    """SQS error ``BatchEntryIdsNotDistinct``."""

    code = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(SQSError):
    """SQS error ``InvalidBatchEntryId``."""

    code = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"
    default_message = (
        "A batch entry id can only contain alphanumeric characters, hyphens and "
        "underscores. It can be at most 80 letters long."
    )


class BatchRequestTooLong(SQSError):
    """SQS error ``BatchRequestTooLong``."""

    code = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


class MessageNotInflight(SQSError):
    """SQS error ``MessageNotInflight``."""

    code = "MessageNotInflight"
    query_code = "AWS.SimpleQueueService.MessageNotInflight"
    default_message = "The message is not in flight."


class UnsupportedOperation(SQSError):
    """SQS error ``UnsupportedOperation``."""

    code = "UnsupportedOperation"
    query_code = "AWS.SimpleQueueService.UnsupportedOperation"


class ReceiptHandleIsInvalid(SQSError):
    """SQS error ``ReceiptHandleIsInvalid``."""

    code = "ReceiptHandleIsInvalid"
    query_code = "ReceiptHandleIsInvalid"
    status = 404


class InvalidIdFormat(SQSError):
    """SQS error ``InvalidIdFormat``."""

    code = "InvalidIdFormat"
    query_code = "InvalidIdFormat"


class InvalidAttributeName(SQSError):
    """SQS error ``InvalidAttributeName``."""

    code = "InvalidAttributeName"
    query_code = "InvalidAttributeName"


class InvalidAttributeValue(SQSError):
    """SQS error ``InvalidAttributeValue``."""

    code = "InvalidAttributeValue"
    query_code = "InvalidAttributeValue"


class InvalidMessageContents(SQSError):
    """SQS error ``InvalidMessageContents``."""

    code = "InvalidMessageContents"
    query_code = "InvalidMessageContents"


class InvalidAddress(SQSError):
    """SQS error ``InvalidAddress``."""

    code = "InvalidAddress"
    query_code = "InvalidAddress"
    status = 404


class InvalidSecurity(SQSError):
    """SQS error ``InvalidSecurity``."""

    code = "InvalidSecurity"
    query_code = "InvalidSecurity"
    status = 403


class OverLimit(SQSError):
    """SQS error ``OverLimit``."""

    code = "OverLimit"
    query_code = "OverLimit"
    status = 403


class RequestThrottled(SQSError):
    """SQS error ``RequestThrottled``."""

    code = "RequestThrottled"
    query_code = "RequestThrottled"
    status = 403


class ResourceNotFoundException(SQSError):
    """SQS error ``ResourceNotFoundException``."""

    code = "ResourceNotFoundException"
    query_code = "ResourceNotFoundException"
    status = 404


class KmsAccessDenied(SQSError):
    """SQS error ``KmsAccessDenied``: the caller may not use the queue's KMS key."""

    code = "KmsAccessDenied"
    query_code = "KMS.AccessDeniedException"


class KmsDisabled(SQSError):
    """SQS error ``KmsDisabled``: the queue's KMS key is disabled."""

    code = "KmsDisabled"
    query_code = "KMS.DisabledException"


class KmsInvalidKeyUsage(SQSError):
    """SQS error ``KmsInvalidKeyUsage``: the KMS key cannot be used this way."""

    code = "KmsInvalidKeyUsage"
    query_code = "KMS.InvalidKeyUsageException"


class KmsInvalidState(SQSError):
    """SQS error ``KmsInvalidState``: the KMS key is in a state that refuses the request."""

    code = "KmsInvalidState"
    query_code = "KMS.InvalidStateException"


class KmsNotFound(SQSError):
    """SQS error ``KmsNotFound``: the queue's KMS key does not exist."""

    code = "KmsNotFound"
    query_code = "KMS.NotFoundException"


class KmsOptInRequired(SQSError):
    """SQS error ``KmsOptInRequired``: the KMS key needs an opt-in first."""

    code = "KmsOptInRequired"
    query_code = "KMS.OptInRequired"
    status = 403


class KmsThrottled(SQSError):
    """SQS error ``KmsThrottled``: KMS throttled the request."""

    code = "KmsThrottled"
    query_code = "KMS.ThrottlingException"


class InvalidParameterValue(SQSError):
    """SQS error ``InvalidParameterValue``."""

    code = "InvalidParameterValue"
    query_code = "InvalidParameterValue"
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#InvalidParameterValueException"


class MissingParameter(SQSError):
    """SQS error ``MissingParameter``."""

    code = "MissingParameter"
    query_code = "MissingParameter"
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#MissingRequiredParameterException"


class InternalError(SQSError):
    """SQS error ``InternalError``."""

    code = "InternalError"
    query_code = "InternalError"
    status = 500
    default_message = "We encountered an internal error. Please try again."
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#InternalFailure"
    sender_fault = False


class AccessDenied(SQSError):
    """The caller's key is not granted this action on this queue."""

    code = "AccessDenied"
    query_code = "AccessDenied"
    status = 403
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#AccessDeniedException"


class InvalidClientTokenId(SQSError):
    """The access key id is unknown."""

    code = "InvalidClientTokenId"
    query_code = "InvalidClientTokenId"
    status = 403
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class SignatureDoesNotMatch(SQSError):
    """The request's signature is not the one its secret key produces."""

    code = "SignatureDoesNotMatch"
    query_code = "SignatureDoesNotMatch"
    status = 403
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    )


class IncompleteSignature(SQSError):
    """The Authorization header or signed query parameters are malformed."""

    code = "IncompleteSignature"
    query_code = "IncompleteSignature"
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#IncompleteSignatureException"


class MissingAuthenticationToken(SQSError):
    """The request carries no signature at all."""

    code = "MissingAuthenticationToken"
    query_code = "MissingAuthenticationToken"
    status = 403
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#MissingAuthenticationTokenException"
    default_message = "Request is missing Authentication Token"


class RequestExpired(SQSError):
    """The request's date is more than 15 minutes from the server's clock."""

    code = "RequestExpired"
    query_code = "RequestExpired"
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#InvalidSignatureException"


class InvalidAction(SQSError):
    """The Query protocol's Action names no SQS action."""

    code = "InvalidAction"
    query_code = "InvalidAction"
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#UnknownOperationException"


class RequestEntityTooLarge(SQSError):
    """The request body is larger than the server accepts."""

    code = "RequestEntityTooLarge"
    query_code = "RequestEntityTooLarge"
    status = 413
    modelled = False
    json_type = f"{SERVICE_NAMESPACE}#RequestEntityTooLargeException"


class RemoteError(SQSError):
    """An SQS error returned by a remote endpoint that trainmq has no class for."""

    def __init__(self, code: str, query_code: str, message: str, status: int) -> None:
        super().__init__(message)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "query_code", query_code)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "json_type", f"{MODEL_NAMESPACE}#{code}")


#: Every SQS error class by its modelled name.
SQS_ERRORS: dict[str, type[SQSError]] = {
    cls.code: cls for cls in SQSError.__subclasses__() if cls is not RemoteError
}


class StorageError(TrainmqError):
    """The queue database cannot be opened or used."""


class NotATrainmqDatabase(StorageError):
    """The file is not a trainmq database (foreign or corrupt); it was left untouched."""


class SchemaTooNew(StorageError):
    """The database was written by a newer trainmq schema version."""


class BackendUnavailable(StorageError):
    """A remote queue endpoint could not be reached or answered nonsense."""


class PermanentFailure(TrainmqError):
    """Raised (or returned for one item) by a handler: this message can never succeed.

    The worker moves it to the queue's dead-letter queue at once, with ``reason``
    recorded as a message attribute, instead of retrying it until maxReceiveCount.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigurationError(TrainmqError):
    """A backend address, option or combination of options is not valid."""
