"""What durability costs a launched DDP job, and how fast one comes back (for ``pipeline.py``).

The job is ``examples/ddp_train.py`` under ``torchrun --nproc_per_node 2`` on CPU (gloo),
started by the launcher (``launch_request``) in this process, as a worker would.

*Checkpoint overhead*: one run checkpoints every ``interval`` steps (the default, 50),
one never does; the same steps otherwise.  The job records in its completion how long its
loop took and how long ``ddp.checkpoint`` held rank 0 up (both barriers and the copy of
the state to host memory): the **blocked** share is that time over the rest of the loop
(the steps).  The wall-time difference of the two loops is reported beside it: it also
counts the background write competing with the steps for the cores.

*Start-up*: from the launcher's start to the first step's ``progress`` event of a fresh
run: the launcher, ``torchrun`` and two interpreters importing torch, the rendezvous.

*Kill to resumed step*: a run is killed (SIGKILL of rank 1) after its first checkpoint;
``torchrun`` stops the other rank and fails, the launcher releases the attempt and the
message would be retried: here it is relaunched at once (a worker does so when the message
is visible again: after its visibility timeout, a setting of the queue).  The clock runs
from the kill to the first ``progress`` event of the resumed attempt; the part that is not
start-up is what recovery itself costs.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from trainmq.cli.demo import rank_pid
from trainmq.store import BlobStore, open_store
from trainmq.training.entrypoints import Entrypoints
from trainmq.training.launcher import launch_request
from trainmq.training.locations import uri_of
from trainmq.training.messages import DatasetRef, OptimizerConfig, TrainRequest
from trainmq.training.outcomes import RetryLater
from trainmq.training.runs import RunRegistry

__all__ = ["measure_ddp", "report_lines"]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_train.py"
NEVER = 10**9  # a checkpoint interval no run reaches


def _entrypoints(workdir: Path) -> Entrypoints:
    path = workdir / "ddp-entrypoints.toml"
    path.write_text(f"""
[entrypoints.ddp]
command = ["{sys.executable}", "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", "2", "{EXAMPLE}", "--steps", "{{steps}}",
           "--checkpoint-every", "{{every}}", "--pause", "{{pause}}"]
