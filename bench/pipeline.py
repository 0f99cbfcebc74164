"""Pipeline benchmark: prepare throughput on worker processes, training, the cost of durability.

Run as ``python bench/pipeline.py [--quick] [--json PATH] [--dir DIR]``.

Prepare: the same corpus (Python's documentation topics and standard-library
sources, JSON lines in several input files, one ``PrepareRequest`` each) is
prepared into a dataset version (BPE tokenizer, token shards, manifest):
by ``prepare()`` in one fresh process without any queue, the peer, and through
real ``trainmq worker`` processes (``LocalPipeline``), first one worker process, then two, each with
one handler.  A worker run starts on a fresh queue database and store, with
its workers already up; the clock runs from the first send until the manifest
exists.  Each worker set runs twice: *cold*, where the tokenizer is trained
inside the run (by every handler that gets there before one is stored), and
*warm*, with the dataset's tokenizer already in the store, which leaves the
fan-out itself.  Tokens are those of the manifest (train + validation).

Training: the default model (``ModelConfig()``) and batch (``OptimizerConfig()``)
on the prepared dataset, in this process.  *Durable* is the real path,
``handlers.train_request``: the run registry (claim, attempt, heartbeats at the
default interval, completion), ``TrainingEvent``s written to the registry and
sent to an events queue with full durability, and a checkpoint every 50 steps
(the default interval; the last step is checkpointed too).  *Bare* is the same
training as a plain PyTorch loop: the same model, seed, batches, learning-rate
schedule, clipping, validation at the same steps and the same output file, and
no checkpoints, beats or events.  Both end with the same weights (checked).
The durability cost is reported two ways: measured directly (the trainer's
``durability_seconds`` plus the registry work around it, over the run's wall
time; the target is judged on this), and as the wall-time difference between
the durable and the bare runs, which on shared cores is noisy: the spread of
the bare runs is printed next to it.  Runs alternate in back-to-back pairs
(bare, durable | durable, bare | ..., four pairs) and the wall-time difference
is the median over the pairs.  Every prepare figure is the median of three
runs, interleaved (``--quick``: one run of each, one pair).

Checkpoints: the cost of a checkpoint to the training loop at about 5M, 40M and
110M parameters (``checkpoint_cost.py``): the time training is blocked per
checkpoint and that as a share of the steps of the default interval; the target
is at most 3.5 % at every size (``--quick``: one tiny model), the share CheckFreq
(FAST '21) reports for frequent checkpointing.  The same share is reported for the
durable runs above (the loop's blocked time over the bare run's time).

DDP: the DDP example launched as a 2-process ``torchrun`` job (``ddp_cost.py``): its
checkpoint overhead (blocked share, and the loop's wall time with and without
checkpoints), its start-up, and the time from a SIGKILL of one rank to the first step of
the relaunched job (target: at most 10 s beyond the start-up).

Everything goes in a temporary folder under ``./.trainmq/bench`` (``--dir``).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# ``bench/http.py`` would shadow the standard library's ``http``: this folder goes last.
sys.path[:] = [str(REPO / "src"), *(p for p in sys.path if Path(p or ".").resolve() != HERE),
               str(HERE)]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from checkpoint_cost import QUICK_SIZES, SIZES, measure_checkpoints  # noqa: E402
from ddp_cost import measure_ddp  # noqa: E402
from disk import file_system_type, fsync_rate  # noqa: E402
from pipeline_report import (  # noqa: E402
    CHECKPOINT_TARGET_PERCENT,
    DEFAULT_CHECKPOINT_EVERY,
    DURABILITY_TARGET_PERCENT,
    RESUME_TARGET_S,
    report,
)
from trainmq.store import BlobStore, open_store  # noqa: E402
from trainmq.training.dataset import load_split, read_manifest, read_source  # noqa: E402
from trainmq.training.handlers import train_request  # noqa: E402
from trainmq.training.local import LocalPipeline  # noqa: E402
from trainmq.training.locations import key_of, uri_of  # noqa: E402
from trainmq.training.messages import (  # noqa: E402
    DatasetRef,
    ModelConfig,
    OptimizerConfig,
    PrepareRequest,
    TrainRequest,
)
from trainmq.training.model import GPT, weights_sha256  # noqa: E402
from trainmq.training.pipeline import (  # noqa: E402
    ingest,
    manifest_ref,
    prepare_requests,
    python_corpus,
)
from trainmq.training.prepare import prepare  # noqa: E402
from trainmq.training.tokenizer import ensure_tokenizer, tokenizer_key  # noqa: E402
from trainmq.training.trainer import EVAL_BATCHES, build_optimizer, learning_rate  # noqa: E402

VOCAB_SIZE = 2048  # what ``trainmq demo`` prepares with


@dataclass(frozen=True)
class Budget:
    corpus_bytes: int
    files: int
    steps: int
    checkpoint_every: int
    repeats: int  # of each prepare measurement
    rounds: int  # each round: one bare and one durable run
    ddp_steps: int  # of each launched DDP run (one pair per round)
    ddp_interval: int
    ddp_rounds: int


FULL = Budget(4_000_000, 8, 100, DEFAULT_CHECKPOINT_EVERY, 3, 4, 500,
              DEFAULT_CHECKPOINT_EVERY, 3)
QUICK = Budget(300_000, 4, 6, 3, 1, 1, 6, 3, 1)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- prepare -----------------------------------------------------------------------------------
def dataset_tokens(store: BlobStore, ref: DatasetRef) -> int:
    return sum(read_manifest(store, ref).tokens.values())


def fan_out(
    store: BlobStore, files: list[tuple[str, bytes]]
) -> tuple[list[PrepareRequest], str, str]:
    source_uri, source_sha, inputs = ingest(store, "bench", files)
    requests = prepare_requests(
        store, "bench", source_uri, source_sha, inputs, vocab_size=VOCAB_SIZE
    )
    return requests, source_uri, source_sha


def prepare_in_process(store: BlobStore, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The peer: ``prepare()`` of every input in turn, in this process; the tokenizer first."""
    requests, source_uri, source_sha = fan_out(store, files)
    started = time.perf_counter()
    ensure_tokenizer(store, read_source(store, source_uri, source_sha), VOCAB_SIZE)
    trained = time.perf_counter()
    for request in requests:
        prepare(store, request)
    ended = time.perf_counter()
    ref = manifest_ref(store, requests[0])
    assert ref is not None, "prepare() wrote no manifest"
    tokens = dataset_tokens(store, ref)
    return {
        "tokens": tokens,
        "inputs": len(requests),
        "tokenizer_s": trained - started,
        "tokenize_s": ended - trained,
        "seconds": ended - started,
        "tokens_per_s": tokens / (ended - started),
        "tokens_per_s_without_tokenizer": tokens / (ended - trained),
        "dataset": ref.model_dump(),
    }


