"""trainmq's training pipeline on AWS, as one Pulumi component (see ``deploy/aws/README.md``)."""

from .archive import lambda_archive
from .component import HANDLER, STAGES, WORKER_STAGES, StageQueues, TrainingPipeline
from .settings import PipelineSettings, SettingsError, config_key

__all__ = [
    "HANDLER",
    "STAGES",
    "WORKER_STAGES",
    "PipelineSettings",
    "SettingsError",
    "StageQueues",
    "TrainingPipeline",
    "config_key",
    "lambda_archive",
]
