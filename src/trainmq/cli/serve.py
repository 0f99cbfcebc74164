"""``trainmq serve``."""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ConfigurationError
from ..queue.client import describe_address, is_postgres_address, sqlite_path
from ..store import StoreError
from .app import CliFailure, DbOption, app, err, missing_extra, run_command
from .exit_codes import ExitCode

if TYPE_CHECKING:
    from ..server import ServerConfig, SQSApp
    from ..server.workers import WorkerContext


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(envvar="TRAINMQ_HOST", help="Bind address.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="TRAINMQ_PORT", min=1, max=65535, help="Port.")
    ] = 9324,
    credentials: Annotated[
        Path | None,
        typer.Option(
            envvar="TRAINMQ_CREDENTIALS",
            metavar="FILE",
            help="TOML file of access keys and grants; required unless bound to a loopback "
            "address.",
        ),
    ] = None,
    region: Annotated[str, typer.Option(help="Region in queue ARNs.")] = "us-east-1",
    account_id: Annotated[
        str, typer.Option(help="Account id in queue URLs and ARNs.")
    ] = "000000000000",
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    db: DbOption = None,
    console: Annotated[
        bool,
        typer.Option(
            "--console/--no-console",
            help="Serve the web console at /console (queues, dead letters, training runs).",
        ),
    ] = True,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="TRAINMQ_STORE",
            metavar="PATH_OR_URI",
            help="Dataset store the console reads training runs from: file:///path, a path "
            "or s3://bucket/prefix (default ./.trainmq/store).",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            envvar="TRAINMQ_ALLOWED_HOST",
            metavar="NAME",
            help="Host name clients use to reach the server, beside loopback and --host "
            "(repeatable; '*' allows any). Other Host headers "
            "are refused, against DNS rebinding.",
        ),
    ] = None,
    metrics_public: Annotated[
        bool,
        typer.Option(
            "--metrics-public",
            help="With --credentials, serve /metrics (every queue's name and depth) without "
            "a signed request.",
        ),
    ] = False,
    header_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send a request's headers.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send a request's body.")
    ] = 30.0,
    max_connections: Annotated[
        int, typer.Option(help="Open connections beyond this are closed at once.")
    ] = 1024,
    workers: Annotated[
        int | None,
        typer.Option(
            envvar="TRAINMQ_WORKERS",
            min=1,
            help="Server processes sharing the port and the database (default: the number of "
            "CPU cores; 1: a single process).",
        ),
    ] = None,
    console_token: Annotated[
        str | None,
        typer.Option(
            metavar="ACCESS_KEY_ID",
            help="Print a console sign-in token for this access key (valid 12 hours; it "
            "carries the key's grants). Needs --credentials.",
        ),
    ] = None,
) -> None:
    """Serve the SQS API (JSON and Query protocols) for boto3, the AWS CLI and Celery, and the
    web console."""
    from ..server import ServerConfig, serve
    from ..server.connections import ConnectionLimits
    from ..server.run import build_app

    def body() -> None:
        config = ServerConfig(
            host=host,
            port=port,
            db=db if db is None or is_postgres_address(db) else sqlite_path(db),
            credentials=credentials,
            region=region,
            account_id=account_id,
            log_level=log_level,
            allowed_hosts=tuple(allowed_host or ()),
            metrics_public=metrics_public,
            limits=ConnectionLimits(header_timeout, body_timeout, max_connections),
            workers=workers or os.cpu_count() or 1,
        )
        if console_token is not None and (credentials is None or not console):
            raise CliFailure(
                "--console-token needs --credentials and the console (no --no-console)",
                ExitCode.USAGE,
            )
        try:
            app = build_app(config)  # refuses bad settings before binding
        except ConfigurationError as exc:
            raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
        try:
            token = _mount_console(app, store, console_token) if console else None
        except (ConfigurationError, StoreError) as exc:
            app.service.backend.close()
            raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
        except ImportError as exc:
            app.service.backend.close()
            raise missing_extra(exc, "an s3:// --store", "aws") from exc
        if config.workers > 1:
            _serve_processes(config, app, console, store, (console_token, token))
            return
        try:
            _check_bind(host, port)
        except CliFailure:
            app.service.backend.close()
            raise
        _banner(config, console, store, (console_token, token))
        serve(config, app)

    run_command(body)


def _serve_processes(
    config: ServerConfig,
    checked: SQSApp,
    console: bool,
    store: str | None,
    token: tuple[str | None, str | None],
) -> None:
    """``--workers N``: the settings were checked by building ``checked`` (which also made
    the database); N processes now serve one socket, each with an application of its own."""
    from ..server.workers import bind_socket, run_workers

    checked.regions.close()
    checked.service.backend.close()
    try:
        sock = bind_socket(config.host, config.port)
    except OSError as exc:
        raise CliFailure(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc} (choose "
            "another --port, or stop what uses it)",
            ExitCode.PORT_UNAVAILABLE,
        ) from None
    _banner(config, console, store, token)
    main = functools.partial(_serve_child, config, console, store)
    if not run_workers(main, sock, config.workers):
        raise CliFailure("server processes kept exiting (see the errors above)", ExitCode.FAILURE)


def _serve_child(
    config: ServerConfig,
    console: bool,
    store: str | None,
    sock: socket.socket,
    worker: WorkerContext,
) -> None:
    """One of ``--workers N`` processes: its own application, served on the shared socket."""
    from ..console import mount_console
    from ..server import serve
    from ..server.run import build_app, per_process_limits
    from ..store import open_store

    config = dataclasses.replace(config, limits=per_process_limits(config.limits, worker.workers))
    app = build_app(config, worker)
    if console:
        mount_console(app, open_store(store), shared=worker.state_dir / "console")
    serve(config, app, sock)


def _check_bind(host: str, port: int) -> None:
    """Fail before saying "serving" when the address cannot be bound (in use, not ours)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise CliFailure(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another --port, "
            "or stop what uses it)",
            ExitCode.PORT_UNAVAILABLE,
        ) from None


def _banner(
    config: ServerConfig, console: bool, store: str | None, token: tuple[str | None, str | None]
) -> None:
    """What a newcomer needs to see at start: where the data is and who may use it."""
    base = f"http://{config.host}:{config.port}"
    if config.credentials:
        auth = f"SigV4 with the keys in {config.credentials}"
    else:
        auth = "none: any credentials are accepted (loopback only)"
    lines = [
        f"trainmq serving SQS on {base}",
        f"  database: {describe_address(config.db)}",
        f"  auth: {auth}",
    ]
    if config.workers > 1:
        lines.append(f"  processes: {config.workers} (--workers), sharing the port and database")
    if console:
        lines.append(f"  store: {store or '.trainmq/store'} (training runs in the console)")
        lines.append(f"  console: {base}/console")
    if token[1] is not None:
        lines.append(f"  console token for {token[0]} (12 hours): {token[1]}")
    for line in lines:
        err.print(line, highlight=False, markup=False, soft_wrap=True)


def _mount_console(app: SQSApp, store: str | None, token_key: str | None) -> str | None:
    """Mount the console on ``app``; the sign-in token for ``token_key`` when asked for."""
    from ..console import mount_console
    from ..store import open_store

    console = mount_console(app, open_store(store))
    if token_key is None:
        return None
    try:
        return console.guard.console_token(token_key)
    except KeyError:
        raise ConfigurationError(
            f"--console-token: access key {token_key} is not in the credentials file"
        ) from None
