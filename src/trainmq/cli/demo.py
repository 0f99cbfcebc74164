"""``trainmq demo``: the whole pipeline, live — prepare -> train -> evaluate on real workers."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import CliFailure, app, missing_extra, run_command
from .demo_view import PlainProgress, State, apply_event, plot, render, summary
from .exit_codes import ExitCode

MARKER = ".trainmq-demo"
#: ``--ddp``: the entrypoints file the demo writes for its train worker, and what it allows.
ENTRYPOINTS = "entrypoints.toml"
DDP_ENTRYPOINT = "demo-ddp"
DDP_RANKS = 2
DDP_VICTIM = 1  # the rank --chaos kills
DDP_LABEL = f"{DDP_RANKS}-process DDP"
LAUNCHER = "trainmq.training.launcher:launch"


def write_entrypoints(out: Path) -> Path:
    """The train worker's allow-list: the packaged DDP job of the built-in model, under
    ``torchrun`` with this interpreter, ``nproc`` ranks (1-8)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", "{nproc}", "-m", "trainmq.training.ddp_gpt",
    ]  # fmt: skip
    path = out / ENTRYPOINTS
    path.write_text(
        f"# Written by trainmq demo --ddp: what its train worker may launch.\n"
        f"[entrypoints.{DDP_ENTRYPOINT}]\n"
        f"command = {json.dumps(command)}\n"
        "grace_seconds = 30\n\n"
        f"[entrypoints.{DDP_ENTRYPOINT}.params.nproc]\n"
        f'type = "int"\nmin = 1\nmax = 8\ndefault = {DDP_RANKS}\n'
    )
    return path