[entrypoints.ddp.params.steps]
type = "int"
min = 1
max = 100000
[entrypoints.ddp.params.every]
type = "int"
min = 1
max = {NEVER}
[entrypoints.ddp.params.pause]
type = "float"
min = 0
max = 1
""")
    return Entrypoints.load(path)


def _request(store: BlobStore, run: str, **params: int | float) -> TrainRequest:
    return TrainRequest(
        run_id=run,
        idempotency_key=f"bench-ddp/{run}",
        dataset=DatasetRef(  # the example makes its own data
            manifest_uri=uri_of(store, "datasets/none/manifest.json"), manifest_sha256="0" * 64
        ),
        optimizer=OptimizerConfig(seed=5),
        checkpoint_uri=uri_of(store, f"bench-ddp/{run}/checkpoints"),
        output_uri=uri_of(store, f"bench-ddp/{run}/output"),
        keep_last=2,
        entrypoint="ddp",
        params=params,
    )


def _first_step_at(store: BlobStore, key: str, attempt: int) -> float:
    """When attempt ``attempt`` reported its first step (Unix time)."""
    return min(
        float(e.at or 0.0)
        for e in RunRegistry(store).events(key)
        if e.event == "progress" and e.attempt == attempt
    )


def _fresh(
    store: BlobStore, entrypoints: Entrypoints, run: str, steps: int, every: int
) -> dict[str, Any]:
    request = _request(store, run, steps=steps, every=every, pause=0.0)
    started = time.time()
    result = launch_request(store, request, entrypoints)
    wall = time.time() - started
    loop, blocked = float(result["loop_seconds"]), float(result["checkpoint_blocked_seconds"])
    return {
        "wall_s": wall,
        "startup_s": _first_step_at(store, request.idempotency_key, 1) - started,
        "loop_s": loop,
        "blocked_s": blocked,
        "steps_s": loop - blocked,
        "step_ms": 1000 * (loop - blocked) / steps,
        "checkpoints": (steps - 1) // every,
    }


def _killed(
    store: BlobStore, root: Path, entrypoints: Entrypoints, steps: int, every: int
) -> dict[str, Any]:
    """Kill rank 1 after the first checkpoint, relaunch at once, time the way back."""
    request = _request(store, "killed", steps=steps, every=every, pause=0.02)
    failures: list[BaseException] = []

    def first() -> None:
        try:
            launch_request(store, request, entrypoints)
        except BaseException as exc:  # what ended the launch is looked at below
            failures.append(exc)

    launcher = threading.Thread(target=first)
    launcher.start()
    marker = root / "bench-ddp" / "killed" / "checkpoints" / f"step-{every:08d}" / "COMPLETE.json"
    deadline = time.monotonic() + 300
    while not marker.exists():
        if not launcher.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"no checkpoint of step {every} to resume from: {failures}")
        time.sleep(0.01)  # poll interval of a bounded wait
    pid = rank_pid(store.address, "killed", 1)
    if pid is None:
        raise RuntimeError("rank 1 of the job is not running")
    killed = time.time()
    os.kill(pid, signal.SIGKILL)
    launcher.join(300)
    failed = time.time()
    if len(failures) != 1 or not isinstance(failures[0], RetryLater):
        raise RuntimeError(f"the killed launch did not end to be retried: {failures}")
    result = launch_request(store, request, entrypoints)
    first_step = _first_step_at(store, request.idempotency_key, 2)
    resumed = [
        e.step for e in RunRegistry(store).events(request.idempotency_key) if e.event == "resumed"
    ]
    return {
        "resumed_from_step": resumed[0] if resumed else None,
        "steps": int(result["steps"]),
        "kill_to_failed_s": failed - killed,
        "relaunch_to_first_step_s": first_step - failed,
        "kill_to_resumed_step_s": first_step - killed,
    }


def measure_ddp(
    workdir: Path, *, steps: int, interval: int, rounds: int, progress: Any = print
) -> dict[str, Any]:
    """Checkpoint overhead (``rounds`` pairs), start-up and the way back after a kill."""
    root = workdir / "ddp"
    store = open_store(root)
    # The job imports this tree's trainmq; its events stay in the run registry (no queue).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLE.parents[1] / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    for name in ("TRAINMQ_EVENTS_QUEUE", "TRAINMQ_EVALUATE_QUEUE"):
        os.environ.pop(name, None)
    entrypoints = _entrypoints(workdir)
    runs: dict[str, list[dict[str, Any]]] = {"checkpointed": [], "plain": []}
    for number in range(rounds):
        order = ("plain", "checkpointed") if number % 2 == 0 else ("checkpointed", "plain")
        for kind in order:
            progress(f"ddp: {kind} run, {steps} steps ({number + 1}/{rounds})")
            every = interval if kind == "checkpointed" else NEVER
            runs[kind].append(_fresh(store, entrypoints, f"{kind}-{number}", steps, every))
    progress("ddp: a run killed after its first checkpoint, and relaunched")
    killed = _killed(store, root, entrypoints, max(steps, 3 * interval), interval)
    checkpointed, plain = runs["checkpointed"], runs["plain"]
    blocked = [100 * r["blocked_s"] / r["steps_s"] for r in checkpointed]
    wall = [
        100 * (c["loop_s"] - p["loop_s"]) / p["loop_s"]
        for c, p in zip(checkpointed, plain, strict=True)
    ]
    startup = statistics.median(r["startup_s"] for r in (*checkpointed, *plain))
    return {
        "ranks": 2,
        "steps": steps,
        "interval_steps": interval,
        "checkpoints_per_run": checkpointed[0]["checkpoints"],
        "step_ms": statistics.median(r["step_ms"] for r in plain),
        "blocked_per_checkpoint_s": statistics.median(
            r["blocked_s"] / max(1, r["checkpoints"]) for r in checkpointed
        ),
        "overhead_percent": statistics.median(blocked),
        "wall_overhead_percent": statistics.median(wall),
        "wall_overhead_percent_pairs": wall,
        "loop_s": {k: [r["loop_s"] for r in v] for k, v in runs.items()},
        "startup_s": startup,
        "startup_s_runs": [r["startup_s"] for r in (*checkpointed, *plain)],
        "killed": killed,
        "recovery_s": killed["kill_to_resumed_step_s"] - startup,
    }


def report_lines(f: dict[str, Any], target: float, resume_target: float) -> list[str]:
    k = f["killed"]
    met = k["kill_to_resumed_step_s"] <= resume_target + f["startup_s"]
    return [
        f"DDP example (examples/ddp_train.py, {f['ranks']} processes, gloo on CPU, launched): "
        f"{f['steps']} steps of {f['step_ms']:.1f} ms, a checkpoint every "
        f"{f['interval_steps']} steps ({f['checkpoints_per_run']} per run) or none; "
        f"median of {len(f['wall_overhead_percent_pairs'])} pair(s)",
        f"  blocked by checkpoints (barriers + copy): {f['blocked_per_checkpoint_s'] * 1000:.1f} "
        f"ms per checkpoint = {f['overhead_percent']:.2f}% of step time "
        f"(target <= {target:g}%: {'met' if f['overhead_percent'] <= target else 'NOT met'})",
        f"  whole loop with checkpoints vs without: {f['wall_overhead_percent']:+.2f}% (pairs "
        + ", ".join(f"{x:+.1f}%" for x in f["wall_overhead_percent_pairs"])
        + ")",
        f"  start-up (launch to the first step of a fresh run): {f['startup_s']:.1f} s (runs "
        + ", ".join(f"{x:.1f}" for x in f["startup_s_runs"])
        + ")",
        f"  SIGKILL of rank 1 to the first resumed step: {k['kill_to_resumed_step_s']:.1f} s "
        f"(torchrun and the launcher give up: {k['kill_to_failed_s']:.1f} s; relaunch to the "
        f"first step: {k['relaunch_to_first_step_s']:.1f} s; resumed from step "
        f"{k['resumed_from_step']}); beyond start-up: {f['recovery_s']:.1f} s "
        f"(target <= {resume_target:g} s + start-up: {'met' if met else 'NOT met'})",
    ]
