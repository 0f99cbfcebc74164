"""The LLM training domain: message schemas (the pipeline stages build on them), and
``Run``: the durable-run API for training loops users write themselves."""

from typing import TYPE_CHECKING, Any

from .messages import (
    SCHEMA_VERSION,
    DatasetRef,
    EvaluateRequest,
    ModelConfig,
    OptimizerConfig,
    PrepareRequest,
    Resources,
    TrainingEvent,
    TrainRequest,
    parse_message,
)

__all__ = [
    "SCHEMA_VERSION",
    "DatasetRef",
    "EvaluateRequest",
    "ModelConfig",
    "OptimizerConfig",
    "PrepareRequest",
    "Resources",
    "Run",
    "TrainRequest",
    "TrainingEvent",
    "parse_message",
]

if TYPE_CHECKING:
    from .run_api import Run


def __getattr__(name: str) -> Any:
    """``Run`` needs torch: imported on first use, so the queue-only install stays light."""
    if name == "Run":
        from .run_api import Run

        return Run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
