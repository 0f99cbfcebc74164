"""Every SQS error trainmq can answer, against AWS's service model and AWS's answers.

botocore's SQS model lists the modelled exceptions but, since SQS moved to the
JSON protocol, no longer their Query codes and statuses; AWS's Smithy model
keeps them as ``awsQueryError`` traits (``MODELLED`` below copies them).  The
JSON ``__type`` of a modelled error is ``com.amazonaws.sqs#<shape>``; errors
outside the model carry AWS's service-framework types (``UNMODELLED``, as AWS
answers them: the ``__type`` and ``x-amzn-query-error`` pairs recorded from AWS).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.handlers
import botocore.loaders
import botocore.parsers
import botocore.session
import pytest

from trainmq import errors

#: shape: (Query code, HTTP status), from the awsQueryError traits of AWS's SQS model.
MODELLED = {
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "BatchRequestTooLong": ("AWS.SimpleQueueService.BatchRequestTooLong", 400),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "InvalidAddress": ("InvalidAddress", 404),
    "InvalidAttributeName": ("InvalidAttributeName", 400),
    "InvalidAttributeValue": ("InvalidAttributeValue", 400),
    "InvalidBatchEntryId": ("AWS.SimpleQueueService.InvalidBatchEntryId", 400),
    "InvalidIdFormat": ("InvalidIdFormat", 400),
    "InvalidMessageContents": ("InvalidMessageContents", 400),
    "InvalidSecurity": ("InvalidSecurity", 403),
    "KmsAccessDenied": ("KMS.AccessDeniedException", 400),
    "KmsDisabled": ("KMS.DisabledException", 400),
    "KmsInvalidKeyUsage": ("KMS.InvalidKeyUsageException", 400),
    "KmsInvalidState": ("KMS.InvalidStateException", 400),
    "KmsNotFound": ("KMS.NotFoundException", 400),
    "KmsOptInRequired": ("KMS.OptInRequired", 403),
    "KmsThrottled": ("KMS.ThrottlingException", 400),
    "MessageNotInflight": ("AWS.SimpleQueueService.MessageNotInflight", 400),
    "OverLimit": ("OverLimit", 403),
    "PurgeQueueInProgress": ("AWS.SimpleQueueService.PurgeQueueInProgress", 403),
    "QueueDeletedRecently": ("AWS.SimpleQueueService.QueueDeletedRecently", 400),
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400),
    "QueueNameExists": ("QueueAlreadyExists", 400),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", 404),
    "RequestThrottled": ("RequestThrottled", 403),
    "ResourceNotFoundException": ("ResourceNotFoundException", 404),
    "TooManyEntriesInBatchRequest": ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400),
}
CORAL = "com.amazon.coral.service#"
#: Query code: (JSON __type, HTTP status) of the errors outside the model.
UNMODELLED = {
    "InvalidParameterValue": (CORAL + "InvalidParameterValueException", 400),
    "MissingParameter": (CORAL + "MissingRequiredParameterException", 400),
    "InvalidAction": (CORAL + "UnknownOperationException", 400),
    "AccessDenied": (CORAL + "AccessDeniedException", 403),
    "InvalidClientTokenId": (CORAL + "UnrecognizedClientException", 403),
    "SignatureDoesNotMatch": (CORAL + "InvalidSignatureException", 403),
    "IncompleteSignature": (CORAL + "IncompleteSignatureException", 400),
    "MissingAuthenticationToken": (CORAL + "MissingAuthenticationTokenException", 403),
    "RequestExpired": (CORAL + "InvalidSignatureException", 400),
    "RequestEntityTooLarge": (CORAL + "RequestEntityTooLargeException", 413),
    "InternalError": (CORAL + "InternalFailure", 500),
}


def _botocore_exception_shapes() -> set[str]:
    model = botocore.loaders.Loader().load_service_model("sqs", "service-2")
    return {name for name, shape in model["shapes"].items() if shape.get("exception")}


def test_every_modelled_exception_has_its_class() -> None:
    modelled = {name for name, cls in errors.SQS_ERRORS.items() if cls.modelled}
    assert modelled == _botocore_exception_shapes() == set(MODELLED)


@pytest.mark.parametrize("shape", sorted(MODELLED))
def test_modelled_error_codes(shape: str) -> None:
    cls = errors.SQS_ERRORS[shape]
    assert (cls.query_code, cls.status) == MODELLED[shape]
    assert cls.json_type == f"com.amazonaws.sqs#{shape}"
    assert cls.sender_fault


@pytest.mark.parametrize("query_code", sorted(UNMODELLED))
def test_unmodelled_error_types(query_code: str) -> None:
    cls = next(c for c in errors.SQS_ERRORS.values() if c.query_code == query_code)
    assert not cls.modelled
    assert (cls.json_type, cls.status) == UNMODELLED[query_code]


def _parsed_by_boto3(error: errors.SQSError) -> Any:
    """What boto3 raises when the server answers ``error`` over JSON."""
    from trainmq.server import json_protocol

    status, headers, body = json_protocol.encode_error(error)
    session = botocore.session.get_session()
    client = session.create_client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    parser = botocore.parsers.create_parser("json")
    operation = client.meta.service_model.operation_model("GetQueueUrl")
    response = {
        "status_code": status,
        "headers": {k.decode(): v.decode() for k, v in headers},
        "body": body,
    }
    parsed = parser.parse(response, operation.output_shape)
    # botocore's own hook turns the parsed error into the class boto3 raises.
    context: dict[str, Any] = {}
    botocore.handlers._handle_sqs_compatible_error(parsed, context)  # type: ignore[attr-defined]
    code = context.get("error_code_override") or parsed["Error"]["Code"]
    return parsed, client.exceptions.from_code(code)


@pytest.mark.parametrize("cls", sorted(errors.SQS_ERRORS.values(), key=lambda c: c.code))
def test_boto3_raises_the_modelled_class_and_shows_the_query_code(
    cls: type[errors.SQSError],
) -> None:
    parsed, raised = _parsed_by_boto3(cls("message"))
    assert parsed["Error"]["Code"] == cls.query_code
    assert parsed["Error"]["QueryErrorCode"] == cls.json_type.rsplit("#", 1)[-1]
    if cls.modelled:
        assert raised.__name__ == cls.code
    else:
        assert raised.__name__ == "ClientError"
    # The embedded engine's errors look the same as boto3's.
    local = cls("message").response["Error"]
    assert {k: local[k] for k in ("Code", "QueryErrorCode")} == {
        k: parsed["Error"][k] for k in ("Code", "QueryErrorCode")
    }
    assert json.loads(json.dumps(local))  # plain data
