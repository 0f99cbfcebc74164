"""Running the endpoint under uvicorn, with SQS-friendly graceful shutdown."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from ..errors import ConfigurationError
from ..queue.client import open_service
from .app import SQSApp
from .auth import load_credentials

__all__ = ["ServerConfig", "build_app", "is_loopback", "serve"]

log = logging.getLogger("trainmq.server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 9324
    db: Path | None = None
    credentials: Path | None = None
    region: str = "us-east-1"
    account_id: str = "000000000000"
    durability: str = "full"
    log_level: str = "warning"


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


def build_app(config: ServerConfig) -> SQSApp:
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
    return SQSApp(service, credentials=credentials)


def serve(config: ServerConfig, app: SQSApp | None = None, **uvicorn_options: Any) -> None:
    """Serve until SIGTERM/SIGINT; then end long polls, finish requests, close the database.

    ``app`` is the application ``build_app(config)`` made, when the caller has added
    routes to it (the console); by default it is built here.
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
    try:
        _Server(uv_config, app).run()
    finally:
        app.service.backend.close()
