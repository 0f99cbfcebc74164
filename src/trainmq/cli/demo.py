"""``trainmq demo``: the whole pipeline, live — prepare -> train -> evaluate on real workers."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from .exit_codes import ExitCode
from .main import CliFailure, _run, app

MARKER = ".trainmq-demo"


@dataclass
class _State:
    """What the display shows, updated from the store and the events queue."""

    phase: str = "starting"
    inputs: int = 0
    parts: int = 0
    dataset_version: str = ""
    tokens: dict[str, int] = field(default_factory=dict)
    step: int = 0
    total_steps: int = 0
    attempt: int = 1
    train_loss: float | None = None
    val_loss: float | None = None
    checkpoints: list[int] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    killed_at: int | None = None
    resumed_from: int | None = None
    attached: int = 0
    evaluation: dict[str, Any] | None = None
    completed: bool = False
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        self.log.append(f"[{time.monotonic() - self.started:6.1f}s] {text}")
        del self.log[:-8]


def _render(state: _State) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("phase", state.phase)
    table.add_row(
        "prepare",
        f"{state.parts}/{state.inputs} input files tokenized"
        + (f"  dataset {state.dataset_version[:16]}…" if state.dataset_version else ""),
    )
    if state.tokens:
        table.add_row(
            "tokens", f"train {state.tokens.get('train', 0):,}  val {state.tokens.get('val', 0):,}"
        )
    total = max(1, state.total_steps)
    bar = ProgressBar(total=total, completed=min(state.step, total), width=40)
    table.add_row(
        "train", Group(bar, f"step {state.step}/{state.total_steps}  attempt {state.attempt}")
    )
    losses = []
    if state.train_loss is not None:
        losses.append(f"train {state.train_loss:.3f}")
    if state.val_loss is not None:
        losses.append(f"val {state.val_loss:.3f}")
    table.add_row("loss", "  ".join(losses) or "-")
    table.add_row("checkpoints", ", ".join(str(s) for s in state.checkpoints[-6:]) or "-")
    if state.evaluation:
        table.add_row(
            "evaluate",
            f"val loss {state.evaluation['val_loss']:.3f}  "
            f"perplexity {state.evaluation['perplexity']:.1f}",
        )
    return Panel(Group(table, "", *state.log), title="trainmq demo", border_style="cyan")


def _apply(state: _State, event: Any) -> None:
    state.attempt = max(state.attempt, event.attempt)
    if event.total_steps:
        state.total_steps = event.total_steps
    if event.event == "progress":
        state.step = max(state.step, event.step) if event.attempt == state.attempt else event.step
        state.train_loss = event.train_loss
        if event.train_loss is not None:
            state.curve.append((event.step, event.train_loss))
    elif event.event == "checkpoint":
        state.checkpoints.append(event.step)
        if event.val_loss is not None:
            state.val_loss = event.val_loss
            state.val_curve.append((event.step, event.val_loss))
        state.note(
            f"checkpoint at step {event.step} (val loss {event.val_loss or float('nan'):.3f})"
        )
    elif event.event == "started":
        state.note(f"training started (attempt {event.attempt})")
    elif event.event == "resumed":
        state.resumed_from = event.step
        state.step = event.step
        state.note(f"attempt {event.attempt} resumed from the checkpoint of step {event.step}")
    elif event.event == "attached":
        state.attached += 1
        state.note(f"a duplicate TrainRequest attached to the run: {event.message}")
    elif event.event == "completed":
        state.completed = True
        state.step = event.step
        state.train_loss, state.val_loss = event.train_loss, event.val_loss
        state.note(f"training completed at step {event.step}")
    elif event.event == "evaluated":
        state.note(f"evaluated: {event.message}")
    elif event.event == "failed":
        state.note(f"training failed: {event.message}")


def _plot(state: _State, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    curves = [
        (state.curve, "-", "train loss", "#1f77b4"),
        (state.val_curve, "o-", "validation loss", "#d62728"),
    ]
    for points, style, label, color in curves:
        if points:
            steps, losses = zip(*sorted(dict(points).items()), strict=True)
            axes.plot(steps, losses, style, label=label, color=color)
    marks = [
        (state.killed_at, "grey", "--", "worker killed (step {})"),
        (state.resumed_from, "green", ":", "resumed from step {}"),
    ]
    for step, color, style, label in marks:
        if step is not None:
            axes.axvline(step, color=color, linestyle=style, label=label.format(step))
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats/token)")
    axes.set_title("trainmq demo: decoder-only transformer on Python's own text")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not (out / MARKER).exists():
            raise CliFailure(
                f"{out} exists and was not made by trainmq demo; choose another --out",
                ExitCode.USAGE,
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by trainmq demo; deleted by the next run\n")


@app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the queues, store, logs and results.")
    ] = Path(".trainmq/demo"),
    chaos: Annotated[
        bool,
        typer.Option("--chaos", help="SIGKILL the training worker mid-run and watch it resume."),
    ] = False,
    steps: Annotated[int, typer.Option(min=1, help="Training steps.")] = 600,
    layers: Annotated[int, typer.Option(min=1)] = 4,
    width: Annotated[int, typer.Option(min=8)] = 128,
    heads: Annotated[int, typer.Option(min=1)] = 4,
    context: Annotated[int, typer.Option(min=8)] = 128,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    checkpoint_every: Annotated[int, typer.Option(min=1)] = 50,
    vocab_size: Annotated[int, typer.Option(min=256)] = 2048,
    corpus_bytes: Annotated[
        int, typer.Option(min=10_000, help="Bytes of text to ingest.")
    ] = 2_000_000,
    prepare_workers: Annotated[int, typer.Option(min=1, help="Concurrent prepare handlers.")] = 2,
    timeout: Annotated[float, typer.Option(min=10, help="Give up after this many seconds.")] = 900,
) -> None:
    """Run the training pipeline end to end on this machine, with live progress."""

    def body() -> None:
        from pydantic import ValidationError

        from ..training.messages import ModelConfig, OptimizerConfig

        try:
            model = ModelConfig(layers=layers, width=width, heads=heads, context=context)
            optimizer = OptimizerConfig(steps=steps, batch_size=batch_size)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CliFailure(f"invalid setting: {first['msg']}", ExitCode.USAGE) from None
        _prepare_out(out)
        run = _DemoRun(out, chaos=chaos, timeout=timeout)
        results = run.run(
            corpus_bytes=corpus_bytes,
            vocab_size=vocab_size,
            prepare_workers=prepare_workers,
            train=dict(model=model, optimizer=optimizer, checkpoint_every=checkpoint_every),
        )
        _summary(results)

    _run(body)


class _DemoRun:
    """One demo: the local pipeline, the live display, the chaos, the results."""

    RUN_ID = "demo-run-1"

    def __init__(self, out: Path, *, chaos: bool, timeout: float) -> None:
        from ..training.local import LocalPipeline

        self.out = out
        self.chaos = chaos
        self.timeout = timeout
        self.state = _State()
        self.deadline = time.monotonic() + timeout
        # A short visibility timeout and staleness, so a killed trainer is replaced quickly.
        self.pipeline = LocalPipeline(
            out, train_visibility=15, env={"TRAINMQ_STALE_AFTER": "6", "TRAINMQ_BEAT_EVERY": "2"}
        )
        self.store = self.pipeline.store
        self.live: Any = None

    def run(
        self, *, corpus_bytes: int, vocab_size: int, prepare_workers: int, train: dict[str, Any]
    ) -> dict[str, Any]:
        from rich.live import Live

        try:
            with Live(_render(self.state), refresh_per_second=4) as self.live:
                dataset = self.prepare(corpus_bytes, vocab_size, prepare_workers)
                request = self.train(dataset, train)
                self.state.phase = "done"
                self.live.update(_render(self.state))
            return self.results(request)
        finally:
            self.pipeline.close()

    def tick(self, wait: float = 0.25) -> None:
        """Refresh the display; fail if a worker died or the time is up."""
        from ..training.local import WorkerDied

        try:
            self.pipeline.check_workers()
        except WorkerDied as exc:
            raise CliFailure(str(exc), ExitCode.HANDLER_ERROR) from None
        if time.monotonic() > self.deadline:
            raise CliFailure(
                f"the demo did not finish within {self.timeout:.0f} s "
                f"(logs in {self.out / 'logs'})",
                ExitCode.TIMEOUT,
            )
        if any(self.pipeline.dead_letters().values()):
            raise CliFailure(
                f"a message was dead-lettered (logs in {self.out / 'logs'})", ExitCode.HANDLER_ERROR
            )
        self.live.update(_render(self.state))
        time.sleep(wait)

    def prepare(self, corpus_bytes: int, vocab_size: int, workers: int) -> Any:
        """Ingest Python's own text, fan out the prepare requests, wait for the manifest."""
        from ..training.dataset import read_manifest
        from ..training.locations import key_of
        from ..training.pipeline import ingest, manifest_ref, prepare_requests, python_corpus

        state, store = self.state, self.store
        state.phase = "ingesting Python's documentation and standard library"
        files = python_corpus(corpus_bytes)
        source_uri, source_sha, inputs = ingest(store, "python-docs", files)
        requests = prepare_requests(
            store, "python-docs", source_uri, source_sha, inputs, vocab_size=vocab_size
        )
        state.inputs = len(requests)
        state.note(f"ingested {sum(len(d) for _, d in files):,} bytes in {len(files)} files")
        self.pipeline.start_worker("prepare", concurrency=workers)
        self.pipeline.start_worker("train")
        self.pipeline.start_worker("evaluate")
        state.note("started one worker process per stage: prepare, train, evaluate")
        for request in requests:
            self.pipeline.send("prepare", request)
        state.phase = "prepare: training the tokenizer and writing token shards"
        parts = key_of(store, requests[0].output_prefix).rstrip("/") + "/parts/"
        while (dataset := manifest_ref(store, requests[0])) is None:
            state.parts = sum(1 for _ in store.list_keys(parts))
            self.tick()
        state.parts = state.inputs
        state.dataset_version = dataset.manifest_sha256
        manifest = read_manifest(store, dataset)
        state.tokens = dict(manifest.tokens)
        state.note(
            f"dataset version {dataset.manifest_sha256[:16]}… ({len(manifest.shards)} shards)"
        )
        return dataset

    def train(self, dataset: Any, settings: dict[str, Any]) -> Any:
        """Send the TrainRequest (twice), follow its events, kill the trainer if asked."""
        from ..training.locations import uri_of
        from ..training.messages import TrainRequest

        state = self.state
        request = TrainRequest(
            run_id=self.RUN_ID,
            idempotency_key=f"demo/{self.RUN_ID}",
            dataset=dataset,
            checkpoint_uri=uri_of(self.store, f"runs-data/{self.RUN_ID}/checkpoints"),
            output_uri=uri_of(self.store, f"runs-data/{self.RUN_ID}/output"),
            **settings,
        )
        state.total_steps = request.optimizer.steps
        self.pipeline.send("train", request)
        self.pipeline.send("train", request)  # a duplicate, as at-least-once delivery makes
        state.note("sent the TrainRequest twice (a duplicate: same idempotency key)")
        state.phase = "train" + (
            " (chaos: the worker will be SIGKILLed mid-run)" if self.chaos else ""
        )
        kill_at = max(request.checkpoint_every + 1, int(request.optimizer.steps * 0.45))
        while not (self.evaluated(request) and self.pipeline.idle()):
            for event in self.pipeline.events(wait=0):
                _apply(state, event)
            if self.chaos and state.killed_at is None and state.step >= kill_at:
                self.kill_trainer()
            self.tick()
        for event in self.pipeline.events(wait=0):
            _apply(state, event)
        return request

    def kill_trainer(self) -> None:
        state = self.state
        if not state.checkpoints or state.completed:
            return
        for worker in self.pipeline.running("train"):
            worker.kill()
        state.killed_at = state.step
        state.note(f"chaos: SIGKILLed the training worker at step {state.step}")
        self.pipeline.start_worker("train")
        state.note(
            "started a new training worker; the message returns after its visibility timeout"
        )

    def evaluated(self, request: Any) -> bool:
        from ..training.locations import key_of

        if self.state.evaluation is None:
            key = key_of(self.store, request.output_uri).rstrip("/") + "/evaluation.json"
            if not self.store.exists(key):
                return False
            with self.store.get(key) as stream:
                self.state.evaluation = json.loads(stream.read())
            self.state.phase = "evaluated; waiting for the queues to drain"
        return True

    def results(self, request: Any) -> dict[str, Any]:
        from ..training.runs import RunRegistry

        state = self.state
        registry = RunRegistry(self.store)
        completion = registry.completion(request.idempotency_key) or {}
        stats = self.pipeline.worker_stats()
        plot = self.out / "loss.png"
        _plot(state, plot)
        results = {
            "dataset_version": state.dataset_version,
            "tokens": state.tokens,
            "steps": completion.get("steps", state.step),
            "final_train_loss": completion.get("train_loss"),
            "final_val_loss": completion.get("val_loss_estimate", completion.get("val_loss")),
            "evaluation": state.evaluation,
            "checkpoints": len(set(state.checkpoints)),
            "weights_sha256": completion.get("weights_sha256"),
            "runs_started": len(registry.list_runs()),
            "attempts": len(registry.attempts(request.idempotency_key)),
            "duplicates_attached": state.attached,
            "killed_at_step": state.killed_at,
            "resumed_from_step": state.resumed_from,
            "messages_processed": stats.messages,
            "redeliveries": stats.redeliveries,
            "dead_lettered": sum(self.pipeline.dead_letters().values()),
            "wall_seconds": round(time.monotonic() - state.started, 1),
            "loss_plot": str(plot),
            "output": str(self.out),
        }
        (self.out / "report.json").write_text(json.dumps(results, indent=2) + "\n")
        return results


