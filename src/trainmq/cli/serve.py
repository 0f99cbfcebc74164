"""``trainmq serve``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ConfigurationError
from ..store import StoreError
from .exit_codes import ExitCode
from .main import CliFailure, DbOption, _run, app, err

if TYPE_CHECKING:
    from ..server import SQSApp


@app.command("serve")
def serve_command(
    host: Annotated[
        str, typer.Option(envvar="TRAINMQ_HOST", help="Bind address [env: TRAINMQ_HOST].")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="TRAINMQ_PORT", help="Port [env: TRAINMQ_PORT].")
    ] = 9324,
    credentials: Annotated[
        Path | None,
        typer.Option(
            envvar="TRAINMQ_CREDENTIALS",
            help="TOML file of access keys and grants [env: TRAINMQ_CREDENTIALS]; required "
            "unless bound to a loopback address.",
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
            help="Dataset store the console reads training runs from: file:///path, a path "
            "or s3://bucket/prefix [env: TRAINMQ_STORE; default ./.trainmq/store].",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            envvar="TRAINMQ_ALLOWED_HOST",
            help="Host name clients use to reach the server, beside loopback and --host "
            "(repeatable; '*' allows any) [env: TRAINMQ_ALLOWED_HOST]. Other Host headers "
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
    console_token: Annotated[
        str | None,
        typer.Option(
            metavar="ACCESS_KEY_ID",
            help="Print a console sign-in token for this access key (valid 12 hours; it "
            "carries the key's grants). Needs --credentials.",
        ),
    ] = None,
) -> None:
    """Serve the SQS API (JSON and Query protocols) for boto3, the AWS CLI and Celery,
    and the web console."""
    from ..server import ServerConfig, serve
    from ..server.connections import ConnectionLimits
    from ..server.run import build_app

    config = ServerConfig(
        host=host,
        port=port,
        db=db,
        credentials=credentials,
        region=region,
        account_id=account_id,
        log_level=log_level,
        allowed_hosts=tuple(allowed_host or ()),
        metrics_public=metrics_public,
        limits=ConnectionLimits(header_timeout, body_timeout, max_connections),
    )

    def body() -> None:
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
        mode = f"credentials from {credentials}" if credentials else "no credentials (loopback)"
        err.print(f"trainmq serving SQS on http://{host}:{port} ({mode})", highlight=False)
        if console:
            err.print(f"console: http://{host}:{port}/console", highlight=False)
        if token is not None:
            err.print(f"console token for {console_token} (12 hours): {token}", highlight=False)
        serve(config, app)

    _run(body)


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
