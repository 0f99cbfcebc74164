"""HTTP benchmark: ``trainmq serve`` against LocalStack and moto, through boto3 and a lean client.

Run as ``python bench/http.py [--quick] [--json PATH] [--dir DIR]``.

Part 1 drives ``trainmq serve``, LocalStack and moto's server with the same
boto3 workload from several client processes (one call at a time each):
SendMessage, ReceiveMessage + DeleteMessage, SendMessageBatch of 10. Part 2
uses a lean generator (pre-built JSON-protocol requests on keep-alive
connections): every server moves messages in batches (SendMessageBatch of 10,
ReceiveMessage of 10, DeleteMessageBatch), and ``trainmq serve`` alone, with
``--workers`` at its default (one process per core) and at 1, gives its
closed-loop capacity for single and batched calls and its SendMessage
latency at a fixed offered rate (open loop).

LocalStack (community edition, host mode, in memory, ``SERVICES=sqs``) is
installed on first use into its own virtual environment under ``--dir``
(``http_localstack.py``); ``--quick`` leaves it out and says so.

The server runs with its default durability: every send and delete is fsynced
before it is answered. Its database goes in a temporary folder under
``./.trainmq/bench`` (``--dir`` to change it), never in a RAM-backed file
system. Servers and load generators share this machine's cores, and the
report says how the CPU time was split between them. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# This file shares its name with the standard library's ``http`` package, and a
# script's folder comes first on sys.path: move the folder to the end so that
# ``http.client`` (used by boto3) stays the standard library's.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

from disk import file_system_type, fsync_rate  # noqa: E402
from http_boto3 import BotoPool, Job, Outcome  # noqa: E402
from http_lean import (  # noqa: E402
    LoadResult,
    Target,
    batch_cycle_step,
    closed_loop,
    event_loop_name,
    open_loop,
    receive_delete_step,
    run_async,
    send_batch_step,
    send_step,
)
from http_localstack import LocalStackRun, start_localstack  # noqa: E402
from http_servers import (  # noqa: E402
    HOST,
    RAM_FILE_SYSTEMS,
    CpuMeter,
    Server,
    cpu_share,
    start_moto,
    start_trainmq,
)

BODY = json.dumps({"doc": "d-000000", "text": "lorem ipsum " * 7})
WORKLOADS = {  # name: (label, requests per operation)
    "send": ("SendMessage", 1),
    "receive_delete": ("ReceiveMessage+DeleteMessage", 2),
    "send_batch": ("SendMessageBatch of 10", 1),
}
RATIO_TARGET = 20.0  # boto3: trainmq / moto requests per second
PEER_TARGETS = {"localstack": 5.0, "moto": 25.0}  # lean batch cycle: trainmq / peer
PEERS = ("localstack", "moto")
LEAN_TARGETS = {  # figure: (target, higher is better)
    "send_per_s": (3_000.0, True),
    "send_batch_messages_per_s": (20_000.0, True),
    "latency_p99_ms": (10.0, False),
}


@dataclasses.dataclass(frozen=True)
class Budget:
    boto3_processes: int
    boto3_seconds: float  # time cap of one boto3 run
    boto3_ops: int  # operations of one boto3 send run, the same on both servers
    boto3_batches: int  # SendMessageBatch requests of one boto3 run
    receive_depth: int  # messages in the queue when a boto3 receive + delete run starts
    connections: int  # lean closed loop
    cycle_connections: int  # lean batch cycle, on every server
    warmup: float
    lean_seconds: float
    rate: float  # lean open loop, requests per second
    latency_seconds: float
    fsync_seconds: float


FULL = Budget(4, 10.0, 2_000, 400, 1_000, 64, 16, 1.0, 10.0, 1_000.0, 15.0, 1.0)
QUICK = Budget(4, 2.5, 400, 40, 200, 64, 4, 0.3, 2.0, 1_000.0, 3.0, 0.3)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(ops: int, messages: int, seconds: float, latencies: list[float], per_op: int) -> dict:
    if ops == 0 or seconds <= 0:
        raise RuntimeError("a measurement completed no operation")
    return {
        "requests_per_s": ops * per_op / seconds,
        "messages_per_s": messages / seconds,
        "p50_ms": 1_000 * percentile(latencies, 50),
        "p99_ms": 1_000 * percentile(latencies, 99),
    }


def sqs_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


# --- part 1: boto3 -----------------------------------------------------------------


def boto3_workload(
    pool: BotoPool, server: Server, workload: str, budget: Budget, notes: dict[str, Any]
) -> dict[str, Any]:
    client = sqs_client(server.endpoint)
    url = client.create_queue(QueueName=f"boto3-{workload.replace('_', '-')}")["QueueUrl"]
    if workload == "receive_delete":
        per_process = math.ceil(budget.receive_depth / 10 / budget.boto3_processes)
        pool.run(Job(server.endpoint, url, "prefill", BODY, 600.0, per_process))
    meter = CpuMeter(server.pids)
    clients = CpuMeter(pool.pids)

    def started() -> None:
        meter.start()
        clients.start()

    total = {"send": budget.boto3_ops, "send_batch": budget.boto3_batches}.get(workload, 10**9)
    per_process = math.ceil(total / budget.boto3_processes)
    job = Job(server.endpoint, url, workload, BODY, budget.boto3_seconds, per_process)
    outcome: Outcome = pool.run(job, on_start=started)
    per_op = WORKLOADS[workload][1]
    requests = outcome.ops * per_op
    notes["cpu"][f"boto3/{workload}/{server.name}"] = {
        "server": cpu_share(meter.stop(), meter.wall, requests),
        "clients": cpu_share(clients.stop(), clients.wall, requests),
    }
    if outcome.capped:
        notes["capped"].append(f"{workload}/{server.name}")
    return summary(outcome.ops, outcome.messages, outcome.seconds, outcome.latencies, per_op)


def measure_boto3(
    pool: BotoPool, servers: list[Server], budget: Budget, notes: dict[str, Any]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for workload in WORKLOADS:
        row = {s.name: boto3_workload(pool, s, workload, budget, notes) for s in servers}
        for peer in PEERS:
            if peer in row:
                ratio = row["trainmq"]["requests_per_s"] / row[peer]["requests_per_s"]
                row["ratio" if peer == "moto" else f"ratio_{peer}"] = ratio
        figures[workload] = row
        print(f"  boto3 {workload}: done", file=sys.stderr, flush=True)
    return figures


# --- part 2: the lean generator ----------------------------------------------------------


def lean_run(
    server: Server, name: str, notes: dict[str, Any], main: Any, per_op: float
) -> dict[str, Any]:
    meter = CpuMeter([*server.pids, os.getpid()])
    meter.start()
    result: LoadResult = run_async(main)
    used = meter.stop()
    server_used, own_used = used[:-1], used[-1]
    requests = round(result.all_ops * per_op)
    notes["cpu"][f"lean/{server.name}/{name}"] = {
        "server": cpu_share(server_used, meter.wall, requests),
        "generator": cpu_share([own_used], meter.wall, requests),
    }
    if result.drained:
        notes["drained"].append(f"lean/{server.name}/{name}")
    figures = summary(result.ops, result.messages, result.seconds, result.latencies, per_op)
    if result.offered_per_s:
        figures["offered_per_s"] = result.offered_per_s
    return figures


def lean_batch_cycle(server: Server, budget: Budget, notes: dict[str, Any]) -> dict[str, Any]:
    """Every server's batch figure: SendMessageBatch + ReceiveMessage (10) + DeleteMessageBatch."""
    url = sqs_client(server.endpoint).create_queue(QueueName="lean-cycle")["QueueUrl"]
    step = batch_cycle_step(Target(HOST, server.port, url, BODY))
    c, warm, secs = budget.cycle_connections, budget.warmup, budget.lean_seconds
    main = closed_loop(HOST, server.port, step, c, warm, secs)
    figures = lean_run(server, "batch_cycle", notes, main, 3)
    print(f"  lean batch_cycle on {server.name}: done", file=sys.stderr, flush=True)
    return figures