def rank_pid(store_address: str, run_id: str, rank: int) -> int | None:
    """The process of ``rank`` of the launched job of ``run_id`` on this store, if one runs
    (from each process's environment in /proc: the launcher's and torchrun's variables)."""
    wanted = {
        f"TRAINMQ_STORE={store_address}".encode(),
        f"TRAINMQ_RUN_ID={run_id}".encode(),
        f"RANK={rank}".encode(),
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            return int(entry.name)
    return None


def _in_use(db: Path) -> bool:
    """Whether another process has the SQLite database ``db`` open.

    In WAL mode every connection holds a shared lock on the DMS byte (offset 128)
    of the ``-shm`` file while it is open; an exclusive probe of that byte fails
    exactly when some other process is connected.
    """
    shm = db.with_name(db.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 128)
        return False
    finally:
        os.close(fd)


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not (out / MARKER).exists():
            raise CliFailure(
                f"{out} exists and was not made by trainmq demo; choose another --out",
                ExitCode.USAGE,
            )
        if _in_use(out / "queues.db"):
            raise CliFailure(
                f"{out / 'queues.db'} is open in another process (a trainmq serve or worker?): "
                "deleting it would lose what that process writes; stop it or choose another --out",
                ExitCode.DATABASE_IN_USE,
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by trainmq demo; deleted by the next run\n")


def _require_train_extra() -> None:
    """One line naming the extra to install, instead of an import traceback mid-run."""
    for module in ("numpy", "tokenizers", "torch", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            raise missing_extra(ModuleNotFoundError(name=module), "trainmq demo", "train")


@app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the queues, store, logs and results.")
    ] = Path(".trainmq/demo"),
    chaos: Annotated[
        bool,
        typer.Option(
            "--chaos",
            help="SIGKILL the training worker mid-run and watch it resume (with --ddp: one "
            "rank of the DDP job, found in /proc, so Linux only).",
        ),
    ] = False,
    ddp: Annotated[
        bool,
        typer.Option(
            "--ddp",
            help="Train with a 2-process DistributedDataParallel job (torchrun; gloo on CPU, "
            "NCCL with CUDA) that the worker launches through an allow-listed entrypoint.",
        ),
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
        _require_train_extra()
        from pydantic import ValidationError

        from ..training.messages import ModelConfig, OptimizerConfig

        try:
            model = ModelConfig(layers=layers, width=width, heads=heads, context=context)
            optimizer = OptimizerConfig(steps=steps, batch_size=batch_size)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CliFailure(f"invalid setting: {first['msg']}", ExitCode.USAGE) from None
        if chaos and ddp and not Path("/proc/self/environ").exists():
            raise CliFailure(
                "--chaos with --ddp finds the rank to kill in /proc, which this system lacks",
                ExitCode.USAGE,
            )
        _prepare_out(out)
        run = _DemoRun(out, chaos=chaos, timeout=timeout, ddp=ddp)
        results = run.run(
            corpus_bytes=corpus_bytes,
            vocab_size=vocab_size,
            prepare_workers=prepare_workers,
            train=dict(model=model, optimizer=optimizer, checkpoint_every=checkpoint_every),
        )
        summary(results)

    run_command(body)


class _DemoRun:
    """One demo: the local pipeline, the live display, the chaos, the results."""

    RUN_ID = "demo-run-1"

    def __init__(self, out: Path, *, chaos: bool, timeout: float, ddp: bool = False) -> None:
        from ..training.entrypoints import ENTRYPOINTS_ENV
        from ..training.local import LocalPipeline

        self.out = out
        self.chaos = chaos
        self.timeout = timeout
        self.ddp = ddp
        self.state = State(training=DDP_LABEL if ddp else "")
        self.deadline = time.monotonic() + timeout
        # A short visibility timeout and staleness, so a killed trainer is replaced quickly.
        env = {"TRAINMQ_STALE_AFTER": "6", "TRAINMQ_BEAT_EVERY": "2"}
        if ddp:
            env[ENTRYPOINTS_ENV] = str(write_entrypoints(out).resolve())
        self.pipeline = LocalPipeline(out, train_visibility=15, env=env)
        self.store = self.pipeline.store
        self.live: Any = None

    def run(
        self, *, corpus_bytes: int, vocab_size: int, prepare_workers: int, train: dict[str, Any]
    ) -> dict[str, Any]:
        from rich.console import Console
        from rich.live import Live

        console = Console()
        display: Any = (
            Live(render(self.state), refresh_per_second=4, console=console)
            if console.is_terminal
            else PlainProgress(self.state)
        )
        try:
            with display as self.live:
                dataset = self.prepare(corpus_bytes, vocab_size, prepare_workers)
                request = self.train(dataset, train)
                self.state.phase = "done"
                self.live.update(render(self.state))
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
        self.live.update(render(self.state))
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
        self.pipeline.start_worker("train", handler=LAUNCHER if self.ddp else None)
        self.pipeline.start_worker("evaluate")
        state.note("started one worker process per stage: prepare, train, evaluate")
        if self.ddp:
            state.note(f"the train worker launches entrypoint {DDP_ENTRYPOINT!r} ({ENTRYPOINTS})")
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
            **({"entrypoint": DDP_ENTRYPOINT, "params": {"nproc": DDP_RANKS}} if self.ddp else {}),
        )
        state.total_steps = request.optimizer.steps
        self.pipeline.send("train", request)
        self.pipeline.send("train", request)  # a duplicate, as at-least-once delivery makes
        state.note("sent the TrainRequest twice (a duplicate: same idempotency key)")
        state.phase = "train" + (f" ({DDP_LABEL})" if self.ddp else "")
        if self.chaos:
            state.phase += f" (chaos: {self.victim} will be SIGKILLed mid-run)"
        kill_at = max(request.checkpoint_every + 1, int(request.optimizer.steps * 0.45))
        while not (self.evaluated(request) and self.pipeline.idle()):
            for event in self.pipeline.events(wait=0):
                apply_event(state, event)
            if self.chaos and state.killed_at is None and state.step >= kill_at:
                self.kill_trainer()
            self.tick()
        for event in self.pipeline.events(wait=0):
            apply_event(state, event)
        return request

    @property
    def victim(self) -> str:
        return f"rank {DDP_VICTIM} of the DDP job" if self.ddp else "the training worker"

    def kill_trainer(self) -> None:
        state = self.state
        if not state.checkpoints or state.completed:
            return
        if self.ddp:
            self.kill_rank()
            return
        for worker in self.pipeline.running("train"):
            worker.kill()
        state.killed_at = state.step
        state.note(f"chaos: SIGKILLed the training worker at step {state.step}")
        self.pipeline.start_worker("train")
        state.note(
            "started a new training worker; the message returns after its visibility timeout"
        )

    def kill_rank(self) -> None:
        """SIGKILL one rank: torchrun stops the others and fails, the launcher releases the
        attempt, and the message (or its duplicate) is delivered again and resumes."""
        pid = rank_pid(self.store.address, self.RUN_ID, DDP_VICTIM)
        if pid is None:  # between launches: try again at the next tick
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        state = self.state
        state.killed_at = state.step
        state.note(f"chaos: SIGKILLed {self.victim} at step {state.step} (pid {pid})")

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
        plot_path = self.out / "loss.png"
        plot(state, plot_path)
        results = {
            "dataset_version": state.dataset_version,
            "tokens": state.tokens,
            "steps": completion.get("steps", state.step),
            "final_train_loss": completion.get("train_loss"),
            "final_val_loss": completion.get("val_loss_estimate", completion.get("val_loss")),
            "evaluation": state.evaluation,
            "checkpoints": len(set(state.checkpoints)),
            "weights_sha256": completion.get("weights_sha256"),
            "world_size": completion.get("world_size", 1),
            "entrypoint": request.entrypoint,
            "runs_started": len(registry.list_runs()),
            "attempts": len(registry.attempts(request.idempotency_key)),
            "duplicates_attached": state.attached,
            "killed_at_step": state.killed_at,
            "resumed_from_step": state.resumed_from,
            "messages_processed": stats.messages,
            "redeliveries": stats.redeliveries,
            "dead_lettered": sum(self.pipeline.dead_letters().values()),
            "wall_seconds": round(time.monotonic() - state.started, 1),
            "loss_plot": str(plot_path),
            "output": str(self.out),
        }
        (self.out / "report.json").write_text(json.dumps(results, indent=2) + "\n")
        return results
