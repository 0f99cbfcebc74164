"""A user's own training loop made durable with ``trainmq.training.Run`` (the kill tests run
it as a process).  Its randomness comes from Python's, NumPy's and torch's global generators
(dropout, data, noise), so only a resume that restores every RNG state ends bit-identical.

usage: user_loop.py STORE_ROOT RUN STEPS CHECKPOINT_EVERY WEIGHTS_OUT [SECONDS_PER_STEP]
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from trainmq.store import open_store
from trainmq.training import DatasetRef, OptimizerConfig, Run, TrainRequest
from trainmq.training.locations import uri_of


def request_for(store_root: str, run: str, steps: int) -> TrainRequest:
    store = open_store(store_root)
    return TrainRequest(
        run_id=run,
        idempotency_key=f"user/{run}",
        # This loop makes its own data; the dataset field is only carried along.
        dataset=DatasetRef(
            manifest_uri=uri_of(store, "datasets/none/manifest.json"), manifest_sha256="0" * 64
        ),
        optimizer=OptimizerConfig(steps=steps, seed=3),
        checkpoint_uri=uri_of(store, f"user-runs/{run}/checkpoints"),
        output_uri=uri_of(store, f"user-runs/{run}/output"),
        keep_last=2,
    )


def main(
    store_root: str,
    run_name: str,
    steps: int,
    every: int,
    out: str,
    pause: float = 0.0,
    remaining: Callable[[], float] | None = None,
) -> None:
    torch.set_num_threads(1)
    request = request_for(store_root, run_name, steps)
    torch.manual_seed(request.optimizer.seed)
    random.seed(request.optimizer.seed)
    np.random.seed(request.optimizer.seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 1)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.8)
    with Run(request, store=open_store(store_root), remaining=remaining) as run:
        if not run.training:
            print("nothing to train:", run.result, flush=True)
            return
        state = run.restore(model=model, optimizer=optimizer, scheduler=scheduler)
        step = int(state["step"]) if state else 0
        parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
        while step < steps:
            inputs = torch.randn(16, 8)
            noise = torch.from_numpy(np.random.normal(0, 0.1, (16, 1)).astype(np.float32))
            targets = inputs.sum(dim=1, keepdim=True) + noise
            weight = 1.0 if random.random() < 0.8 else 0.5
            loss = weight * torch.nn.functional.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            run.report(step, loss=loss.item())
            if step % every == 0 and step < steps:
                run.checkpoint(step, data_position={"step": step}, **parts)
            if run.should_stop and step < steps:
                run.stop(step, data_position={"step": step}, **parts)
            time.sleep(pause)
        torch.save(model.state_dict(), out)
        run.complete(steps=step)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], int(args[2]), int(args[3]), args[4], float(args[5]) if args[5:] else 0)
