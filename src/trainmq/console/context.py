"""What a console view is handed: the request, the viewer, and the server's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock
from ..queue.service import SQSService
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


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    """``pattern`` is a regular expression over the path below ``/console``; its named
    groups become the handler's keyword arguments."""

    method: str
    pattern: str
    handler: Handler
