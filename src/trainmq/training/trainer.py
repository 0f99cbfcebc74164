"""Training one run: exact to resume, durable every ``checkpoint_every`` steps
(and every ``checkpoint_seconds``), checkpoints written off the training path.

Everything a step depends on is either in the checkpoint (weights, optimizer
state, RNG states, step) or a pure function of the step: the batch of step
``s`` is drawn by a generator seeded with ``(seed, s)`` and the learning rate
is a schedule of ``s``.  So a run killed at any point and resumed from its
newest complete checkpoint computes exactly the steps it would have computed,
and ends with bit-identical weights (on the same device and thread count).

Every write is fenced (``training.fencing``): a trainer whose attempt was
superseded stops at its next step or write, whichever comes first.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import PermanentFailure
from ..store import BlobExists, BlobStore
from .checkpoints import AsyncCheckpointer, CheckpointStore
from .dataset import Manifest, read_manifest
from .fencing import Fence
from .locations import key_of, uri_of
from .messages import OptimizerConfig, TrainRequest
from .model import GPT, weights_sha256
from .sampler import SAMPLER, window_rows
from .shards import ShardCache, TokenSplit, default_cache_dir, map_split

__all__ = ["OutOfTime", "TrainResult", "Trainer", "build_optimizer", "learning_rate", "pick_device"]

EVAL_BATCHES = 4


class OutOfTime(Exception):
    """The invocation's time is nearly up (or the host is being preempted): a checkpoint
    was written, resume later."""

    def __init__(self, step: int, why: str = "the invocation's time is nearly up") -> None:
        super().__init__(f"stopped at step {step} to resume later: {why} (checkpoint written)")
        self.step = step
        self.why = why


@dataclass
class TrainResult:
    run_id: str
    steps: int
    weights_sha256: str
    train_loss: float
    #: The trainer's estimate from a few random validation batches (the evaluate stage's
    #: report has the loss over the whole validation split).
    val_loss_estimate: float
    tokens: int
    resumed_from: int | None
    checkpoints: list[str] = field(default_factory=list)
    output_uri: str = ""
    seconds: float = 0.0
    durability_seconds: float = 0.0
    checkpoint_blocked_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise PermanentFailure("the request asks for device 'cuda', and this worker has none")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to a tenth of ``peak``."""
    warmup = max(1, total // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def build_optimizer(model: torch.nn.Module, opt: OptimizerConfig) -> torch.optim.Optimizer:
    """The trainer's optimizer for ``model``: SGD with momentum, or AdamW whose weight decay
    applies to the matrices of linear layers only (decaying norms, biases and embeddings
    pulls them towards zero for no benefit; GPT-2 and nanoGPT do the same)."""
    if opt.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=opt.learning_rate, momentum=0.9)
    matrices = {
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n in matrices], "weight_decay": opt.weight_decay},
        {"params": [p for n, p in named if n not in matrices], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=opt.learning_rate)


#: ``emit(event, **fields)``: publish a TrainingEvent of this attempt.
Emit = Callable[..., None]