def _summary(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="trainmq demo: summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    evaluation = results.get("evaluation") or {}
    rows = [
        ("dataset version", results["dataset_version"]),
        (
            "tokens",
            f"train {results['tokens'].get('train', 0):,}, val {results['tokens'].get('val', 0):,}",
        ),
        ("steps", str(results["steps"])),
        ("final train loss", f"{results['final_train_loss']:.4f}"),
        ("final val loss", f"{results['final_val_loss']:.4f}"),
        (
            "evaluation",
            f"val loss {evaluation.get('val_loss', float('nan')):.4f}, "
            f"perplexity {evaluation.get('perplexity', float('nan')):.1f}",
        ),
        ("checkpoints", str(results["checkpoints"])),
        (
            "runs started",
            f"{results['runs_started']} (duplicates attached: {results['duplicates_attached']})",
        ),
        (
            "attempts",
            str(results["attempts"])
            + (
                f" (killed at step {results['killed_at_step']}, "
                f"resumed from step {results['resumed_from_step']})"
                if results["killed_at_step"] is not None
                else ""
            ),
        ),
        ("messages processed", str(results["messages_processed"])),
        ("redeliveries", str(results["redeliveries"])),
        ("dead-lettered", str(results["dead_lettered"])),
        ("wall time", f"{results['wall_seconds']} s"),
        ("loss curve", results["loss_plot"]),
        ("report", str(Path(results["output"]) / "report.json")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
