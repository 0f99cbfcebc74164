"""``trainmq worker``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ConfigurationError
from .app import BackendOption, CliFailure, DbOption, app, run_command
from .exit_codes import ExitCode
from .logs import LOG_FORMATS, configure_logging


@app.command("worker")
def worker_command(
    handler: Annotated[
        str, typer.Argument(metavar="MODULE:FUNCTION", help="Lambda handler, e.g. app:handle.")
    ],
    queue: Annotated[str, typer.Option("--queue", "-q", help="Queue name or URL.")],
    batch_size: Annotated[
        int, typer.Option(help="Messages per invocation: 1-10, up to 10000 with a window.")
    ] = 10,
    batching_window: Annotated[
        float, typer.Option(help="Seconds to gather a batch (0-300; not for FIFO queues).")
    ] = 0.0,
    concurrency: Annotated[int, typer.Option(help="Maximum concurrent batches.")] = 1,
    timeout: Annotated[
        float, typer.Option(help="Function timeout in seconds (1-900): the handler is killed.")
    ] = 3.0,
    long_running: Annotated[
        bool,
        typer.Option(
            "--long-running", help="Allow timeouts up to 12 h (heartbeats keep messages hidden)."
        ),
    ] = False,
    report_batch_item_failures: Annotated[
        bool,
        typer.Option(
            "--report-batch-item-failures", help="Honour {'batchItemFailures': [...]} responses."
        ),
    ] = False,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="PATTERN",
            help='FilterCriteria pattern on the record, e.g. \'{"body": {"kind": '
            '["train"]}}\' (repeatable; any may match). Messages matching none are DELETED, '
            "as Lambda does.",
        ),
    ] = None,
    heartbeat: Annotated[
        bool, typer.Option(help="Extend in-flight messages' visibility while handlers run.")
    ] = True,
    no_dlq: Annotated[
        bool, typer.Option("--no-dlq", help="Run on a queue without a RedrivePolicy.")
    ] = False,
    backoff: Annotated[
        float | None,
        typer.Option(help="After a failure, hide the message base*2^(receives-1) seconds."),
    ] = None,
    backoff_max: Annotated[float, typer.Option(help="Upper bound of --backoff delays.")] = 900.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="Serve Prometheus metrics at /metrics and a liveness probe at /health.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address of the metrics port (0.0.0.0 for a scraper elsewhere).")
    ] = "127.0.0.1",
    function_name: Annotated[
        str | None, typer.Option(help="Function name in the context (default trainmq-QUEUE).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="TRAINMQ_STORE",
            help="Store of claim-check payloads (large messages): a path, file:// or s3:// "
            "address (default ./.trainmq/store).",
        ),
    ] = None,
    keep_payloads: Annotated[
        bool,
        typer.Option("--keep-payloads", help="Keep claim-check payloads after their message."),
    ] = False,
    progress_timeout: Annotated[
        float | None,
        typer.Option(
            help="Kill a handler that reports progress (the training stage does) and then "
            "makes none for this many seconds; its batch is retried."
        ),
    ] = None,
    preempt_grace: Annotated[
        float,
        typer.Option(help="On stop, seconds progress-reporting handlers get to checkpoint."),
    ] = 60.0,
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help="debug, info, warning or error.")
    ] = "info",
    log_format: Annotated[
        str, typer.Option(metavar="FORMAT", help="text, or json: one object per line.")
    ] = "text",
    db: DbOption = None,
    backend: BackendOption = None,
) -> None:
    """Run a Lambda handler on a queue: Lambda's SQS event-source mapping, on this machine."""
    from ..worker import HandlerInitError, WorkerAborted, WorkerConfig, run

    def body() -> None:
        if db is not None and backend is not None:
            raise CliFailure("give either --db or --backend, not both", ExitCode.USAGE)
        if log_format not in LOG_FORMATS:
            raise CliFailure(
                f"--log-format must be text or json, got {log_format!r}", ExitCode.USAGE
            )
        if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise CliFailure(
                f"--log-level must be debug, info, warning or error, got {log_level!r}",
                ExitCode.USAGE,
            )
        configure_logging(log_level, log_format)
        try:
            config = WorkerConfig(
                handler=handler,
                queue=queue,
                backend=backend if backend is not None else db,
                batch_size=batch_size,
                batching_window=batching_window,
                concurrency=concurrency,
                timeout=timeout,
                long_running=long_running,
                report_batch_item_failures=report_batch_item_failures,
                filters=tuple(filter_ or ()),
                heartbeat=heartbeat,
                allow_no_dlq=no_dlq,
                backoff=backoff,
                backoff_max=backoff_max,
                metrics_port=metrics_port,
                metrics_host=metrics_host,
                function_name=function_name,
                store=store,
                delete_payloads=not keep_payloads,
                progress_timeout=progress_timeout,
                preempt_grace=preempt_grace,
            )
            run(config)
        except ConfigurationError as exc:
            raise CliFailure(str(exc), ExitCode.CONFIGURATION_ERROR) from exc
        except HandlerInitError as exc:
            raise CliFailure(str(exc), ExitCode.HANDLER_ERROR) from exc
        except WorkerAborted:
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    run_command(body)
