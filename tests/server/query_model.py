"""botocore's SQS model turned back into the Query-protocol model SQS had until 2023.

botocore now ships SQS as a JSON-protocol service, but its model keeps the
``flattened`` traits of the old Query model. Setting the protocol back to
``query`` and restoring the ``locationName``s of flattened members gives a
client that speaks the form-encoded/XML protocol (as older SDKs do), so the
same botocore code serializes requests and parses the server's XML.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config

from .conftest import REGION

#: Flattened lists whose members SQS's Query API names differently from the shape.
_LIST_MEMBERS = {
    "AttributeNameList": "AttributeName",
    "MessageAttributeNameList": "MessageAttributeName",
    "MessageSystemAttributeList": "MessageSystemAttributeName",
    "QueueUrlList": "QueueUrl",
    "TagKeyList": "TagKey",
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
    "StringList": "StringListValue",
    "BinaryList": "BinaryListValue",
}
#: Error codes of the Query API that differ from the error shape's name.
_QUERY_ERROR_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    **{
        name: f"AWS.SimpleQueueService.{name}"
        for name in (
            "QueueDeletedRecently",
            "PurgeQueueInProgress",
            "EmptyBatchRequest",
            "TooManyEntriesInBatchRequest",
            "BatchEntryIdsNotDistinct",
            "InvalidBatchEntryId",
            "BatchRequestTooLong",
            "MessageNotInflight",
            "UnsupportedOperation",
        )
    },
}
#: Structure members holding flattened maps, by member name.
_MAP_MEMBERS = {
    "Attributes": "Attribute",
    "MessageAttributes": "MessageAttribute",
    "MessageSystemAttributes": "MessageSystemAttribute",
    "Tags": "Tag",
    "tags": "Tag",
}


def query_model() -> dict[str, Any]:
    """The SQS service model of the installed botocore, set to the Query protocol."""
    model = copy.deepcopy(botocore.loaders.Loader().load_service_model("sqs", "service-2"))
    metadata = model["metadata"]
    metadata["protocol"] = "query"
    metadata["protocols"] = ["query"]
    metadata["xmlNamespace"] = "http://queue.amazonaws.com/doc/2012-11-05/"
    for key in ("jsonVersion", "targetPrefix", "awsQueryCompatible"):
        metadata.pop(key, None)
    for name, operation in model["operations"].items():
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"
    shapes = model["shapes"]
    for shape_name, shape in shapes.items():
        if shape["type"] == "list":
            member_shape = shape["member"]["shape"]
            if shapes[member_shape]["type"] == "structure":
                shape["member"]["locationName"] = member_shape
            elif shape_name in _LIST_MEMBERS:
                shape["member"]["locationName"] = _LIST_MEMBERS[shape_name]
        elif shape["type"] == "map":
            key_name = "Key" if shape_name == "TagMap" else "Name"
            shape["key"]["locationName"] = key_name
            shape["value"]["locationName"] = "Value"
        elif shape["type"] == "structure":
            if shape.get("exception"):
                code = _QUERY_ERROR_CODES.get(shape_name, shape_name)
                shape["error"] = {"code": code, "httpStatusCode": 400, "senderFault": True}
            for member_name, member in shape["members"].items():
                if shapes[member["shape"]]["type"] == "map":
                    member["locationName"] = _MAP_MEMBERS.get(member_name, member_name)
    return model


def query_client(url: str, directory: Path, key: tuple[str, str] = ("x", "x")) -> Any:
    """A botocore SQS client speaking the Query protocol, loading the model from ``directory``."""
    model = query_model()
    target = directory / "sqs" / model["metadata"]["apiVersion"]
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model), "utf-8")
    session = botocore.session.get_session()
    loader = botocore.loaders.Loader(extra_search_paths=[str(directory)])
    session.register_component("data_loader", loader)
    return session.create_client(
        "sqs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"total_max_attempts": 1}),
    )
