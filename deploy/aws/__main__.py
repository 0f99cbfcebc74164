"""The Pulumi program: ``pulumi up`` here deploys trainmq's training pipeline to AWS.

Settings come from the stack's config (``pulumi config set <key> <value>``; the
keys and defaults are in README.md); a refused setting stops the program with
the setting's name before any resource is created.
"""

from __future__ import annotations

import re
from pathlib import Path

import pulumi
from trainmq_stack import PipelineSettings, SettingsError, TrainingPipeline, lambda_archive

#: Where ``trainmq package lambda`` writes the zip (run in the repository root), from here.
DEFAULT_ZIP = Path("../../dist/trainmq-lambda.zip")


def main() -> None:
    config = pulumi.Config("trainmq")
    stack = re.sub(r"[^A-Za-z0-9-]+", "-", pulumi.get_stack()).strip("-")[:32] or "stack"
    try:
        settings = PipelineSettings.from_config(config, name=f"trainmq-{stack}")
        code = lambda_archive(Path(config.get("lambdaZip") or DEFAULT_ZIP), settings)
    except SettingsError as exc:
        raise pulumi.RunError(f"refusing to deploy:\n{exc}") from None
    pipeline = TrainingPipeline("trainmq", settings, code)
    for key, value in pipeline.outputs().items():
        pulumi.export(key, value)


main()
