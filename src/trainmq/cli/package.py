"""``trainmq package lambda``: the AWS Lambda deployment zip of the intake stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigurationError
from .app import CliFailure, app, missing_extra, out, run_command
from .exit_codes import ExitCode

package_app = typer.Typer(help="Build deployment artifacts.", no_args_is_help=True)
app.add_typer(package_app, name="package")


@package_app.command("lambda")
def package_lambda(
    output: Annotated[Path, typer.Option("--output", "-o", help="The zip file to write.")] = Path(
        "dist/trainmq-lambda.zip"
    ),
    runtime: Annotated[
        str, typer.Option(help="The Lambda runtime the zip is for (python3.11 or newer).")
    ] = "python3.12",
    architecture: Annotated[
        str, typer.Option(help="The Lambda architecture: x86_64 or arm64.")
    ] = "x86_64",
    wheels: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            help="A folder of wheels for compiled dependencies whose installed build does not "
            "fit the runtime; fetched wheels are kept there for the next build.",
            show_default=False,
        ),
    ] = None,
    fetch: Annotated[
        bool,
        typer.Option(
            "--fetch/--no-fetch",
            help="Download a compiled dependency's wheel for the runtime with pip when the "
            "installed build does not fit (--no-fetch: never reach the network).",
        ),
    ] = True,
) -> None:
    """Build the deployment zip from the installed trainmq and what its intake stage imports.

    The same installed packages always give the same bytes.  The training extras
    (torch, numpy, tokenizers, matplotlib) are not in it: those stages run on
    `trainmq worker` hosts.
    """

    def body() -> None:
        try:
            from ..packaging.lambda_zip import build
        except ImportError as exc:
            raise missing_extra(exc, "trainmq package lambda", "deploy") from exc
        try:
            report = build(
                output, runtime=runtime, architecture=architecture, wheels=wheels, fetch=fetch
            )
        except ConfigurationError as exc:
            raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
        except OSError as exc:
            raise CliFailure(f"cannot write {output}: {exc}", ExitCode.FAILURE) from exc
        out.print(
            f"wrote {report.path} for {runtime} {architecture}: {report.size / 1e6:.1f} MB, "
            f"{report.entries} files, sha256 {report.sha256}",
            highlight=False,
            soft_wrap=True,
        )
        for source in report.sources:
            out.print(f"  {source.name} {source.version} ({source.origin})", highlight=False)

    run_command(body)
