"""The stack's settings, read from Pulumi config and refused before anything deploys.

Every rule here is one AWS enforces at deploy time, or one whose breach
deploys fine and then loses or duplicates work.  A refused setting is named by
its config key (``trainmq:batchSize``), so the message says what to change.

No Pulumi import here: the rules are plain data, tested without an engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Protocol

__all__ = [
    "LOG_RETENTION_DAYS",
    "MIN_PYTHON",
    "ConfigSource",
    "PipelineSettings",
    "SettingsError",
]

#: The oldest Lambda Python runtime the stack accepts (3.11 and older reach end of support).
MIN_PYTHON = (3, 12)
#: The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
_DAY = 86_400
_MAX_RETENTION = 14 * _DAY  # SQS's limit
_MAX_VISIBILITY = 12 * 3600  # SQS's limit
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
_RUNTIME = re.compile(r"^python(\d+)\.(\d+)$")
_KMS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_SNS_TOPIC = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PREFIX = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*/)*$")


class SettingsError(ValueError):
    """One or more settings are refused; each line of the message names one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ConfigSource(Protocol):
    """What :meth:`PipelineSettings.from_config` reads (``pulumi.Config`` is one)."""

    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class PipelineSettings:
    """Everything configurable, with the defaults a first deployment wants.

    Field ``function_timeout`` is config key ``trainmq:functionTimeout`` (the
    camel-case of the field name), and so on for every field.
    """

    name: str = "trainmq"
    runtime: str = "python3.12"
    architecture: str = "x86_64"
    function_timeout: int = 60
    memory_size: int = 512
    batch_size: int = 10
    batching_window: int = 0
    maximum_concurrency: int = 10
    #: The intake queue's visibility timeout; default: the least the rule allows.
    intake_visibility_timeout: int | None = None
    #: The worker stages' visibility timeout (``trainmq worker`` heartbeats extend it).
    worker_visibility_timeout: int = 900
    message_retention: int = 4 * _DAY
    dlq_retention: int = 14 * _DAY
    max_receive_count: int = 5
    log_retention_days: int = 30
    oldest_message_alarm: int = 3600
    alarm_topic_arn: str | None = None
    alarm_email: str | None = None
    kms_key_arn: str | None = None
    bucket_name: str | None = None
    store_prefix: str = ""
    abort_multipart_days: int = 7
    noncurrent_version_days: int = 30
    claim_check_days: int = 15

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SettingsError(problems)

    @property
    def visibility_timeout(self) -> int:
        """The intake queue's visibility timeout, explicit or derived."""
        if self.intake_visibility_timeout is not None:
            return self.intake_visibility_timeout
        return self.minimum_visibility_timeout

    @property
    def minimum_visibility_timeout(self) -> int:
        """AWS's advice, enforced: six function timeouts plus the batching window."""
        return 6 * self.function_timeout + self.batching_window

    @property
    def python(self) -> tuple[int, int]:
        match = _RUNTIME.match(self.runtime)
        return (int(match.group(1)), int(match.group(2))) if match else (0, 0)

    @classmethod
    def from_config(cls, config: ConfigSource, **defaults: Any) -> PipelineSettings:
        """The settings a stack's config holds (``trainmq:<camelCaseName>``) over ``defaults``."""
        values: dict[str, Any] = dict(defaults)
        problems = []
        for item in fields(cls):
            text = config.get(config_key(item.name))
            if text is None:
                continue
            if item.type in ("int", "int | None"):
                try:
                    values[item.name] = int(text)
                except ValueError:
                    problems.append(f"{_key(item.name)} must be a whole number, got {text!r}")
            else:
                values[item.name] = text
        if problems:
            raise SettingsError(problems)
        return cls(**values)


def config_key(field_name: str) -> str:
    """``function_timeout`` -> ``functionTimeout``."""
    head, *rest = field_name.split("_")
    return head + "".join(part.title() for part in rest)


def _key(field_name: str) -> str:
    return f"trainmq:{config_key(field_name)}"


def _range(s: PipelineSettings, name: str, low: int, high: int, unit: str = "") -> list[str]:
    value = getattr(s, name)
    if value is None or low <= value <= high:
        return []
    return [f"{_key(name)} is {value}: it must be between {low} and {high}{unit}"]


def _problems(s: PipelineSettings) -> list[str]:
    problems: list[str] = []
    problems += _function_problems(s)
    problems += _queue_problems(s)
    problems += _bucket_problems(s)
    problems += _alarm_problems(s)
    return problems


