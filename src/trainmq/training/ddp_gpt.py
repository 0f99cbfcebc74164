"""The built-in model trained by a ``torchrun`` job of N processes: what ``trainmq demo
--ddp`` launches, and an entrypoint any worker can allow::

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m trainmq.training.ddp_gpt

Everything comes from the launcher's request (``Run.launched()``): the model
(``request.model``), the pinned dataset, steps, seed, learning rate, batch size and
checkpoint interval.  It trains as the built-in trainer does (its AdamW parameter
groups, learning-rate schedule and clipping) with ``trainmq.training.ddp``'s rules:

* ``optimizer.batch_size`` is the *global* batch: rank r of N takes the r-th block of
  ``batch_size / N`` windows of the step's draw (``TokenSampler``), so the global batch of
  a step is the single-process trainer's, whatever N, and a run may resume on another N;
* rank 0 validates at every checkpoint (the trainer's validation batches), reports, and
  writes checkpoints holding the model configuration, so the evaluate stage can load them;
* the last step is checkpointed too; the completion records the world size; with
  ``$TRAINMQ_EVALUATE_QUEUE`` set, the evaluation of the final checkpoint is requested,
  as the built-in trainer's handler does.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..errors import PermanentFailure
from . import ddp
from .handlers import _queues
from .locations import key_of, uri_of
from .messages import EvaluateRequest, TrainRequest
from .model import GPT, weights_sha256
from .run_api import Run
from .sampler import SAMPLER, TokenSampler, window_rows
from .trainer import EVAL_BATCHES, build_optimizer, learning_rate

__all__ = ["main"]


def _sampler(run: Run, group: ddp.Group) -> TokenSampler:
    request = run.request
    per_rank, left = divmod(request.optimizer.batch_size, group.world_size)
    if left or not per_rank:
        raise PermanentFailure(
            f"the batch size {request.optimizer.batch_size} does not split over "
            f"{group.world_size} ranks"
        )
    return TokenSampler.open(
        run.store,
        request.dataset,
        context=request.model.context,
        batch_size=per_rank,
        seed=request.optimizer.seed,
        rank=group.rank,
        world_size=group.world_size,
    )


@torch.no_grad()
def _validation_loss(model: GPT, val: TokenSampler, request: TrainRequest) -> float:
    """The trainer's estimate: the mean loss of its few fixed validation batches."""
    model.eval()
    seed, context = request.optimizer.seed, request.model.context
    losses = []
    for i in range(EVAL_BATCHES):
        rows = window_rows(val.tokens, [seed, 1 << 40, i], context, request.optimizer.batch_size)
        batch = torch.from_numpy(rows).to(next(model.parameters()).device)
        losses.append(float(model.loss(batch[:, :-1], batch[:, 1:])))
    model.train()
    return sum(losses) / len(losses)


def _restore(run: Run, group: ddp.Group, parts: dict[str, Any]) -> int:
    state = ddp.restore(run, group, **parts)
    if state is None:
        return 0
    if state.get("data_position", {}).get("sampler") != SAMPLER:
        raise PermanentFailure("the newest checkpoint was written by another sampler")
    return int(state["step"])


