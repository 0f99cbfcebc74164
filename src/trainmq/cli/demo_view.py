"""What ``trainmq demo`` shows: its state, the live panel, plain lines without a terminal,
the loss plot and the summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PlainProgress", "State", "apply_event", "plot", "render", "summary"]


@dataclass
class State:
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
    #: How the model is trained, when not by the built-in trainer in one process.
    training: str = ""
    #: (event, attempt, step) of the ``started``/``resumed`` events seen: each rank of a
    #: multi-process job publishes its own.
    seen: set[tuple[str, int, int]] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    noted: int = 0

    def note(self, text: str) -> None:
        self.log.append(f"[{time.monotonic() - self.started:6.1f}s] {text}")
        self.noted += 1
        del self.log[:-8]


def render(state: State) -> Any:
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
    how = f"  {state.training}" if state.training else ""
    table.add_row(
        "train",
        Group(bar, f"step {state.step}/{state.total_steps}  attempt {state.attempt}{how}"),
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


def apply_event(state: State, event: Any) -> None:
    state.attempt = max(state.attempt, event.attempt)
    if event.total_steps:
        state.total_steps = event.total_steps
    if event.event in ("started", "resumed"):
        seen = (event.event, event.attempt, event.step or 0)
        if seen in state.seen:
            return  # another rank of the same job
        state.seen.add(seen)
    if event.event == "progress":
        state.step = max(state.step, event.step) if event.attempt == state.attempt else event.step
        if event.train_loss is not None:
            state.train_loss = event.train_loss
            state.curve.append((event.step, event.train_loss))
        if event.val_loss is not None:  # a launched job reports its validation loss
            state.val_loss = event.val_loss
            state.val_curve.append((event.step, event.val_loss))
    elif event.event == "checkpoint":
        state.checkpoints.append(event.step)
        if event.val_loss is not None:
            state.val_loss = event.val_loss
            state.val_curve.append((event.step, event.val_loss))
        loss = f" (val loss {event.val_loss:.3f})" if event.val_loss is not None else ""
        state.note(f"checkpoint at step {event.step}{loss}")
    else:
        _apply_other(state, event)


def _apply_other(state: State, event: Any) -> None:
    if event.event == "started":
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
        state.train_loss = event.train_loss if event.train_loss is not None else state.train_loss
        state.val_loss = event.val_loss if event.val_loss is not None else state.val_loss
        state.note(f"training completed at step {event.step}")
    elif event.event == "evaluated":
        state.note(f"evaluated: {event.message}")
    elif event.event == "failed":
        state.note(f"training failed: {event.message}")


def plot(state: State, path: Path) -> None:
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
    victim = "a rank" if state.training else "worker"
    marks = [
        (state.killed_at, "grey", "--", victim + " killed (step {})"),
        (state.resumed_from, "green", ":", "resumed from step {}"),
    ]
    for step, color, style, label in marks:
        if step is not None:
            axes.axvline(step, color=color, linestyle=style, label=label.format(step))
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats/token)")
    how = f" ({state.training})" if state.training else ""
    axes.set_title(f"trainmq demo: decoder-only transformer on Python's own text{how}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


class PlainProgress:
    """Progress without a terminal (CI, a log file): each event once, a status line every few
    seconds, instead of a live panel that only a terminal can redraw."""

    def __init__(self, state: State, every: float = 5.0) -> None:
        self.state = state
        self.every = every
        self.printed_notes = 0
        self.last_status = 0.0
        self.phase = ""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.update(None, force=True)

    def update(self, renderable: object, force: bool = False) -> None:
        state, lines = self.state, []
        new = min(state.noted - self.printed_notes, len(state.log))
        lines += state.log[len(state.log) - new :] if new > 0 else []
        self.printed_notes = state.noted
        now = time.monotonic()
        if state.phase != self.phase:
            self.phase = state.phase
            lines.append(f"[{now - state.started:6.1f}s] phase: {state.phase}")
        elif force or now - self.last_status >= self.every:
            lines.append(f"[{now - state.started:6.1f}s] {_status(state)}")
        if lines:
            self.last_status = now
            print("\n".join(lines), flush=True)


def _status(state: State) -> str:
    """One line of where the demo is, for logs."""
    parts = [f"prepare {state.parts}/{state.inputs}"]
    if state.total_steps:
        parts.append(f"train step {state.step}/{state.total_steps} (attempt {state.attempt})")
    if state.train_loss is not None:
        parts.append(f"train loss {state.train_loss:.3f}")
    if state.val_loss is not None:
        parts.append(f"val loss {state.val_loss:.3f}")
    return ", ".join(parts)


def _training(results: dict[str, Any]) -> str:
    world = int(results.get("world_size") or 1)
    if not results.get("entrypoint"):
        return "the built-in trainer, one process"
    ranks = f"{world}-process DDP job" if world > 1 else "one-process job"
    return f"a {ranks} launched as the entrypoint {results['entrypoint']!r}"


def summary(results: dict[str, Any]) -> None:
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
        ("training", _training(results)),
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
    console = Console()
    console.print()  # never on the line the progress display ended on
    console.print(table)
