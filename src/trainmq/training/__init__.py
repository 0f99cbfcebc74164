"""The LLM training domain: message schemas (the pipeline stages build on them)."""

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
    "TrainRequest",
    "TrainingEvent",
    "parse_message",
]