class _Job:
    """One rank's part: the model, its data and the loop."""

    def __init__(self, run: Run, group: ddp.Group) -> None:
        request = self.request = run.request
        self.run, self.group = run, group
        self.train = _sampler(run, group)
        self.val = run.sampler(split="val") if group.leader else None
        torch.manual_seed(request.optimizer.seed)  # the same initial weights on every rank
        self.net = GPT(request.model, self.train.vocab_size or 0).to(group.device)
        self.model = DistributedDataParallel(self.net)
        self.optimizer = build_optimizer(self.net, request.optimizer)
        self.parts: dict[str, Any] = {"model": self.net, "optimizer": self.optimizer}
        self.log_every = max(1, min(10, request.checkpoint_every // 5 or 1))
        self.val_loss: float | None = None

    def state(self, step: int) -> dict[str, Any]:
        return self.run.state(
            step,
            **self.parts,
            data_position=self.train.position(step),
            run_id=self.request.run_id,
            model_config=self.request.model.model_dump(),
        )

    def checkpoint(self, step: int, *, wait: bool = False) -> str | None:
        if self.val is not None:
            self.val_loss = _validation_loss(self.net, self.val, self.request)
        state = self.state(step) if self.group.leader else {}
        uri = ddp.checkpoint(self.run, self.group, step, state, wait=wait)
        if self.group.leader and self.val_loss is not None:
            self.run.report(step, val_loss=self.val_loss)
        return uri

    def step(self, step: int) -> float:
        """Optimizer step ``step`` (from 0); this rank's loss."""
        opt = self.request.optimizer
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = learning_rate(step, opt.steps, opt.learning_rate)
        inputs, targets = self.train.batch(step, self.group.device)
        loss = self._loss(inputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return float(loss.item())

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self.model(inputs)  # through DDP: the gradients are all-reduced
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, self.net.vocab_size), targets.reshape(-1)
        )

    def loop(self, step: int) -> tuple[int, float]:
        """Steps until the last (or a stop); the step reached and the last mean loss."""
        run, group, total = self.run, self.group, self.request.optimizer.steps
        seconds = self.request.checkpoint_seconds
        since, window, mean = time.monotonic(), [], float("nan")
        while step < total:
            loss = self.step(step)
            step += 1
            late = seconds is not None and time.monotonic() - since >= seconds
            loss, (stop, late) = ddp.agree(group, loss, run.should_stop, late)
            window.append(loss)
            if group.leader and (step % self.log_every == 0 or step == total):
                mean = sum(window) / len(window)
                window.clear()
                tokens = step * self.request.optimizer.batch_size * self.request.model.context
                run.report(step, loss=mean, tokens=tokens)
            if step < total and stop:
                ddp.stop(run, group, step, self.state(step) if group.leader else {})
            if step < total and (step % self.request.checkpoint_every == 0 or late):
                self.checkpoint(step)
                since = time.monotonic()
        return step, mean

    def finish(self, step: int, train_loss: float, resumed_from: int) -> None:
        """The last step's checkpoint, the output, the completion and the evaluation."""
        uri = self.checkpoint(step, wait=True)
        if not self.group.leader or uri is None:
            return
        run, request = self.run, self.request
        output = key_of(run.store, request.output_uri, "output").rstrip("/")
        buffer = io.BytesIO()
        torch.save({k: v.cpu() for k, v in self.net.state_dict().items()}, buffer)
        run.store.put(f"{output}/model.pt", buffer.getvalue())
        run.complete(
            steps=step,
            train_loss=train_loss,
            val_loss_estimate=self.val_loss,
            weights_sha256=weights_sha256(self.net),
            tokens=step * request.optimizer.batch_size * request.model.context,
            world_size=self.group.world_size,
            backend=self.group.backend,
            checkpoint_blocked_seconds=self.group.blocked_seconds,
            resumed_from=resumed_from or None,
            checkpoint_uri=uri,
            output_uri=uri_of(run.store, output),
        )
        _queues.send(
            os.environ.get("TRAINMQ_EVALUATE_QUEUE"),
            EvaluateRequest(
                run_id=request.run_id,
                idempotency_key=f"{request.idempotency_key}/evaluate",
                dataset=request.dataset,
                checkpoint_uri=uri,
                report_uri=f"{uri_of(run.store, output)}/evaluation.json",
                trace_id=request.trace_id,
            ).to_json(),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train the request's built-in model as one rank of a torchrun job "
        "(the launcher gives the request in $TRAINMQ_REQUEST)."
    )
    parser.parse_args(argv)
    with Run.launched() as run:
        group = ddp.start(run.request.resources.device)
        threads = run.request.resources.threads
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // group.world_size))
        job = _Job(run, group)
        first = _restore(run, group, job.parts)
        step, train_loss = job.loop(first)
        job.finish(step, train_loss, first)
    ddp.finish()


if __name__ == "__main__":
    main()