def _function_problems(s: PipelineSettings) -> list[str]:
    problems = []
    if not _NAME.match(s.name):
        problems.append(
            f"{_key('name')} is {s.name!r}: use 1-40 letters, digits and hyphens, starting "
            "with a letter or digit (queue, function and alarm names are built from it)"
        )
    if not _RUNTIME.match(s.runtime) or s.python < MIN_PYTHON:
        problems.append(
            f"{_key('runtime')} is {s.runtime!r}: an unsupported runtime; use python3.12 or "
            "newer (python3.8-3.11 are past or near Lambda's end of support)"
        )
    if s.architecture not in ("x86_64", "arm64"):
        problems.append(f"{_key('architecture')} is {s.architecture!r}: use x86_64 or arm64")
    problems += _range(s, "function_timeout", 1, 900, " seconds (Lambda's limit)")
    problems += _range(s, "memory_size", 128, 10240, " MB")
    problems += _range(s, "maximum_concurrency", 2, 1000, " (the event-source mapping's limit)")
    problems += _range(s, "batching_window", 0, 300, " seconds")
    problems += _range(s, "batch_size", 1, 10000)
    if s.batch_size > 10 and s.batching_window < 1:
        problems.append(
            f"{_key('batch_size')} is {s.batch_size}: a batch size above 10 needs "
            f"{_key('batching_window')} of at least 1 second (AWS refuses it otherwise)"
        )
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            f"{_key('log_retention_days')} is {s.log_retention_days}: CloudWatch Logs accepts "
            f"only {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    return problems


def _queue_problems(s: PipelineSettings) -> list[str]:
    problems = []
    explicit = s.intake_visibility_timeout
    if explicit is not None and explicit < s.minimum_visibility_timeout:
        problems.append(
            f"{_key('intake_visibility_timeout')} is {explicit} s: it "
            f"must be at least 6 x {_key('function_timeout')} ({s.function_timeout} s) + "
            f"{_key('batching_window')} ({s.batching_window} s) = "
            f"{s.minimum_visibility_timeout} s, or messages are redelivered while a "
            "function still works on them"
        )
    problems += _range(s, "intake_visibility_timeout", 0, _MAX_VISIBILITY, " seconds (SQS's limit)")
    problems += _range(s, "worker_visibility_timeout", 0, _MAX_VISIBILITY, " seconds")
    problems += _range(s, "message_retention", 60, _MAX_RETENTION, " seconds (SQS's limits)")
    problems += _range(s, "dlq_retention", 60, _MAX_RETENTION, " seconds (SQS's limits)")
    if s.dlq_retention <= s.message_retention:
        problems.append(
            f"{_key('dlq_retention')} is {s.dlq_retention} s: it must be longer than "
            f"{_key('message_retention')} ({s.message_retention} s), because a dead-lettered "
            "message keeps its original enqueue time and would expire on arrival"
        )
    problems += _range(s, "max_receive_count", 1, 1000)
    if s.kms_key_arn is not None and not _KMS_KEY.match(s.kms_key_arn):
        problems.append(
            f"{_key('kms_key_arn')} is {s.kms_key_arn!r}: give a key ARN "
            "(arn:aws:kms:REGION:ACCOUNT:key/ID); leave it unset for SQS- and S3-managed keys"
        )
    return problems


def _bucket_problems(s: PipelineSettings) -> list[str]:
    problems = []
    if s.store_prefix and not _PREFIX.match(s.store_prefix):
        problems.append(
            f"{_key('store_prefix')} is {s.store_prefix!r}: use folder names ending in '/', "
            "such as 'pipeline/', or leave it empty"
        )
    problems += _range(s, "abort_multipart_days", 1, 365, " days")
    problems += _range(s, "noncurrent_version_days", 1, 3650, " days")
    problems += _range(s, "claim_check_days", 1, 3650, " days")
    if s.claim_check_days * _DAY <= s.dlq_retention:
        problems.append(
            f"{_key('claim_check_days')} is {s.claim_check_days}: claim-check payloads must "
            f"outlive the messages pointing at them, so it must exceed {_key('dlq_retention')} "
            f"({s.dlq_retention / _DAY:g} days)"
        )
    return problems


def _alarm_problems(s: PipelineSettings) -> list[str]:
    problems = _range(s, "oldest_message_alarm", 60, _MAX_RETENTION, " seconds")
    if s.alarm_topic_arn is not None and s.alarm_email is not None:
        problems.append(
            f"{_key('alarm_topic_arn')} and {_key('alarm_email')} are both set: give the topic "
            "alarms go to, or an email for a topic this stack creates, not both"
        )
    if s.alarm_topic_arn is not None and not _SNS_TOPIC.match(s.alarm_topic_arn):
        problems.append(f"{_key('alarm_topic_arn')} is {s.alarm_topic_arn!r}: not an SNS topic ARN")
    if s.alarm_email is not None and not _EMAIL.match(s.alarm_email):
        problems.append(f"{_key('alarm_email')} is {s.alarm_email!r}: not an email address")
    return problems
