"""A team's own training script, launched by trainmq (``examples/entrypoints.toml``).

It trains a tiny regression model of its own on data it makes itself; ``Run.launched()``
adopts the attempt the launcher holds, so the script restores, checkpoints and reports
like any durable run, and stops (exit 75, resumed later) when the launcher says so.

    python examples/tiny_loop.py --lr 0.01 --steps 40 --checkpoint-every 5 [--pause 0.05]
"""

from __future__ import annotations

import argparse
import io
import random
import time

import numpy as np
import torch

from trainmq.training import Run
from trainmq.training.locations import key_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to idle per step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with Run.launched() as run:
        seed = run.request.optimizer.seed
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 1)
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        parts = {"model": model, "optimizer": optimizer}
        state = run.restore(**parts)
        step = int(state["step"]) if state else 0
        while step < args.steps:
            inputs = torch.randn(16, 8)
            noise = torch.from_numpy(np.random.normal(0, 0.1, (16, 1)).astype(np.float32))
            loss = torch.nn.functional.mse_loss(model(inputs), inputs.sum(1, keepdim=True) + noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.report(step, loss=loss.item())
            if run.should_stop and step < args.steps:
                run.stop(step, **parts)  # exits 75: the launcher continues the run later
            if step % args.checkpoint_every == 0 and step < args.steps:
                run.checkpoint(step, **parts)
            time.sleep(args.pause)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        output = key_of(run.store, run.request.output_uri, "output").rstrip("/")
        run.store.put(f"{output}/model.pt", buffer.getvalue())
        run.complete(steps=step, loss=loss.item())


if __name__ == "__main__":
    main()
