"""The deterministic, resumable sampler over a dataset's token shards, for any loop.

The batch of step ``s`` is a pure function of ``(seed, s)``: a generator seeded
with ``[seed, s]`` draws the start of every window of ``context + 1`` tokens.
So a loop needs no sampler state in its checkpoint beyond the step; a resumed
run draws exactly the batches it would have drawn.  With ``world_size``
ranks, the step's draw is ``batch_size * world_size`` windows and rank ``r``
takes the ``r``-th block of ``batch_size``: ranks never depend on each other,
the union over ranks is the same global batch whatever rank restarts, and
with one rank the batches are the built-in trainer's (it draws through
``window_rows`` too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import PermanentFailure
from ..store import BlobStore
from .dataset import read_manifest
from .messages import DatasetRef
from .shards import ShardCache, TokenSplit, default_cache_dir, map_split

__all__ = ["SAMPLER", "TokenSampler", "window_rows"]

#: Names the draw; checkpoints record it, so a resume under another draw is refused.
SAMPLER = "random-offsets/1"


def window_rows(
    tokens: TokenSplit, seed: list[int], context: int, count: int, first: int = 0
) -> np.ndarray[Any, Any]:
    """Windows ``first .. first + count`` of the ``[seed]`` draw, as int64 rows of
    ``context + 1`` tokens (inputs and the targets shifted by one)."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(tokens) - context - 1, size=first + count)[first:]
    return np.stack([tokens[s : s + context + 1] for s in starts]).astype(np.int64)


class TokenSampler:
    """Batches of one split for rank ``rank`` of ``world_size``; ``batch(step)`` is pure."""

    def __init__(
        self,
        tokens: TokenSplit,
        *,
        context: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        vocab_size: int | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        if len(tokens) <= context + 1:
            raise PermanentFailure(
                f"the split has {len(tokens)} tokens, fewer than the context ({context}) + 1"
            )
        self.tokens = tokens
        self.context, self.batch_size, self.seed = context, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.vocab_size = vocab_size

    @classmethod
    def open(
        cls,
        store: BlobStore,
        dataset: DatasetRef,
        *,
        context: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        split: str = "train",
        cache: ShardCache | None = None,
    ) -> TokenSampler:
        """A sampler over ``split`` of the pinned dataset (every shard verified once on this
        host against the manifest's sha256, then memory-mapped)."""
        manifest = read_manifest(store, dataset)
        tokens = map_split(store, manifest, split, cache or ShardCache(default_cache_dir()))
        return cls(
            tokens,
            context=context,
            batch_size=batch_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            vocab_size=manifest.vocab_size,
        )

    def rows(self, step: int) -> np.ndarray[Any, Any]:
        """This rank's windows of step ``step``."""
        rows = window_rows(
            self.tokens,
            [self.seed, step],
            self.context,
            self.batch_size,
            first=self.rank * self.batch_size,
        )
        if self.vocab_size is not None and int(rows.max()) >= self.vocab_size:
            raise PermanentFailure("the dataset holds token ids outside its vocabulary")
        return rows

    def batch(
        self, step: int, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of step ``step`` for this rank."""
        batch = torch.from_numpy(self.rows(step)).to(device)
        return batch[:, :-1], batch[:, 1:]

    def position(self, step: int) -> dict[str, Any]:
        """The data position to checkpoint with step ``step`` (all a resume needs)."""
        return {
            "sampler": SAMPLER,
            "seed": self.seed,
            "step": step,
            "rank": self.rank,
            "world_size": self.world_size,
        }
