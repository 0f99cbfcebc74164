"""The queue contract and SQS semantics, independent of any storage."""

from .backend import QueueBackend
from .client import LocalClient, open_service
from .service import ACTIONS, SQSService

__all__ = ["ACTIONS", "LocalClient", "QueueBackend", "SQSService", "open_service"]
