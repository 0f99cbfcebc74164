"""Fixtures for tests of both wire protocols: the same calls over JSON and Query.

``sqs_wire`` runs a test on the embedded engine, on ``trainmq serve`` through
boto3 (JSON 1.0) and through a botocore client set to the Query protocol, on
trainmq's own remote client, and on moto over both protocols.  ``endpoint``
gives tests that speak raw HTTP a fresh server (trainmq's or moto's) and its
address.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.server.query_model import query_client

from .conftest import Backend, MotoServer, TrainmqServer, _make_backend

#: (backend, protocol) pairs; the id is the backend's name, with "-query" for Query.
WIRE_BACKENDS = ["sqlite", "server", "server-query", "remote", "moto", "moto-query"]


class _Param:
    """A stand-in for pytest's request.param, to build the contract suite's backends."""

    def __init__(self, request: pytest.FixtureRequest, param: str) -> None:
        self._request = request
        self.param = param

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _server_url(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "moto":
        moto: MotoServer = request.getfixturevalue("moto_server")
        return moto.endpoint
    server: TrainmqServer = request.getfixturevalue("trainmq_server")
    return server.endpoint


def wire_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The contract suite's backend for ``request.param``; its client speaks Query for -query."""
    name, _, protocol = str(request.param).partition("-")
    backend = _make_backend(_Param(request, name), tmp_path, real_time=False)  # type: ignore[arg-type]
    if protocol == "query":
        backend.client = query_client(_server_url(request, name), tmp_path / "query-model")
        backend.name = f"{name}-query"
    return backend


@dataclass
class Endpoint:
    """A freshly reset SQS endpoint to speak raw HTTP to."""

    name: str
    url: str
    backend: Backend

    def xfail_on(self, backend: str, reason: str) -> None:
        self.backend.xfail_on(backend, reason)


def endpoint_for(request: pytest.FixtureRequest, tmp_path: Path) -> Endpoint:
    name = str(request.param)
    backend = _make_backend(request, tmp_path, real_time=False)
    return Endpoint(name, _server_url(request, name), backend)
