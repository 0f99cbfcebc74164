"""One rank of a two-process run saving and loading a sharded checkpoint (gloo, CPU)."""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

from trainmq.store import open_store
from trainmq.training.checkpoints import CheckpointStore
from trainmq.training.sharded import load_sharded, save_sharded

if __name__ == "__main__":
    root, init, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)
    checkpoints = CheckpointStore(open_store(root), "run/checkpoints", attempt=1)
    # Replicated weights, and a tensor of this rank's own (as a sharded optimizer has).
    state = {"shared": torch.arange(6.0), f"rank{rank}": torch.full((4,), float(rank + 1))}
    save_sharded(checkpoints, 5, state)
    for tensor in state.values():
        tensor.zero_()
    assert load_sharded(checkpoints, 5, state)
    assert torch.equal(state["shared"], torch.arange(6.0))
    assert torch.equal(state[f"rank{rank}"], torch.full((4,), float(rank + 1)))
    dist.destroy_process_group()
    print("ok", flush=True)
