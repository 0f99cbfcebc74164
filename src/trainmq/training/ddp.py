"""What a ``torchrun`` job needs to be a durable run: ranks that agree, checkpoint together
and resume from one checkpoint.

Every rank adopts the launcher's attempt (``Run.launched()``), so every rank restores the
same newest checkpoint; rank 0 alone writes checkpoints and reports.  The rules a job
follows, which these helpers implement:

* ``start()`` joins the process group: gloo on CPU, NCCL when CUDA is available (one
  device per local rank);
* ``restore(run, group, ...)``: every rank loads the newest checkpoint, then waits at a
  barrier (no rank writes while another still reads or sweeps what killed writes left);
* ``agree(group, loss, *flags)`` is one all-reduce per step: the mean of the ranks'
  losses, and whether any rank raised each flag (asked to stop by SIGTERM or the deadline;
  a checkpoint due by time), so all ranks act at the same step;
* ``checkpoint(run, group, step, ...)``: every rank reaches a barrier (each finished the
  step, so rank 0's state is everyone's), rank 0 writes, a second barrier lets the others
  go on;
* ``stop(run, group, step, ...)``: a checkpoint that is waited for, then exit 75 on every
  rank (the launcher continues the run in a later delivery).

A rank that dies makes ``torchrun`` stop the others and exit non-zero: the launcher retries
the message and the next launch resumes from the last complete checkpoint.  Data must be a
function of (seed, step, rank), as ``Run.sampler(rank=, world_size=)``'s batches are; a
rank's global RNG state is not in rank 0's checkpoint, so a model that draws from it
(dropout) does not resume exactly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from ..errors import PermanentFailure
from .run_api import EXIT_STOPPED, Run

__all__ = ["Group", "agree", "checkpoint", "finish", "restore", "start", "stop"]


@dataclass
class Group:
    """This process's place in the job, and the seconds ``checkpoint`` held this rank up
    (barriers and the copy to host memory: what checkpoints cost its training loop)."""

    rank: int
    world_size: int
    device: torch.device
    backend: str
    blocked_seconds: float = 0.0

    @property
    def leader(self) -> bool:
        return self.rank == 0


def start(device: str = "auto") -> Group:
    """Join the job's process group (``torchrun`` put the rendezvous in the environment).

    ``device``: ``auto`` (CUDA when there is one), ``cuda`` or ``cpu``; with CUDA, the
    backend is NCCL and each local rank takes one device; on CPU it is gloo."""
    if device == "cuda" and not torch.cuda.is_available():
        raise PermanentFailure("the request asks for device 'cuda', and this worker has none")
    cuda = device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
        where = torch.device(f"cuda:{local}")
        torch.cuda.set_device(where)
    else:
        where = torch.device("cpu")
    return Group(rank, dist.get_world_size(), where, backend)


def restore(run: Run, group: Group, **parts: Any) -> dict[str, Any] | None:
    """``run.restore(**parts)`` onto this rank's device, on every rank, then a barrier."""
    state = run.restore(**parts, map_location=group.device)
    dist.barrier()
    return state


def agree(group: Group, loss: float, *flags: bool) -> tuple[float, tuple[bool, ...]]:
    """The mean of every rank's ``loss``, and for each flag whether any rank raised it
    (every rank gets the same answer: one all-reduce)."""
    values = torch.tensor(
        [loss, *(1.0 if flag else 0.0 for flag in flags)], dtype=torch.float64, device=group.device
    )
    dist.all_reduce(values)
    return float(values[0]) / group.world_size, tuple(bool(v > 0) for v in values[1:].tolist())


def checkpoint(
    run: Run,
    group: Group,
    step: int,
    state: dict[str, Any] | None = None,
    *,
    wait: bool = False,
    **parts: Any,
) -> str | None:
    """Rank 0 checkpoints ``step`` between two barriers; its URI on rank 0, else ``None``."""
    started = time.perf_counter()
    dist.barrier()  # every rank finished the step: rank 0's state is everyone's
    uri = run.checkpoint(step, state, wait=wait, **parts) if group.leader else None
    dist.barrier()
    group.blocked_seconds += time.perf_counter() - started
    return uri


def stop(
    run: Run, group: Group, step: int, state: dict[str, Any] | None = None, **parts: Any
) -> NoReturn:
    """Checkpoint ``step`` (waited for) and exit 75 on every rank: resumed later."""
    checkpoint(run, group, step, state, wait=True, **parts)
    finish()
    raise SystemExit(EXIT_STOPPED)


def finish() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()
