"""Settings the stack refuses before anything deploys, each named by its config key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trainmq_stack import PipelineSettings, SettingsError, config_key, lambda_archive


def refused(**settings: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        PipelineSettings(**settings)
    return str(caught.value)


def test_defaults_deploy_and_derive_the_least_visibility_timeout() -> None:
    settings = PipelineSettings()
    assert settings.visibility_timeout == 6 * 60 + 0
    assert PipelineSettings(function_timeout=100, batching_window=30,
                            batch_size=20).visibility_timeout == 630  # fmt: skip


@pytest.mark.parametrize(
    ("timeout", "window", "visibility"),
    [(300, 0, 60), (300, 0, 1799), (60, 10, 369)],
)
def test_visibility_below_six_timeouts_plus_window_is_refused(
    timeout: int, window: int, visibility: int
) -> None:
    message = refused(
        function_timeout=timeout, batching_window=window, intake_visibility_timeout=visibility
    )
    assert f"trainmq:intakeVisibilityTimeout is {visibility} s" in message
    assert f"= {6 * timeout + window} s" in message
    assert "trainmq:functionTimeout" in message and "trainmq:batchingWindow" in message


def test_visibility_exactly_at_the_rule_is_accepted() -> None:
    assert PipelineSettings(function_timeout=300, intake_visibility_timeout=1800)


def test_visibility_above_sqs_limit_is_refused() -> None:
    message = refused(intake_visibility_timeout=43201)
    assert "trainmq:intakeVisibilityTimeout is 43201: it must be between 0 and 43200" in message


@pytest.mark.parametrize(("source", "dlq"), [(1209600, 1209600), (345600, 86400), (600, 600)])
def test_dlq_retention_not_longer_than_the_source_is_refused(source: int, dlq: int) -> None:
    message = refused(message_retention=source, dlq_retention=dlq)
    assert f"trainmq:dlqRetention is {dlq} s: it must be longer than" in message
    assert f"trainmq:messageRetention ({source} s)" in message


def test_the_reference_designs_fourteen_day_retention_leaves_no_room_for_a_dlq() -> None:
    message = refused(message_retention=14 * 86400)
    assert "trainmq:dlqRetention" in message


@pytest.mark.parametrize("batch_size", [11, 100, 10000])
def test_batch_above_ten_without_a_window_is_refused(batch_size: int) -> None:
    message = refused(batch_size=batch_size, batching_window=0)
    assert f"trainmq:batchSize is {batch_size}: a batch size above 10 needs" in message
    assert "trainmq:batchingWindow of at least 1 second" in message
    assert PipelineSettings(batch_size=batch_size, batching_window=1)


@pytest.mark.parametrize(
    "runtime", ["python3.8", "python3.11", "python2.7", "nodejs20.x", "py3.12"]
)
def test_unsupported_runtime_is_refused(runtime: str) -> None:
    message = refused(runtime=runtime)
    assert f"trainmq:runtime is {runtime!r}: an unsupported runtime" in message


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13", "python3.14"])
def test_supported_runtimes_are_accepted(runtime: str) -> None:
    assert PipelineSettings(runtime=runtime).python >= (3, 12)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"function_timeout": 901}, "trainmq:functionTimeout"),
        ({"function_timeout": 0}, "trainmq:functionTimeout"),
        ({"memory_size": 64}, "trainmq:memorySize"),
        ({"maximum_concurrency": 1}, "trainmq:maximumConcurrency"),
        ({"batching_window": 301}, "trainmq:batchingWindow"),
        ({"batch_size": 0}, "trainmq:batchSize"),
        ({"max_receive_count": 0}, "trainmq:maxReceiveCount"),
        ({"message_retention": 30}, "trainmq:messageRetention"),
        ({"worker_visibility_timeout": 50000}, "trainmq:workerVisibilityTimeout"),
        ({"log_retention_days": 2}, "trainmq:logRetentionDays"),
        ({"architecture": "sparc"}, "trainmq:architecture"),
        ({"name": "has space"}, "trainmq:name"),
        ({"name": "x" * 41}, "trainmq:name"),
        ({"kms_key_arn": "alias/aws/sqs"}, "trainmq:kmsKeyArn"),
        ({"store_prefix": "no-trailing-slash"}, "trainmq:storePrefix"),
        ({"claim_check_days": 14}, "trainmq:claimCheckDays"),
        ({"alarm_email": "not-an-address"}, "trainmq:alarmEmail"),
        ({"alarm_topic_arn": "ops"}, "trainmq:alarmTopicArn"),
        (
            {"alarm_topic_arn": "arn:aws:sns:eu-west-1:123456789012:ops", "alarm_email": "a@b.io"},
            "trainmq:alarmTopicArn and trainmq:alarmEmail are both set",
        ),
    ],
)
def test_each_out_of_range_setting_is_named(settings: dict[str, Any], key: str) -> None:
    assert key in refused(**settings)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        PipelineSettings(runtime="python3.8", batch_size=50, message_retention=14 * 86400)
    assert len(caught.value.problems) == 3


class Config:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def test_config_keys_are_the_camel_case_field_names() -> None:
    settings = PipelineSettings.from_config(
        Config({"functionTimeout": "30", "batchSize": "5", "alarmEmail": "ops@example.com"}),
        name="trainmq-dev",
    )
    assert (settings.function_timeout, settings.batch_size) == (30, 5)
    assert settings.alarm_email == "ops@example.com" and settings.name == "trainmq-dev"
    assert config_key("intake_visibility_timeout") == "intakeVisibilityTimeout"


def test_a_non_number_in_config_is_named() -> None:
    with pytest.raises(SettingsError, match=r"trainmq:functionTimeout must be a whole number"):
        PipelineSettings.from_config(Config({"functionTimeout": "5m"}))


# -- the deployment zip ---------------------------------------------------------------------
def _zip(path: Path, *names: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, b"")
    return path


def test_a_missing_zip_is_refused_with_the_command_that_builds_it(tmp_path: Path) -> None:
    with pytest.raises(
        SettingsError,
        match=r"trainmq:lambdaZip: .* does not exist; build it with: "
        r"trainmq package lambda --runtime python3.12 --architecture x86_64",
    ):
        lambda_archive(tmp_path / "missing.zip", PipelineSettings())


def test_a_zip_without_the_handler_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "l.zip", "trainmq/__init__.py")
    with pytest.raises(SettingsError, match=r"has no trainmq/training/intake\.py"):
        lambda_archive(path, PipelineSettings())


@pytest.mark.parametrize(
    ("extension", "runtime", "architecture", "fits"),
    [
        ("cpython-312-x86_64-linux-gnu", "python3.12", "x86_64", True),
        ("cpython-311-x86_64-linux-gnu", "python3.12", "x86_64", False),
        ("cpython-312-x86_64-linux-gnu", "python3.12", "arm64", False),
        ("cpython-313-aarch64-linux-gnu", "python3.13", "arm64", True),
    ],
)
def test_compiled_modules_must_fit_the_runtime(
    tmp_path: Path, extension: str, runtime: str, architecture: str, fits: bool
) -> None:
    path = _zip(
        tmp_path / "l.zip",
        "trainmq/training/intake.py",
        f"pydantic_core/_pydantic_core.{extension}.so",
    )
    settings = PipelineSettings(runtime=runtime, architecture=architecture)
    if fits:
        assert lambda_archive(path, settings).path == str(path)
    else:
        with pytest.raises(SettingsError, match=f"not for trainmq:runtime {runtime}"):
            lambda_archive(path, settings)