def measure_lean(server: Server, budget: Budget, notes: dict[str, Any]) -> dict[str, Any]:
    client = sqs_client(server.endpoint)
    urls = {
        name: client.create_queue(QueueName=f"lean-{name}")["QueueUrl"]
        for name in ("send", "batch", "latency")
    }
    host, port = HOST, server.port
    target = {name: Target(host, port, url, BODY) for name, url in urls.items()}
    c, warm, secs = budget.connections, budget.warmup, budget.lean_seconds
    plan = (
        ("send", send_step(target["send"]), 1),
        ("send_batch", send_batch_step(target["batch"]), 1),
        ("receive_delete", receive_delete_step(target["batch"]), 2),
    )
    figures: dict[str, Any] = {"batch_cycle": lean_batch_cycle(server, budget, notes)}
    for name, step, per_op in plan:
        main = closed_loop(host, port, step, c, warm, secs)
        figures[name] = lean_run(server, name, notes, main, per_op)
        print(f"  lean {name} on {server.name}: done", file=sys.stderr, flush=True)
    main = open_loop(
        host, port, send_step(target["latency"]), budget.rate, warm, budget.latency_seconds, c
    )
    figures["latency_at_rate"] = lean_run(server, "latency_at_rate", notes, main, 1)
    return figures


