"""Connection limits below the ASGI application: header and body deadlines, a connection cap.

uvicorn waits as long as a client likes for the rest of a request's headers
and body, and accepts any number of connections; a few slow clients could hold
every socket and task.  Here each request gets ``header_timeout`` seconds from
its first byte (or from the connection's opening) to the end of its headers,
and ``body_timeout`` seconds from then to the end of its body; a connection
past either deadline is closed.  Connections beyond ``max_connections`` are
closed as they are accepted.  Long polls are not affected: the deadlines end
when the request has arrived, before the application answers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["ConnectionLimits", "limited_protocol"]

log = logging.getLogger("trainmq.server")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1024


class _Deadlines:
    """Mixed into uvicorn's HTTP protocol classes (h11 and httptools share these hooks)."""

    limits: ConnectionLimits
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    _deadline: asyncio.TimerHandle | None = None
    _part = ""

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.limits.max_connections:
            log.warning("refused a connection: %d open", len(self.connections) - 1)
            transport.close()
            return
        self._arm(self.limits.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if (before is None or not before.more_body) and self._deadline is None:
            self._arm(self.limits.header_timeout, "headers")  # the first bytes of a request
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not before:  # these bytes completed a request's headers
            if cycle.more_body:
                self._arm(self.limits.body_timeout, "body")
            else:
                self._disarm()
        elif not cycle.more_body and self._part == "body":
            self._disarm()

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(seconds, self._expire, part)
        self._part = part

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._part = ""

    def _expire(self, part: str) -> None:
        self._deadline = None
        log.warning("closed a connection whose request %s did not arrive in time", part)
        self.transport.close()


def limited_protocol(http: str, limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's ``http`` protocol class (``"h11"`` or ``"httptools"``) with ``limits``."""
    base: type[asyncio.Protocol]
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return type(f"Limited{base.__name__}", (_Deadlines, base), {"limits": limits})
