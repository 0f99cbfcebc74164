"""``trainmq serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigurationError
from .exit_codes import ExitCode
from .main import CliFailure, DbOption, _run, app, err


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
) -> None:
    """Serve the SQS API (JSON and Query protocols) for boto3, the AWS CLI and Celery."""
    from ..server import ServerConfig, serve
    from ..server.run import build_app

    config = ServerConfig(
        host=host,
        port=port,
        db=db,
        credentials=credentials,
        region=region,
        account_id=account_id,
        log_level=log_level,
    )

    def body() -> None:
        try:
            build_app(config).service.backend.close()  # refuse bad settings before binding
        except ConfigurationError as exc:
            raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
        mode = f"credentials from {credentials}" if credentials else "no credentials (loopback)"
        err.print(f"trainmq serving SQS on http://{host}:{port} ({mode})", highlight=False)
        serve(config)

    _run(body)
