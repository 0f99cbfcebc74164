"""Multi-process training (DistributedDataParallel) that resumes exactly, under trainmq.

Run by the launcher as an entrypoint (``examples/entrypoints.toml``, ``ddp-tiny``)::

    python -m torch.distributed.run --standalone --nproc_per_node 2 examples/ddp_train.py \\
        --steps 40 --checkpoint-every 5

Every rank adopts the launcher's attempt (``Run.launched()``) and restores the newest
checkpoint; rank 0 alone writes checkpoints, after a barrier, and reports.  The data of a
step is drawn by a generator seeded with (seed, step, rank), so the batches of a resumed
run are the ones it would have drawn; the model has no dropout, so nothing depends on a
rank's global RNG.  The ranks agree on stopping (an all-reduce of ``should_stop``).
gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import argparse
import io
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from trainmq.training import Run
from trainmq.training.locations import key_of


def batch(seed: int, step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """This rank's batch of ``step``: a pure function of (seed, step, rank)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + rank)
    inputs = torch.randn(16, 8, generator=generator)
    targets = inputs.sum(1, keepdim=True) + 0.1 * torch.randn(16, 1, generator=generator)
    return inputs.to(device), targets.to(device)


def agreed(flag: bool, device: torch.device) -> bool:
    """Whether any rank says so (every rank gets the same answer)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to idle per step")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if cuda else "cpu")
    torch.set_num_threads(1)
    with Run.launched() as run:
        seed = run.request.optimizer.seed
        torch.manual_seed(seed)  # the same initial weights on every rank
        model = DistributedDataParallel(
            torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)).to(
                device
            )
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        parts = {"model": model.module, "optimizer": optimizer}
        state = run.restore(**parts, map_location=device)  # every rank reads the same one
        step = int(state["step"]) if state else 0
        dist.barrier()
        while step < args.steps:
            inputs, targets = batch(seed, step, rank, device)
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if rank == 0:
                run.report(step, loss=loss.item())
            stop = agreed(run.should_stop, device) and step < args.steps
            if stop or (step % args.checkpoint_every == 0 and step < args.steps):
                dist.barrier()  # every rank finished the step: rank 0's state is everyone's
                if rank == 0:
                    run.checkpoint(step, wait=stop, **parts)
                dist.barrier()
            if stop:
                dist.destroy_process_group()
                raise SystemExit(75)  # checkpointed: the launcher continues the run later
            time.sleep(args.pause)
        if rank == 0:
            buffer = io.BytesIO()
            torch.save(model.module.state_dict(), buffer)
            output = key_of(run.store, run.request.output_uri, "output").rstrip("/")
            run.store.put(f"{output}/model.pt", buffer.getvalue())
            run.complete(steps=step, loss=loss.item(), world_size=dist.get_world_size())
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
