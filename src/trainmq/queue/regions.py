"""Queues of more than one region behind one endpoint.

In SQS a queue belongs to a region: the same name in two regions is two
queues, with two URLs and two ARNs.  An endpoint serving the embedded engine
keeps its own region's queues in its database, as it always has, and each other
region's in a database of its own beside it (``queues.db`` ->
``queues.eu-west-1.db``).  A region is a separate namespace in SQS (no
dead-letter queue, move task or ARN reaches across regions), and one file per
region gives exactly that without a second meaning of a queue's name inside
the engine.

A backend that is itself an SQS endpoint (AWS, a remote ``trainmq serve``)
answers for its own region only; requests for another region are answered by
it, as before.  Region names come from clients, so only names of AWS's form are
accepted, and only ``limit`` regions are opened.
"""

from __future__ import annotations

import re
import threading

from ..errors import InvalidParameterValue
from .service import SQSService

__all__ = ["REGION_PATTERN", "Regions", "is_region"]

#: AWS's region names: us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1, cn-north-1 ...
REGION_PATTERN = re.compile(r"[a-z]{2}(?:-[a-z]+){1,2}-\d{1,2}")


def is_region(text: str) -> bool:
    return REGION_PATTERN.fullmatch(text) is not None


class Regions:
    """The services of every region one endpoint answers for, opened on first use."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._opened: dict[tuple[int, str], SQSService] = {}

    def service(self, home: SQSService, region: str | None) -> SQSService:
        """The service for ``region`` beside ``home`` (``home`` itself for its own region)."""
        backend = home.backend
        if region is None or region == backend.region or not is_region(region):
            return home
        path = getattr(backend, "path", None)
        if path is None or not hasattr(backend, "durability"):
            return home  # a remote SQS endpoint: one region
        key = (id(backend), region)
        with self._lock:
            found = self._opened.get(key)
            if found is not None:
                return found
            if len(self._opened) >= self.limit:
                raise InvalidParameterValue(
                    f"Value {region} for parameter Region is invalid. Reason: this endpoint "
                    f"serves at most {self.limit} regions besides its own."
                )
            found = self._opened[key] = self._open(home, region)
            return found

    @staticmethod
    def _open(home: SQSService, region: str) -> SQSService:
        from .sqlite import SqliteBackend

        backend = home.backend
        path = backend.path  # type: ignore[attr-defined]
        regional = SqliteBackend(
            path.with_name(f"{path.stem}.{region}{path.suffix}"),
            clock=backend.clock,  # type: ignore[attr-defined]
            durability=backend.durability,  # type: ignore[attr-defined]
            region=region,
            account_id=backend.account_id,
        )
        return SQSService(regional, endpoint=home.endpoint)

    def release_waiters(self) -> None:
        """End every long poll of every region's backend now."""
        with self._lock:
            services = list(self._opened.values())
        for service in services:
            release = getattr(service.backend, "release_waiters", None)
            if release is not None:
                release()

    def close(self, home: SQSService | None = None) -> None:
        """Close the regions opened beside ``home`` (every region when None)."""
        with self._lock:
            keys = [k for k in self._opened if home is None or k[0] == id(home.backend)]
            services = [self._opened.pop(k) for k in keys]
        for service in services:
            service.backend.close()