class Trainer:
    """Trains ``request`` in ``store``; ``run()`` resumes from the newest checkpoint."""

    def __init__(
        self,
        store: BlobStore,
        request: TrainRequest,
        *,
        emit: Emit | None = None,
        beat: Callable[[], None] | None = None,
        remaining: Callable[[], float] | None = None,
        log_every: int | None = None,
        fence: Fence | None = None,
        preempted: Callable[[], bool] | None = None,
        cache: ShardCache | None = None,
    ) -> None:
        self.store = store
        self.request = request
        self.emit: Emit = emit or (lambda event, **fields: None)
        #: Called from the training thread whenever it makes progress (steps, shards, saves).
        self.beat = beat or (lambda: None)
        self.remaining = remaining
        self.preempted = preempted or (lambda: False)
        self.log_every = log_every or max(1, min(10, request.checkpoint_every // 5 or 1))
        self.fence = fence
        self.cache = cache or ShardCache(default_cache_dir())
        self.vocab_size = 0
        self.checkpoints = CheckpointStore(
            store,
            key_of(store, request.checkpoint_uri, "checkpoint"),
            attempt=fence.attempt if fence else 0,
            fence=fence.check if fence else None,
            keep_last=request.keep_last,
            keep_every=request.keep_every,
        )
        self.writer = AsyncCheckpointer(self.checkpoints, self._saved)
        self.durability_seconds = 0.0
        self._val_losses: dict[int, float | None] = {}

    # -- data -----------------------------------------------------------------------------
    def _load_data(self) -> tuple[Manifest, TokenSplit, TokenSplit]:
        manifest = read_manifest(self.store, self.request.dataset)
        train = map_split(self.store, manifest, "train", self.cache, self.beat)
        val = map_split(self.store, manifest, "val", self.cache, self.beat)
        context = self.request.model.context
        for split, tokens in (("train", train), ("val", val)):
            if len(tokens) <= context + 1:
                raise PermanentFailure(
                    f"the dataset's {split} split has {len(tokens)} tokens, fewer than the "
                    f"model's context ({context}) + 1"
                )
        return manifest, train, val

    def _batch(
        self, tokens: TokenSplit, seed: list[int], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = window_rows(
            tokens, seed, self.request.model.context, self.request.optimizer.batch_size
        )
        if int(rows.max()) >= self.vocab_size:
            raise PermanentFailure("the dataset holds token ids outside its vocabulary")
        batch = torch.from_numpy(rows).to(device)
        return batch[:, :-1], batch[:, 1:]

    @torch.no_grad()
    def validation_loss(self, model: GPT, val: TokenSplit, device: torch.device) -> float:
        model.eval()
        seed = self.request.optimizer.seed
        losses = [
            float(model.loss(*self._batch(val, [seed, 1 << 40, i], device)))
            for i in range(EVAL_BATCHES)
        ]
        model.train()
        return sum(losses) / len(losses)

    # -- the run --------------------------------------------------------------------------
    def _optimizer(self, model: GPT) -> torch.optim.Optimizer:
        return build_optimizer(model, self.request.optimizer)

    def _state(self, model: GPT, optimizer: torch.optim.Optimizer, step: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "data_position": {
                "sampler": SAMPLER,
                "seed": self.request.optimizer.seed,
                "step": step,
            },
            "run_id": self.request.run_id,
            "model_config": self.request.model.model_dump(),
        }

    def _saved(self, step: int, directory: str) -> None:
        """A background save finished (its marker is written): publish it."""
        uri = uri_of(self.store, directory)
        self.emit(
            "checkpoint", step=step, val_loss=self._val_losses.pop(step, None), checkpoint_uri=uri
        )

    def _checkpoint(
        self,
        model: GPT,
        optimizer: torch.optim.Optimizer,
        step: int,
        val_loss: float | None,
        *,
        wait: bool = False,
    ) -> str:
        """Save in the background (``wait``: and wait for it); returns the checkpoint's URI."""
        self._val_losses[step] = val_loss
        self.durability_seconds += self.writer.submit(step, self._state(model, optimizer, step))
        if wait:
            started = time.perf_counter()
            self.writer.wait(self.beat)
            self.durability_seconds += time.perf_counter() - started
        self.beat()
        return uri_of(self.store, self.checkpoints.directory(step))

    def _resume(self, model: GPT, optimizer: torch.optim.Optimizer, device: torch.device) -> int:
        """Load the newest complete checkpoint, if any; the step to continue from."""
        loaded = self.checkpoints.newest(map_location=device)
        if loaded is None:
            self.emit("started", step=0)
            return 0
        state = loaded.state
        if state.get("data_position", {}).get("sampler") != SAMPLER:
            raise PermanentFailure(f"the checkpoint {loaded.key} was written by another sampler")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])
        self.emit("resumed", step=step, message=f"resumed from the checkpoint of step {step}")
        return step

    def _train_step(
        self,
        model: GPT,
        optimizer: torch.optim.Optimizer,
        train: TokenSplit,
        step: int,
        device: torch.device,
    ) -> float:
        """One optimizer step (the ``step``-th, counting from 0); its loss."""
        opt = self.request.optimizer
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, opt.steps, opt.learning_rate)
        inputs, targets = self._batch(train, [opt.seed, step], device)
        loss = model.loss(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss.item())

    def _report(self, step: int, window: list[float]) -> float | None:
        """Stamp the attempt alive; every ``log_every`` steps, publish the mean loss."""
        started = time.perf_counter()
        self.beat()
        mean = None
        total = self.request.optimizer.steps
        if window and (step % self.log_every == 0 or step == total):
            mean = sum(window) / len(window)
            window.clear()
            tokens = step * self.request.optimizer.batch_size * self.request.model.context
            self.emit("progress", step=step, train_loss=mean, tokens=tokens, total_steps=total)
        self.durability_seconds += time.perf_counter() - started
        return mean

    def _save_output(self, model: GPT) -> str:
        output = key_of(self.store, self.request.output_uri, "output").rstrip("/")
        buffer = io.BytesIO()
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buffer)
        data = buffer.getvalue()
        if self.fence is not None:
            self.fence.check()
        try:  # create-only: a writer paused after its fence check cannot replace it
            self.store.create(f"{output}/model.pt", data)
        except BlobExists:
            if self.store.sha256(f"{output}/model.pt") != hashlib.sha256(data).hexdigest():
                if self.fence is not None:
                    self.fence.check()
                self.store.put(f"{output}/model.pt", data)
        return uri_of(self.store, output)

    def _due(self, step: int, since: float) -> bool:
        """Whether ``step`` (not the last) gets a checkpoint: by steps or by time."""
        request = self.request
        if step >= request.optimizer.steps:
            return False
        if step % request.checkpoint_every == 0:
            return True
        seconds = request.checkpoint_seconds
        return seconds is not None and time.monotonic() - since >= seconds

    def _stop_reason(self, step_seconds: float) -> str | None:
        """Why to stop now (checkpoint, then resume later), if at all.

        The margin covers a few steps, the time a checkpoint write took last
        (it must finish before the invocation ends) and ten seconds of slack.
        """
        if self.preempted():
            return "the worker is shutting down (preemption)"
        if self.remaining is None:
            return None
        margin = 3 * step_seconds + 2 * self.writer.last_write_seconds + 10
        return "the invocation's time is nearly up" if self.remaining() < margin else None

    def _finish(
        self,
        model: GPT,
        optimizer: torch.optim.Optimizer,
        step: int,
        val_loss: float,
        checkpoints: list[str],
    ) -> None:
        """The final checkpoint, verified: one that is missing or corrupt is (re)written."""
        self.writer.wait(self.beat)
        if not self.checkpoints.verify(step):
            checkpoints.append(self._checkpoint(model, optimizer, step, val_loss, wait=True))
        if not checkpoints or not checkpoints[-1].endswith(f"step-{step:08d}"):
            checkpoints.append(uri_of(self.store, self.checkpoints.directory(step)))

    def _loop(
        self,
        model: GPT,
        optimizer: torch.optim.Optimizer,
        train: Any,
        val: Any,
        step: int,
        device: torch.device,
        checkpoints: list[str],
    ) -> tuple[int, float]:
        """Steps until the last; the step reached and the newest reported train loss."""
        opt = self.request.optimizer
        window: list[float] = []
        train_loss = float("nan")
        since = time.monotonic()
        while step < opt.steps:
            if self.fence is not None:
                self.fence.raise_if_lost()
            step_started = time.perf_counter()
            window.append(self._train_step(model, optimizer, train, step, device))
            step += 1
            step_seconds = time.perf_counter() - step_started
            train_loss = self._report(step, window) or train_loss
            if self._due(step, since):
                val_loss = self.validation_loss(model, val, device)
                checkpoints.append(self._checkpoint(model, optimizer, step, val_loss))
                since = time.monotonic()
            elif step < opt.steps and (why := self._stop_reason(step_seconds)) is not None:
                checkpoints.append(self._checkpoint(model, optimizer, step, None, wait=True))
                raise OutOfTime(step, why)
        return step, train_loss

    def run(self) -> TrainResult:
        """Train to ``optimizer.steps`` from the newest checkpoint; raises ``OutOfTime``
        (after a checkpoint) when ``remaining()`` says the invocation is nearly over or
        ``preempted()`` says the worker is going away."""
        request, opt = self.request, self.request.optimizer
        started = time.perf_counter()
        if request.resources.threads:
            torch.set_num_threads(request.resources.threads)
        device = pick_device(request.resources.device)
        manifest, train, val = self._load_data()
        self.vocab_size = manifest.vocab_size
        torch.manual_seed(opt.seed)
        model = GPT(request.model, manifest.vocab_size).to(device)
        optimizer = self._optimizer(model)
        first = self._resume(model, optimizer, device)
        if self.fence is not None:  # the current attempt: what killed writes left is junk
            self.fence.check()
            self.checkpoints.remove_unmarked()
        self.beat()
        checkpoints = [
            uri_of(self.store, self.checkpoints.directory(s))
            for s in self.checkpoints.complete_steps()
            if s <= first
        ]
        model.train()
        try:
            step, train_loss = self._loop(model, optimizer, train, val, first, device, checkpoints)
            val_loss = self.validation_loss(model, val, device)
            self._finish(model, optimizer, step, val_loss, checkpoints)
        finally:
            self.writer.wait_quietly()
        return TrainResult(
            run_id=request.run_id,
            steps=step,
            weights_sha256=weights_sha256(model),
            train_loss=train_loss,
            val_loss_estimate=val_loss,
            tokens=step * opt.batch_size * request.model.context,
            resumed_from=first if first else None,
            checkpoints=checkpoints,
            output_uri=self._save_output(model),
            seconds=time.perf_counter() - started,
            durability_seconds=self.durability_seconds,
            checkpoint_blocked_seconds=self.writer.blocked_seconds,
        )