# --- the report ----------------------------------------------------------------------


def _judge(target: float, measured: float | None, higher: bool = True) -> dict[str, Any]:
    if measured is None:
        return {"target": target, "measured": None, "met": False}
    met = measured >= target if higher else measured <= target
    return {"target": target, "measured": measured, "met": met}


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for workload in WORKLOADS:
        result[f"boto3_{workload}_ratio"] = _judge(
            RATIO_TARGET, figures["boto3"][workload]["ratio"]
        )
    lean = figures["lean"]["trainmq"]
    measured = {
        "send_per_s": lean["send"]["requests_per_s"],
        "send_batch_messages_per_s": lean["send_batch"]["messages_per_s"],
        "latency_p99_ms": lean["latency_at_rate"]["p99_ms"],
    }
    for name, (target, higher) in LEAN_TARGETS.items():
        result[f"lean_{name}"] = _judge(target, measured[name], higher)
    ours = lean["batch_cycle"]["messages_per_s"]
    for peer, target in PEER_TARGETS.items():
        theirs = figures["lean"].get(peer, {}).get("batch_cycle")
        ratio = None if theirs is None else ours / theirs["messages_per_s"]
        result[f"lean_batch_cycle_vs_{peer}"] = _judge(target, ratio)
    return result


def _cpu(cpu: dict[str, Any]) -> str:
    """Per process group: percent of one core, CPU milliseconds per request."""
    parts = []
    for who, share in cpu.items():
        if share is None:
            parts.append(f"{who} n/a")
        else:
            parts.append(f"{who} {share['percent']:>3.0f}% {share['ms_per_request']:5.2f}")
    return "  ".join(parts)


def _verdict(target: dict[str, Any]) -> str:
    if target["measured"] is None:
        return "not measured"
    return "met" if target["met"] else "NOT met"


def _header(report: dict[str, Any]) -> list[str]:
    settings = report["settings"]
    return [
        "trainmq HTTP benchmark (all traffic on 127.0.0.1)",
        f"machine: {settings['cores']} CPU cores, shared by the server under test and its "
        f"load generator; load average at the start {settings['load_average_at_start']:.2f} "
        "(other processes compete for the same cores)",
        f"disk: {settings['file_system']}, {report['figures']['fsync_per_s']:,.0f} fsyncs/s; "
        f"trainmq serve with durability={settings['durability']} (its default: fsync per "
        f"commit) and --workers {settings['workers']} (its default, one per core) unless "
        "marked w1 (--workers 1)",
        f"LocalStack: {settings['localstack']}",
        "CPU columns: percent of one core during the run, then CPU ms per HTTP request",
    ]


def _boto3_table(report: dict[str, Any]) -> list[str]:
    settings, cpu = report["settings"], report["cpu"]
    lines = [
        "",
        f"Part 1 - boto3, {settings['boto3_processes']} client processes x 1 call at a time; "
        "latency per operation",
        f"every server gets the same work in a fresh queue: {settings['boto3_ops']:,} sends, "
        f"{settings['boto3_batches']:,} batches, or receive + delete of "
        f"{settings['receive_depth']:,} messages; a run stops at "
        f"{settings['boto3_seconds']:g} s",
        f"{'workload':<30}{'server':<11}{'req/s':>9}{'msg/s':>9}{'p50 ms':>8}{'p99 ms':>8}  CPU",
    ]
    for workload, (label, _) in WORKLOADS.items():
        row = report["figures"]["boto3"][workload]
        systems = [name for name in ("trainmq", *PEERS) if name in row]
        for index, system in enumerate(systems):
            f = row[system]
            lines.append(
                f"{label if index == 0 else '':<30}{system:<11}"
                f"{f['requests_per_s']:>9,.0f}{f['messages_per_s']:>9,.0f}"
                f"{f['p50_ms']:>8.1f}{f['p99_ms']:>8.1f}  {_cpu(cpu[f'boto3/{workload}/{system}'])}"
            )
        verdict = _verdict(report["targets"][f"boto3_{workload}_ratio"])
        lines.append(
            f"{'':<30}{'ratio':<11}{row['ratio']:>8.1f}x  trainmq/moto requests/s "
            f"(target >= {RATIO_TARGET:g}x: {verdict})"
        )
        if "ratio_localstack" in row:
            lines.append(
                f"{'':<30}{'ratio':<11}{row['ratio_localstack']:>8.1f}x  trainmq/LocalStack "
                "requests/s"
            )
    return lines


