"""What a console view is handed: the request, the viewer, and the server's parts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..queue.service import SQSService
from ..server.authorize import accesses
from ..server.traffic import Traffic
from ..store import BlobStore
from ..training.runs import RunRegistry
from .http import Request, Response
from .layout import Page
from .markup import Markup
from .security import Guard, Viewer

__all__ = ["Context", "Handler", "Route"]


@dataclass(frozen=True)
class Context:
    page: Page
    viewer: Viewer
    service: SQSService
    traffic: Traffic
    store: BlobStore | None
    clock: Clock
    guard: Guard

    @property
    def request(self) -> Request:
        return self.page.request

    @property
    def registry(self) -> RunRegistry | None:
        return None if self.store is None else RunRegistry(self.store)

    def csrf_field(self) -> Markup:
        return self.page.csrf_field()

    def require_request(self, action: str, params: Mapping[str, Any]) -> None:
        """Refuse (403) unless the viewer may do everything the SQS request would do:
        every queue it reads or writes, resolved as the API's grant check resolves it."""
        if self.viewer.key is None:
            return
        for needed, queue in accesses(self.service, action, params):
            self.viewer.require(needed, queue)


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    """``pattern`` is a regular expression over the path below ``/console``; its named
    groups become the handler's keyword arguments."""

    method: str
    pattern: str
    handler: Handler
