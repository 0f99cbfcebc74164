"""The public API is what ``__all__`` says, and everything in it exists."""

from __future__ import annotations

import importlib

import pytest

import trainmq

PUBLIC = {
    "trainmq": [
        "Clock", "FakeClock", "LocalClient", "PermanentFailure", "QueueBackend", "SQSError",
        "SQSService", "SystemClock", "TrainmqError", "__version__", "client",
    ],
    "trainmq.queue": ["ACTIONS", "LocalClient", "QueueBackend", "SQSService", "open_service"],
    "trainmq.queue.sqlite": ["SqliteBackend"],
    "trainmq.console": ["Console", "mount_console"],
    "trainmq.server": ["Credentials", "SQSApp", "ServerConfig", "load_credentials", "serve"],
    "trainmq.training": [
        "SCHEMA_VERSION", "DatasetRef", "EvaluateRequest", "ModelConfig", "OptimizerConfig",
        "PrepareRequest", "Resources", "Run", "TrainRequest", "TrainingEvent", "parse_message",
    ],
    "trainmq.store": [
        "BlobExists", "BlobInfo", "BlobNotFound", "BlobStore", "BlobStream", "InvalidKey",
        "InvalidPointer", "KeyConflict", "LocalStore", "S3Store", "StoreError",
        "StoreUnavailable", "open_store", "validate_key",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_members(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is exported but missing"


def test_all_23_sqs_actions() -> None:
    from trainmq.queue import ACTIONS

    assert len(ACTIONS) == len(set(ACTIONS)) == 23


def test_core_does_not_import_heavy_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, trainmq, trainmq.queue.sqlite, trainmq.cli.main;"
        "heavy = {'torch', 'transformers', 'accelerate', 'pulumi', 'pulumi_aws', 'boto3',"
        " 'uvicorn', 'starlette'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert trainmq.__version__