def _cycle_table(report: dict[str, Any]) -> list[str]:
    settings, cpu, lean = report["settings"], report["cpu"], report["figures"]["lean"]
    lines = [
        "",
        f"Part 2a - every server, lean generator ({settings['event_loop']}, pre-built "
        f"requests, {settings['cycle_connections']} connections): SendMessageBatch of 10 "
        "+ ReceiveMessage of 10 + DeleteMessageBatch; messages sent plus received-and-deleted",
        f"{'server':<22}{'msg/s':>9}{'req/s':>9}{'p50/p99 ms':>14}  CPU",
    ]
    ours = lean["trainmq"]["batch_cycle"]["messages_per_s"]
    for name in ("trainmq", "trainmq_w1", *PEERS):
        if name not in lean:
            continue
        f = lean[name]["batch_cycle"]
        label = {"trainmq": "trainmq serve", "trainmq_w1": "trainmq serve w1"}.get(name, name)
        server = "trainmq-w1" if name == "trainmq_w1" else name
        lines.append(
            f"{label:<22}{f['messages_per_s']:>9,.0f}{f['requests_per_s']:>9,.0f}"
            f"{f['p50_ms']:>7.1f}/{f['p99_ms']:<6.1f}  {_cpu(cpu[f'lean/{server}/batch_cycle'])}"
        )
    for peer in PEERS:
        target = report["targets"][f"lean_batch_cycle_vs_{peer}"]
        if peer not in lean:
            lines.append(f"trainmq / {peer}: not measured ({settings['localstack']})")
            continue
        w1 = lean.get("trainmq_w1", {}).get("batch_cycle", {}).get("messages_per_s")
        theirs = lean[peer]["batch_cycle"]["messages_per_s"]
        extra = f"; w1: {w1 / theirs:.1f}x" if w1 else ""
        lines.append(
            f"trainmq / {peer}: {ours / theirs:.1f}x (target >= {target['target']:g}x: "
            f"{_verdict(target)}{extra})"
        )
    return lines


_LEAN_ROWS = (  # label, workload, figure, target
    ("SendMessage/s (closed loop)", "send", "requests_per_s", "lean_send_per_s"),
    (
        "SendMessageBatch of 10, messages/s",
        "send_batch",
        "messages_per_s",
        "lean_send_batch_messages_per_s",
    ),
    ("ReceiveMessage+DeleteMessage pairs/s", "receive_delete", "messages_per_s", None),
    (
        "SendMessage p99 ms at {rate} req/s (open loop)",
        "latency_at_rate",
        "p99_ms",
        "lean_latency_p99_ms",
    ),
)


def _lean_table(report: dict[str, Any]) -> list[str]:
    settings, cpu, lean = report["settings"], report["cpu"], report["figures"]["lean"]
    lines = [
        "",
        f"Part 2b - trainmq serve alone, the same generator with {settings['connections']} "
        "connections; targets apply to the default --workers",
        f"{'figure':<44}{'':<4}{'measured':>10}{'target':>11}{'':<9}{'p50/p99 ms':>12}  CPU",
    ]
    for label, name, key, target_name in _LEAN_ROWS:
        for system in ("trainmq", "trainmq_w1"):
            if system not in lean:
                continue
            value = lean[system][name][key]
            shown = f"{value:,.1f}" if key == "p99_ms" else f"{value:,.0f}"
            goal, verdict = "-", ""
            if target_name is not None and system == "trainmq":
                target = report["targets"][target_name]
                goal = ("<= " if key == "p99_ms" else ">= ") + f"{target['target']:,.0f}"
                verdict = _verdict(target)
            f = lean[system][name]
            latency = f"{f['p50_ms']:.1f}/{f['p99_ms']:.1f}"
            title = label.format(rate=f"{settings['rate']:,.0f}") if system == "trainmq" else ""
            server = "trainmq-w1" if system == "trainmq_w1" else "trainmq"
            lines.append(
                f"{title:<44}{'w1' if server != 'trainmq' else '':<4}{shown:>10}{goal:>11}  "
                f"{verdict:<7}{latency:>12}  {_cpu(cpu[f'lean/{server}/{name}'])}"
            )
    return lines


