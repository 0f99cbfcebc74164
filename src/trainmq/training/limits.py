"""Worker-side bounds on what a ``TrainRequest`` may ask of the machine that trains it.

A message's schema allows shapes up to width 16,384 x 96 layers (about 3e11
parameters) and batches of 65,536 sequences: whoever can send to the train queue
could make every worker allocate until it is killed, redelivery after redelivery.
The worker's operator sets what its machine can hold; a request beyond it is a
``PermanentFailure`` (it goes to the dead-letter queue at once, with the reason)
before any store read or allocation.

Configured by the environment of the worker's handler processes:

``TRAINMQ_MAX_PARAMETERS``
    parameters of the model without its token embedding (default 1,000,000,000);
``TRAINMQ_MAX_BATCH_SIZE``
    sequences per step (default 4,096);
``TRAINMQ_MAX_BATCH_TOKENS``
    ``batch_size x context`` tokens per step (default 4,194,304).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError, PermanentFailure
from .messages import ModelConfig, TrainRequest

__all__ = ["TrainingLimits", "parameter_count"]


def parameter_count(model: ModelConfig) -> int:
    """Parameters of ``model`` without its token embedding (which depends on the dataset's
    vocabulary): per block 12·w² + 13·w (attention, MLP, two layer norms), the position
    embedding and the final layer norm."""
    width = model.width
    return model.layers * (12 * width * width + 13 * width) + model.context * width + 2 * width


@dataclass(frozen=True)
class TrainingLimits:
    max_parameters: int = 1_000_000_000
    max_batch_size: int = 4096
    max_batch_tokens: int = 4 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainingLimits:
        """The limits named by ``TRAINMQ_MAX_*``; a value that is not a positive integer is
        a ConfigurationError (a typo must not silently lift a limit)."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field, variable in (
            ("max_parameters", "TRAINMQ_MAX_PARAMETERS"),
            ("max_batch_size", "TRAINMQ_MAX_BATCH_SIZE"),
            ("max_batch_tokens", "TRAINMQ_MAX_BATCH_TOKENS"),
        ):
            text = env.get(variable)
            if text is None:
                continue
            cleaned = text.strip().replace("_", "")
            if not (cleaned.isascii() and cleaned.isdigit() and 0 < len(cleaned) < 19):
                raise ConfigurationError(f"{variable}={text!r} is not a positive integer")
            values[field] = int(cleaned)
        return cls(**values)

    def check(self, request: TrainRequest) -> None:
        """Raise ``PermanentFailure`` naming the first bound ``request`` exceeds."""
        model, batch = request.model, request.optimizer.batch_size
        parameters = parameter_count(model)
        if parameters > self.max_parameters:
            raise PermanentFailure(
                f"the model ({model.layers} layers x width {model.width}, context "
                f"{model.context}) has {parameters:,} parameters besides its embedding; this "
                f"worker trains at most {self.max_parameters:,} (TRAINMQ_MAX_PARAMETERS)"
            )
        if batch > self.max_batch_size:
            raise PermanentFailure(
                f"batch_size {batch:,} exceeds this worker's {self.max_batch_size:,} "
                "(TRAINMQ_MAX_BATCH_SIZE)"
            )
        tokens = batch * model.context
        if tokens > self.max_batch_tokens:
            raise PermanentFailure(
                f"a batch of {batch:,} x context {model.context:,} = {tokens:,} tokens exceeds "
                f"this worker's {self.max_batch_tokens:,} (TRAINMQ_MAX_BATCH_TOKENS)"
            )
