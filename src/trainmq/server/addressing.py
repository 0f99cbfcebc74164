"""Which region a request addresses, and the URLs of queues in that region.

A queue URL names its region when it is not the server's own: in the path
(``http://host:port/queue/<region>/<account>/<name>``) or in the host
(``http://sqs.<region>.localhost:port/<account>/<name>``).  A URL of today's
form (``http://host:port/<account>/<name>``) is a queue of the server's own
region, whoever asks.  A request without a queue URL or ARN (CreateQueue,
ListQueues, GetQueueUrl) addresses the region of its signature's scope, as AWS
does, or for an unsigned request in open mode the region its own URL names.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..queue.regions import is_region

__all__ = ["endpoint_region", "queue_path_parts", "region_endpoint", "request_region"]

Scope = MutableMapping[str, Any]


def _region_of_url(url: str) -> str | None:
    """The region a URL names in its path or host; None for today's form."""
    try:
        parsed = urlparse(url)
    except ValueError:  # a client-chosen Host or QueueUrl such as "[": no region in it
        return None
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "queue" and is_region(parts[1]):
        return parts[1]
    return _region_of_host(parsed.netloc)


def _region_of_host(host: str) -> str | None:
    labels = host.split(":", 1)[0].split(".")
    if len(labels) >= 3 and labels[0] == "sqs" and is_region(labels[1]):
        return labels[1]
    return None


def _region_of_arn(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.count(":") == 5 and is_region(arn.split(":")[3]):
        return arn.split(":")[3]
    return None


def _region_of_task(handle: Any) -> str | None:
    try:
        return _region_of_arn(json.loads(base64.b64decode(str(handle)))["sourceArn"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def _signed_region(scope: Scope, headers: Mapping[str, str]) -> str | None:
    """The region of the SigV4 credential scope, from the header or the query string."""
    credential = ""
    authorization = headers.get("authorization", "")
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        credential = query.get("X-Amz-Credential", [""])[0]
    parts = credential.strip().split("/")
    return parts[2] if len(parts) == 5 and is_region(parts[2]) else None


def request_region(
    scope: Scope, headers: Mapping[str, str], params: Mapping[str, Any], home: str
) -> str:
    """The region whose queues the request acts on."""
    if isinstance(params.get("QueueUrl"), str) and params["QueueUrl"]:
        return _region_of_url(params["QueueUrl"]) or home
    for key in ("SourceArn", "DestinationArn"):
        if key in params:
            return _region_of_arn(params[key]) or home
    if "TaskHandle" in params:
        return _region_of_task(params["TaskHandle"]) or home
    own_url = f"//{headers.get('host', '')}{scope.get('path', '/')}"
    return _signed_region(scope, headers) or _region_of_url(own_url) or home


def endpoint_region(scope: Scope, headers: Mapping[str, str]) -> str | None:
    """The region the request's own URL names (``sqs.<region>.localhost`` or a path under
    ``/queue/<region>/``); None for the server's own endpoint."""
    return _region_of_url(f"//{headers.get('host', '')}{scope.get('path', '/')}")


def region_endpoint(scheme: str, host: str, region: str, home: str) -> str:
    """The endpoint queue URLs of ``region`` start with, for a client that used ``host``."""
    if region == home or _region_of_host(host) == region:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}/queue/{region}"


def queue_path_parts(path: str) -> list[str] | None:
    """The parts of a queue URL's path (``[account, name]``, after ``queue/<region>``)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) == 4 and parts[0] == "queue" and is_region(parts[1]):
        return parts
    if len(parts) == 2 and parts[0] != "queue":
        return parts
    return None
