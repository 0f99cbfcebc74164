"""The printed report of ``pipeline.py``: its figures, each target and whether it was met."""

from __future__ import annotations

from typing import Any

from checkpoint_cost import report_lines
from ddp_cost import report_lines as ddp_lines
from trainmq.training.messages import TrainRequest

__all__ = ["CHECKPOINT_TARGET_PERCENT", "DEFAULT_CHECKPOINT_EVERY", "DURABILITY_TARGET_PERCENT",
           "RESUME_TARGET_S", "report"]

DURABILITY_TARGET_PERCENT = 5.0
CHECKPOINT_TARGET_PERCENT = 3.5  # CheckFreq (FAST '21), frequent checkpointing
RESUME_TARGET_S = 10.0  # from a killed job to its first resumed step, beyond its start-up
DEFAULT_CHECKPOINT_EVERY = int(TrainRequest.model_fields["checkpoint_every"].default)


def report(result: dict[str, Any]) -> str:
    f, s = result["figures"], result["settings"]
    p, t = f["prepare"], f["training"]
    lines = [
        "trainmq pipeline benchmark",
        f"machine: {s['cores']} CPU cores, shared by the benchmark, its workers and other "
        f"processes; torch threads {s['torch_threads']}",
        f"disk: {s['file_system']}, raw write+fsync {s['fsync_per_s']:,.0f}/s",
        "",
        f"prepare: {s['corpus_bytes']:,} bytes of Python's docs and stdlib in "
        f"{s['input_files']} input files -> {p['in_process']['tokens']:,} tokens "
        f"(vocabulary {s['vocab_size']}); clock from the first send to the manifest; "
        f"median of {len(p['in_process']['runs_s'])} run(s) each",
        f"{'prepare':<34} {'tokenizer s':>11} {'total s':>8} {'tokens/s':>10} {'vs 1 worker':>11}",
    ]
    b = p["in_process"]
    lines.append(f"{'prepare(), one process (peer)':<34} {b['tokenizer_s']:>11.2f} "
                 f"{b['seconds']:>8.2f} {b['tokens_per_s']:>10,.0f} {'':>11}")
    lines.append(f"{'  without the tokenizer':<34} {'':>11} {b['tokenize_s']:>8.2f} "
                 f"{b['tokens_per_s_without_tokenizer']:>10,.0f} {'':>11}")
    for state, label in (("cold", "tokenizer trained in the run"),
                         ("warm", "tokenizer already stored")):
        for workers in (1, 2):
            run = p[f"workers_{workers}"][state]
            ratio = "" if workers == 1 else f"{p[f'scaling_2_vs_1_{state}']:.2f}x"
            name = f"{workers} worker process{'es' if workers > 1 else ''}, {state}"
            lines.append(f"{name:<34} {'in run' if state == 'cold' else 'stored':>11} "
                         f"{run['seconds']:>8.2f} {run['tokens_per_s']:>10,.0f} {ratio:>11}")
        lines.append(f"  ({state}: {label})")
    worker_start = [p[f"workers_{n}"][st]["worker_start_s"] for n in (1, 2)
                    for st in ("cold", "warm")]
    lines.append(f"  worker start-up, not timed: {min(worker_start):.1f}-{max(worker_start):.1f} s")
    d = t["durable"]
    lines += [
        "",
        f"training: default model (layers {s['model']['layers']}, width {s['model']['width']}, "
        f"heads {s['model']['heads']}, context {s['model']['context']}), batch "
        f"{s['batch_size']}, {t['steps']} steps = {t['tokens_per_step']:,} tokens/step; "
        f"checkpoint every {s['checkpoint_every']} steps; median of {len(d['runs_s'])} runs each",
        f"{'training':<34} {'s/run':>8} {'ms/step':>8} {'tokens/s':>10} {'vs bare':>8}",
        f"{'bare PyTorch loop (peer)':<34} {t['bare']['seconds']:>8.2f} "
        f"{t['bare']['step_ms']:>8.1f} {t['bare']['tokens_per_s']:>10,.0f} {'':>8}",
        f"{'durable (train_request)':<34} {d['seconds']:>8.2f} {d['step_ms']:>8.1f} "
        f"{d['tokens_per_s']:>10,.0f} {t['durable_vs_bare']:>7.2f}x",
        f"  runs: bare {', '.join(f'{x:.2f}' for x in t['bare']['runs_s'])} s; durable "
        f"{', '.join(f'{x:.2f}' for x in d['runs_s'])} s; same weights: "
        f"{'yes' if t['same_weights'] else 'NO'}",
        f"  per durable run: {d['checkpoints']} checkpoints, {d['events_published']} events "
        f"published to the queue, heartbeats every {s['beat_every_s']:g} s",
        "",
        "durability (checkpoints + heartbeats + events) as a share of step time:",
        f"  measured directly (medians): {d['trainer_durability_s']:.3f} s in the trainer + "
        f"{d['registry_s']:.3f} s of registry work around it per run = "
        f"{t['durability_percent_measured']:.2f}% of the run's wall time",
        f"  wall time, durable minus bare, median of the back-to-back pairs: "
        f"{t['durability_percent_wall']:+.2f}% (pairs "
        f"{', '.join(f'{x:+.1f}%' for x in t['durability_percent_wall_pairs'])}; "
        f"the bare runs alone spread by {t['bare_spread_percent']:.1f}%)",
        f"  checkpoints alone: the loop blocked {d['checkpoint_blocked_s']:.3f} s per run "
        f"(copies to host memory) = {t['checkpoint_blocked_percent']:.2f}% of the bare run's "
        f"step time (a checkpoint every {s['checkpoint_every']} steps)",
        "",
        *report_lines(f["checkpoints"]),
        "",
        *ddp_lines(f["ddp"], CHECKPOINT_TARGET_PERCENT, RESUME_TARGET_S),
        "",
        "targets:",
    ]
    for name, judged in result["targets"].items():
        lines.append(f"  {name}: {judged['value']:.2f} vs target {judged['target']:.2f}"
                     f" -> {'met' if judged['met'] else 'NOT met'}")
    if s["checkpoint_every"] != DEFAULT_CHECKPOINT_EVERY:
        lines.append(f"  (--quick checkpoints every {s['checkpoint_every']} steps, not every "
                     f"{DEFAULT_CHECKPOINT_EVERY}: the target is judged on the full run)")
    return "\n".join(lines)