def render(report: dict[str, Any]) -> str:
    lines = _header(report) + _boto3_table(report) + _cycle_table(report) + _lean_table(report)
    if report["capped"]:
        lines.append(f"boto3 runs stopped by the time cap: {', '.join(report['capped'])}")
    if report["drained"]:
        lines.append(f"lean runs that emptied their queue early: {', '.join(report['drained'])}")
    for note in report["localstack_notes"]:
        lines.append(note)
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


# --- main ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="short runs (well under 60 s), without LocalStack"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--dir", type=Path, default=Path(".trainmq/bench"), help="where the databases go"
    )
    parser.add_argument("--connections", type=int, help="lean generator connections")
    parser.add_argument(
        "--localstack-python", help="a Python 3.12+ for LocalStack's environment (default: found)"
    )
    return parser.parse_args(argv)


def _start_localstack(
    args: argparse.Namespace, workdir: Path, notes: dict[str, Any]
) -> tuple[Server | None, str]:
    if args.quick:
        return None, "left out by --quick (it would be installed and started)"
    run: LocalStackRun = start_localstack(args.dir, workdir, args.localstack_python)
    notes["localstack_notes"] += run.notes
    if run.server is None:
        return None, "not measured: no release would install and start (see the notes below)"
    return run.server, f"localstack-core {run.version}, community edition, host mode, in memory"


def run(budget: Budget, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    notes: dict[str, Any] = {"cpu": {}, "capped": [], "drained": [], "localstack_notes": []}
    load = os.getloadavg()[0]  # before anything of ours runs: other work on the machine
    fsync = fsync_rate(workdir, budget.fsync_seconds)
    pool = BotoPool(budget.boto3_processes)
    servers: list[Server] = []
    lean: dict[str, Any] = {}
    try:
        servers.append(start_trainmq(workdir / "queues.db", workdir))
        servers.append(start_moto(workdir))
        localstack, localstack_note = _start_localstack(args, workdir, notes)
        if localstack is not None:
            servers.append(localstack)
        print("servers up; measuring", file=sys.stderr, flush=True)
        boto3_figures = measure_boto3(pool, servers, budget, notes)
        while len(servers) > 1:  # a peer's threads must not take CPU from the next runs
            peer = servers.pop()
            lean[peer.name] = {"batch_cycle": lean_batch_cycle(peer, budget, notes)}
            peer.stop()
        lean["trainmq"] = measure_lean(servers[0], budget, notes)
        servers.pop().stop()
        servers.append(start_trainmq(workdir / "queues-w1.db", workdir, workers=1))
        lean["trainmq_w1"] = measure_lean(servers[0], budget, notes)
    finally:
        for server in servers:
            server.stop()
        pool.close()
    figures = {"fsync_per_s": fsync, "boto3": boto3_figures, "lean": lean}
    settings = {
        "cores": os.cpu_count(),
        "workers": os.cpu_count(),
        "load_average_at_start": load,
        "file_system": file_system_type(workdir),
        "durability": "full",
        "quick": args.quick,
        "event_loop": event_loop_name(),
        "localstack": localstack_note,
        **dataclasses.asdict(budget),
    }
    report = {"figures": figures, "settings": settings, **notes}
    report["targets"] = targets(figures)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    if args.connections:
        budget = dataclasses.replace(budget, connections=args.connections)
    args.dir.mkdir(parents=True, exist_ok=True)
    if file_system_type(args.dir) in RAM_FILE_SYSTEMS:
        print(f"{args.dir} is in RAM (fsync costs nothing there); use --dir", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="http-", dir=args.dir))
    try:
        report = run(budget, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(report))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
