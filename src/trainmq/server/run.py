"""Running the endpoint under uvicorn, with SQS-friendly graceful shutdown."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from ..errors import ConfigurationError
from ..queue.client import open_service
from .app import SQSApp
from .auth import load_credentials
from .connections import ConnectionLimits, limited_protocol
from .guard import HostPolicy
from .metrics import Metrics
from .peers import Peers
from .traffic import Traffic
from .workers import WorkerContext

__all__ = ["ServerConfig", "build_app", "is_loopback", "per_process_limits", "serve"]

log = logging.getLogger("trainmq.server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 9324
    db: str | Path | None = None  # a file, sqlite:///path or postgresql://...
    credentials: Path | None = None
    region: str = "us-east-1"
    account_id: str = "000000000000"
    durability: str = "full"
    log_level: str = "warning"
    #: Host names served beside loopback and ``host`` (``--allowed-host``; ``*``: any).
    allowed_hosts: tuple[str, ...] = ()
    #: Serve /metrics without a signature even with credentials (``--metrics-public``).
    metrics_public: bool = False
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: Server processes sharing the port and the database (``--workers``).
    workers: int = 1


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


def _http_implementation(requested: Any) -> str:
    """The uvicorn HTTP implementation "auto" picks: httptools when it is installed."""
    if requested in ("h11", "httptools"):
        return str(requested)
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


class _Server(uvicorn.Server):
    """uvicorn's server, ending long polls before it waits for connections to close."""

    def __init__(self, config: uvicorn.Config, app: SQSApp) -> None:
        super().__init__(config)
        self.sqs_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.sqs_app.release_waiters()
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after shutdown; SIGTERM is a normal stop here,
        # so the database is closed and the process exits 0.
        if sig == signal.SIGTERM and sig in getattr(self, "_captured_signals", []):
            self._captured_signals.remove(sig)


def build_app(config: ServerConfig, worker: WorkerContext | None = None) -> SQSApp:
    """The application of one server process; ``worker`` places it among ``--workers N``
    (its metrics and traffic counts are then summed over the processes)."""
    credentials = load_credentials(config.credentials) if config.credentials else None
    if credentials is None and not is_loopback(config.host):
        raise ConfigurationError(
            f"refusing to serve on {config.host} without --credentials: anyone on the network "
            "could read and delete messages. Bind to 127.0.0.1 or give a credentials file."
        )
    service = open_service(
        config.db,
        durability=config.durability,
        region=config.region,
        account_id=config.account_id,
        endpoint=f"http://{config.host}:{config.port}",
        durable_receives=True,  # remote consumers' handles outlive a power loss of this host
    )
    app = SQSApp(
        service,
        credentials=credentials,
        hosts=HostPolicy.for_server(config.host, config.allowed_hosts),
        metrics_public=config.metrics_public,
    )
    if worker is not None:
        name = str(worker.index)
        app.metrics = Metrics(Peers(worker.state_dir / "metrics", name))
        app.traffic = Traffic(peers=Peers(worker.state_dir / "traffic", name))
    return app


def serve(
    config: ServerConfig,
    app: SQSApp | None = None,
    sock: socket.socket | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve until SIGTERM/SIGINT; then end long polls, finish requests, close the database.

    ``app`` is the application ``build_app(config)`` made, when the caller has added
    routes to it (the console); by default it is built here. ``sock``: a listening
    socket to accept from (one process of ``--workers N``) instead of binding one.
    """
    app = app or build_app(config)
    if app.credentials is None:
        log.warning("no credentials file: accepting any credentials on loopback %s", config.host)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=25,
        proxy_headers=False,  # SigV4 signs the Host the client used; never rewrite it
        **uvicorn_options,
    )
    uv_config.http = limited_protocol(_http_implementation(uv_config.http), config.limits)
    try:
        _Server(uv_config, app).run(sockets=None if sock is None else [sock])
    finally:
        app.metrics.close()
        app.traffic.close()
        app.regions.close()
        app.service.backend.close()


def per_process_limits(limits: ConnectionLimits, workers: int) -> ConnectionLimits:
    """Each of ``workers`` processes' share of the connection cap (the total stays the cap)."""
    share = max(1, -(-limits.max_connections // workers))
    return ConnectionLimits(limits.header_timeout, limits.body_timeout, share)
