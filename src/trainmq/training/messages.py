"""Message schemas of the training pipeline: JSON bodies, validated with pydantic.

Every message carries ``kind`` and ``schema_version`` so that a consumer can tell
what it holds and refuse what it does not understand.  Datasets are referenced
by content (the manifest's URI *and* its sha256), never by a mutable path; runs
by an ``idempotency_key`` that makes a duplicated request attach to the run it
duplicates.  A body that does not validate is a ``PermanentFailure`` (it can
never succeed, so it goes to the dead-letter queue at once, with the reason).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import PermanentFailure

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

SCHEMA_VERSION: Literal[1] = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")

Sha256 = Annotated[str, Field(pattern=_SHA256.pattern, description="hex sha256 of the content")]
Identifier = Annotated[str, Field(pattern=_KEY.pattern, description="an id or key")]
Uri = Annotated[str, Field(pattern=r"^(file|s3)://.+", description="file:// or s3:// URI")]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    trace_id: Identifier | None = None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class DatasetRef(BaseModel):
    """A dataset version: its manifest, pinned by content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest_uri: Uri
    manifest_sha256: Sha256


class ModelConfig(BaseModel):
    """A decoder-only transformer's shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: int = Field(4, ge=1, le=96)
    width: int = Field(128, ge=8, le=16384)
    heads: int = Field(4, ge=1, le=256)
    context: int = Field(128, ge=8, le=32768)

    @field_validator("heads")
    @classmethod
    def _heads_divide_width(cls, heads: int, info: Any) -> int:
        width = info.data.get("width")
        if width is not None and width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        return heads


class OptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0, le=1)
    batch_size: int = Field(16, ge=1, le=65536)
    steps: int = Field(600, ge=1, le=10_000_000)
    seed: int = Field(0, ge=0)


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, le=1024)


class PrepareRequest(_Message):
    """Tokenize one input document set into token shards (fan-out: one per input file)."""

    kind: Literal["prepare"] = "prepare"
    dataset_id: Identifier
    source_uri: Uri = Field(description="the dataset's source: its input files by sha256")
    source_sha256: Sha256
    input_uri: Uri = Field(description="the input file this message tokenizes")
    input_sha256: Sha256 | None = None
    output_prefix: Uri
    vocab_size: int = Field(1024, ge=256, le=1 << 20)
    shard_tokens: int = Field(65536, ge=1024)
    val_fraction: float = Field(0.05, ge=0, lt=1)
    idempotency_key: Identifier
    tokenizer_uri: Uri | None = Field(
        None,
        description="an existing tokenizer.json in the store to use instead of training one "
        "(vocab_size is then the tokenizer's); needs tokenizer_sha256",
    )
    tokenizer_sha256: Sha256 | None = Field(None, description="the sha256 that pins it")

    @model_validator(mode="after")
    def _tokenizer_pinned(self) -> PrepareRequest:
        if (self.tokenizer_uri is None) != (self.tokenizer_sha256 is None):
            raise ValueError("tokenizer_uri and tokenizer_sha256 go together (pin by sha256)")
        return self


class TrainRequest(_Message):
    """Train (or resume) one run on a pinned dataset version."""

    kind: Literal["train"] = "train"
    run_id: Identifier
    idempotency_key: Identifier
    dataset: DatasetRef
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    resources: Resources = Resources()
    priority: int = Field(
        0,
        ge=0,
        le=9,
        description="a routing hint: always in the body, so workers can be dedicated to "
        "urgent runs with FilterCriteria, e.g. --filter "
        "'{\"body\": {\"priority\": [{\"numeric\": [\">=\", 5]}]}}'",
    )
    checkpoint_uri: Uri
    output_uri: Uri
    checkpoint_every: int = Field(50, ge=1)
    checkpoint_seconds: float | None = Field(
        None, gt=0, description="also checkpoint when this much time passed since the last"
    )
    keep_last: int | None = Field(
        None, ge=1, description="keep only the newest N checkpoints (default: all)"
    )
    keep_every: int | None = Field(
        None, ge=1, description="with keep_last: also keep the checkpoints of every K-th step"
    )
    entrypoint: Identifier | None = Field(
        None,
        description="train with this launch command of the worker's entrypoints file "
        "(training.entrypoints) instead of the built-in model",
    )
    params: dict[str, StrictBool | StrictInt | StrictFloat | StrictStr] | None = Field(
        None, description="the entrypoint's parameters (checked against its bounds)"
    )


class EvaluateRequest(_Message):
    """Held-out loss and perplexity of one checkpoint."""

    kind: Literal["evaluate"] = "evaluate"
    run_id: Identifier
    idempotency_key: Identifier
    dataset: DatasetRef
    checkpoint_uri: Uri
    report_uri: Uri


class TrainingEvent(_Message):
    """Progress and completion of a run, published by the trainer."""

    kind: Literal["event"] = "event"
    run_id: Identifier
    event: Literal[
        "started", "resumed", "attached", "progress", "checkpoint", "completed", "evaluated",
        "failed", "superseded", "released",
    ]
    attempt: int = Field(1, ge=1)
    at: float | None = Field(None, description="Unix time the event happened")
    step: int = Field(0, ge=0)
    total_steps: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0, description="tokens trained on so far")
    train_loss: float | None = None
    val_loss: float | None = Field(
        None,
        description="trainer events: an estimate from a few random validation batches; "
        "'evaluated': the evaluate stage's loss over the whole validation split",
    )
    checkpoint_uri: Uri | None = None
    message: str | None = Field(None, max_length=4096)


_KINDS: dict[str, type[_Message]] = {
    "prepare": PrepareRequest,
    "train": TrainRequest,
    "evaluate": EvaluateRequest,
    "event": TrainingEvent,
}


def parse_message(body: str | bytes, expect: type[_Message] | None = None) -> _Message:
    """Parse a message body; any problem is a ``PermanentFailure`` naming it."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentFailure(f"message body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PermanentFailure("message body is not a JSON object")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise PermanentFailure(
            f"schema_version {version!r} is not supported (this trainmq reads {SCHEMA_VERSION})"
        )
    model = expect or _KINDS.get(str(data.get("kind")))
    if model is None:
        raise PermanentFailure(f"unknown message kind {data.get('kind')!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise PermanentFailure(
            f"invalid {model.__name__}: {where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from None