def wait_started(pipeline: LocalPipeline, timeout: float = 120.0) -> None:
    """Until every worker logged that its handler processes are up."""
    deadline = time.monotonic() + timeout
    while True:
        pipeline.check_workers()
        if all("worker started" in w.log_path.read_text(errors="replace")
               for w in pipeline.workers):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not start within {timeout:.0f} s")
        time.sleep(0.05)  # poll interval of a bounded wait


def prepare_on_workers(
    root: Path, files: list[tuple[str, bytes]], workers: int, tokenizer: bytes | None
) -> dict[str, Any]:
    """One run on a fresh pipeline: ``workers`` worker processes of one handler each."""
    with LocalPipeline(root) as pipeline:
        store = pipeline.store
        requests, source_uri, source_sha = fan_out(store, files)
        if tokenizer is not None:  # warm: the tokenizer this dataset would train, already stored
            source = read_source(store, source_uri, source_sha)
            store.put(tokenizer_key(source.content_sha256, VOCAB_SIZE), tokenizer)
        starting = time.perf_counter()
        for _ in range(workers):
            pipeline.start_worker("prepare", concurrency=1)
        wait_started(pipeline)
        started = time.perf_counter()
        for request in requests:
            pipeline.send("prepare", request)
        deadline = time.monotonic() + 600
        while (ref := manifest_ref(store, requests[0])) is None:
            pipeline.check_workers()
            if pipeline.dead_letters()["prepare"]:
                raise RuntimeError(f"a prepare message was dead-lettered; logs in {root}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no manifest after 600 s; logs in {root}")
            time.sleep(0.01)  # poll interval: 1 % of the shortest run
        elapsed = time.perf_counter() - started
        tokens = dataset_tokens(store, ref)
    return {
        "tokens": tokens,
        "inputs": len(requests),
        "workers": workers,
        "worker_start_s": started - starting,
        "seconds": elapsed,
        "tokens_per_s": tokens / elapsed,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time (the slower middle one of an even count), and every time."""
    ordered = sorted(runs, key=lambda run: float(run["seconds"]))
    return {**ordered[len(ordered) // 2], "runs_s": [run["seconds"] for run in runs]}


def prepare_in_fresh_process(store_root: Path, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """``prepare_in_process`` in a new interpreter, as fresh as a worker's handler process.

    (Repeated in one process, prepare got slower while the process's memory grew; a fresh
    process each time compares like with like.)
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(_prepare_at, (str(store_root), files))
    return result


def _prepare_at(store_root: str, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    return prepare_in_process(open_store(store_root), files)


def measure_prepare(
    workdir: Path, store_root: Path, files: list[tuple[str, bytes]], repeats: int
) -> dict[str, Any]:
    """Prepare in process and on 1 and 2 workers, ``repeats`` times each, interleaved.

    The first in-process run writes into the store at ``store_root``: training uses
    that dataset.
    """
    store = open_store(store_root)
    runs: dict[str, list[dict[str, Any]]] = {}
    tokenizer = b""
    for number in range(repeats):
        progress(f"prepare: in process ({number + 1}/{repeats})")
        target = store_root if number == 0 else workdir / f"prepare-in-process-{number}"
        runs.setdefault("in_process", []).append(prepare_in_fresh_process(target, files))
        if number == 0:
            # What the in-process run trained: the same text and vocabulary train the same one.
            (key,) = list(store.list_keys("tokenizers/"))
            with store.get(key) as stream:
                tokenizer = bytes(stream.read())
        for state, seed in (("cold", None), ("warm", tokenizer)):
            for workers in (1, 2):
                progress(f"prepare: {workers} worker process(es), {state} tokenizer "
                         f"({number + 1}/{repeats})")
                runs.setdefault(f"workers_{workers}/{state}", []).append(prepare_on_workers(
                    workdir / f"prepare-{workers}w-{state}-{number}", files, workers, seed
                ))
    results: dict[str, Any] = {"in_process": median_run(runs["in_process"])}
    results["in_process"]["dataset"] = runs["in_process"][0]["dataset"]
    for workers in (1, 2):
        results[f"workers_{workers}"] = {
            state: median_run(runs[f"workers_{workers}/{state}"]) for state in ("cold", "warm")
        }
    for state in ("cold", "warm"):
        one, two = (results[f"workers_{n}"][state]["tokens_per_s"] for n in (1, 2))
        results[f"scaling_2_vs_1_{state}"] = two / one
    counts = {run["tokens"] for each in runs.values() for run in each}
    if len(counts) != 1:
        raise RuntimeError(f"the runs prepared different token counts: {sorted(counts)}")
    return results


# --- training ----------------------------------------------------------------------------------
def make_request(
    store: BlobStore, dataset: DatasetRef, run: str, steps: int, checkpoint_every: int
) -> TrainRequest:
    """The default model and optimizer but for the number of steps."""
    return TrainRequest(
        run_id=run,
        idempotency_key=f"bench/{run}",
        dataset=dataset,
        model=ModelConfig(),
        optimizer=OptimizerConfig(steps=steps),
        checkpoint_uri=uri_of(store, f"runs-data/{run}/checkpoints"),
        output_uri=uri_of(store, f"runs-data/{run}/output"),
        checkpoint_every=checkpoint_every,
    )


def sample(
    tokens: np.ndarray[Any, Any], seed: list[int], batch_size: int, context: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The trainer's sampler: random offsets drawn by a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(tokens) - context - 1, size=batch_size)
    batch = torch.from_numpy(np.stack([tokens[s : s + context + 1] for s in starts]))
    return batch[:, :-1], batch[:, 1:]


def bare_run(store: BlobStore, request: TrainRequest) -> dict[str, Any]:
    """The same training with nothing durable: no checkpoints, heartbeats or events."""
    started = time.perf_counter()
    opt, config = request.optimizer, request.model
    manifest = read_manifest(store, request.dataset)
    train = load_split(store, manifest, "train")
    val = load_split(store, manifest, "val")
    torch.manual_seed(opt.seed)
    model = GPT(config, manifest.vocab_size)
    optimizer = build_optimizer(model, opt)  # the trainer's parameter groups

    @torch.no_grad()
    def validation_loss() -> float:
        model.eval()
        losses = [float(model.loss(*sample(val, [opt.seed, 1 << 40, i], opt.batch_size,
                                           config.context))) for i in range(EVAL_BATCHES)]
        model.train()
        return sum(losses) / len(losses)

    model.train()
    losses = []
    for step in range(opt.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, opt.steps, opt.learning_rate)
        inputs, targets = sample(train, [opt.seed, step], opt.batch_size, config.context)
        loss = model.loss(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % request.checkpoint_every == 0 and step + 1 < opt.steps:
            validation_loss()  # the trainer validates at every checkpoint
    validation_loss()
    digest = weights_sha256(model)
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buffer)
    store.put(key_of(store, request.output_uri).rstrip("/") + "/model.pt", buffer.getvalue())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "weights_sha256": digest, "steps": opt.steps,
            "tokens": opt.steps * opt.batch_size * config.context}


def durable_run(pipeline: LocalPipeline, request: TrainRequest) -> dict[str, Any]:
    """``train_request``: registry, heartbeats, events (registry and queue), checkpoints."""
    started = time.perf_counter()
    result = train_request(pipeline.store, request)
    seconds = time.perf_counter() - started
    events = 0
    while batch := pipeline.events(wait=0):
        events += len(batch)
    # Outside the trainer: registering, claiming the attempt, completion, the last event.
    registry_s = seconds - float(result["seconds"])
    durability_s = float(result["durability_seconds"]) + registry_s
    return {
        "seconds": seconds,
        "weights_sha256": result["weights_sha256"],
        "steps": int(result["steps"]),
        "tokens": int(result["tokens"]),
        "trainer_durability_s": float(result["durability_seconds"]),
        "registry_s": registry_s,
        "durability_s": durability_s,
        "checkpoints": len(result["checkpoints"]),
        "checkpoint_blocked_s": float(result["checkpoint_blocked_seconds"]),
        "events_published": events,
    }


def measure_training(pipeline: LocalPipeline, dataset: DatasetRef, budget: Budget
                     ) -> dict[str, Any]:
    """Bare and durable runs, alternating, on the dataset in ``pipeline``'s store."""
    os.environ["TRAINMQ_DB"] = str(pipeline.db)
    os.environ["TRAINMQ_EVENTS_QUEUE"] = pipeline.layout.events
    store = pipeline.store
    progress("train: warm-up")
    bare_run(store, make_request(store, dataset, "warm-up", 3, 3))
    bare: list[dict[str, Any]] = []
    durable: list[dict[str, Any]] = []
    # bare, durable | durable, bare | bare, durable ...: each round is a pair run back to back.
    order = [kind for r in range(budget.rounds)
             for kind in (("bare", "durable") if r % 2 == 0 else ("durable", "bare"))]
    for number, kind in enumerate(order):
        progress(f"train: {kind} run, {budget.steps} steps")
        request = make_request(
            store, dataset, f"{kind}-{number}", budget.steps, budget.checkpoint_every
        )
        if kind == "bare":
            bare.append(bare_run(store, request))
        else:
            durable.append(durable_run(pipeline, request))
    digests = {run["weights_sha256"] for run in (*bare, *durable)}
    if len(digests) != 1:
        raise RuntimeError("the bare loop trained different weights from the trainer")
    tokens = durable[0]["tokens"]
    bare_s = statistics.median(r["seconds"] for r in bare)
    durable_s = statistics.median(r["seconds"] for r in durable)
    direct = 100 * statistics.median(r["durability_s"] / r["seconds"] for r in durable)
    paired = [100 * (d["seconds"] - b["seconds"]) / d["seconds"]
              for b, d in zip(bare, durable, strict=True)]
    return {
        "steps": budget.steps,
        "tokens_per_step": tokens // budget.steps,
        "bare": {
            "runs_s": [r["seconds"] for r in bare],
            "seconds": bare_s,
            "step_ms": 1000 * bare_s / budget.steps,
            "tokens_per_s": tokens / bare_s,
        },
        "durable": {
            "runs_s": [r["seconds"] for r in durable],
            "seconds": durable_s,
            "step_ms": 1000 * durable_s / budget.steps,
            "tokens_per_s": tokens / durable_s,
            "checkpoints": durable[0]["checkpoints"],
            "events_published": durable[0]["events_published"],
            "trainer_durability_s": statistics.median(r["trainer_durability_s"] for r in durable),
            "registry_s": statistics.median(r["registry_s"] for r in durable),
            "checkpoint_blocked_s": statistics.median(r["checkpoint_blocked_s"] for r in durable),
        },
        # The loop's time blocked by checkpoints over the time of its steps (the bare run's).
        "checkpoint_blocked_percent": 100 * statistics.median(
            r["checkpoint_blocked_s"] for r in durable) / bare_s,
        "durable_vs_bare": bare_s / durable_s,
        "durability_percent_measured": direct,
        "durability_percent_wall": statistics.median(paired),
        "durability_percent_wall_pairs": paired,
        "bare_spread_percent": 100 * (max(r["seconds"] for r in bare)
                                      - min(r["seconds"] for r in bare)) / bare_s,
        "same_weights": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a small corpus and a few steps (well under a minute)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dir", type=Path, default=Path(".trainmq/bench"),
                        help="where the temporary folder goes")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-", dir=args.dir)).resolve()
    for name in [n for n in os.environ if n.startswith("TRAINMQ_")]:
        del os.environ[name]  # the heartbeat interval and the rest at their defaults
    try:
        fsyncs = fsync_rate(workdir, 0.5)
        files = python_corpus(budget.corpus_bytes, budget.files)
        # Training needs the dataset in its own store: the in-process prepare writes it there.
        with LocalPipeline(workdir / "train") as pipeline:
            prepared = measure_prepare(workdir, pipeline.root / "store", files, budget.repeats)
            dataset = DatasetRef.model_validate(prepared["in_process"]["dataset"])
            training = measure_training(pipeline, dataset, budget)
            checkpoints = measure_checkpoints(
                pipeline.store, QUICK_SIZES if args.quick else SIZES,
                batch_size=4 if args.quick else OptimizerConfig().batch_size,
                steps=1 if args.quick else 2, interval=DEFAULT_CHECKPOINT_EVERY,
                vocab_size=VOCAB_SIZE, progress=progress,
            )
        ddp = measure_ddp(workdir, steps=budget.ddp_steps, interval=budget.ddp_interval,
                          rounds=budget.ddp_rounds, progress=progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    defaults = ModelConfig()
    measured = training["durability_percent_measured"]
    worst = max(c["overhead_percent"] for c in checkpoints.values())
    builtin = training["checkpoint_blocked_percent"]
    back = ddp["killed"]["kill_to_resumed_step_s"]
    result = {
        "figures": {"prepare": prepared, "training": training, "checkpoints": checkpoints,
                    "ddp": ddp},
        "targets": {"durability_percent": {"value": measured,
                                           "target": DURABILITY_TARGET_PERCENT,
                                           "met": measured < DURABILITY_TARGET_PERCENT},
                    "checkpoint_overhead_percent": {
                        "value": worst, "target": CHECKPOINT_TARGET_PERCENT,
                        "met": worst <= CHECKPOINT_TARGET_PERCENT},
                    "builtin_checkpoint_overhead_percent": {
                        "value": builtin, "target": CHECKPOINT_TARGET_PERCENT,
                        "met": builtin <= CHECKPOINT_TARGET_PERCENT},
                    "ddp_checkpoint_overhead_percent": {
                        "value": ddp["overhead_percent"], "target": CHECKPOINT_TARGET_PERCENT,
                        "met": ddp["overhead_percent"] <= CHECKPOINT_TARGET_PERCENT},
                    "kill_to_resumed_step_s": {
                        "value": back, "target": RESUME_TARGET_S + ddp["startup_s"],
                        "met": back <= RESUME_TARGET_S + ddp["startup_s"]}},
        "settings": {
            "quick": args.quick,
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "file_system": file_system_type(args.dir),
            "fsync_per_s": fsyncs,
            "corpus_bytes": sum(len(data) for _, data in files),
            "input_files": len(files),
            "vocab_size": VOCAB_SIZE,
            "model": defaults.model_dump(),
            "batch_size": OptimizerConfig().batch_size,
            "steps": budget.steps,
            "checkpoint_every": budget.checkpoint_every,
            "beat_every_s": 5.0,
        },
    }
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
