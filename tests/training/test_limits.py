"""Worker-side bounds on model size and batch: a request beyond them fails permanently, at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainmq.errors import ConfigurationError, PermanentFailure
from trainmq.store import LocalStore
from trainmq.training import ModelConfig, TrainRequest, handlers
from trainmq.training.limits import TrainingLimits, parameter_count

SHA = "9f3c" + "0" * 60


def request(model: dict[str, int], batch_size: int = 8) -> TrainRequest:
    return TrainRequest.model_validate(
        {
            "run_id": "r-huge",
            "idempotency_key": "r-huge",
            "dataset": {"manifest_uri": "file:///store/datasets/m.json", "manifest_sha256": SHA},
            "model": model,
            "optimizer": {"steps": 10, "batch_size": batch_size},
            "checkpoint_uri": "file:///store/runs/r-huge/checkpoints",
            "output_uri": "file:///store/runs/r-huge",
        }
    )


HUGE = {"layers": 96, "width": 16384, "heads": 128, "context": 2048}
SMALL = {"layers": 2, "width": 64, "heads": 4, "context": 64}


def test_parameter_count_matches_the_model_torch_builds() -> None:
    torch = pytest.importorskip("torch")
    from trainmq.training.model import GPT

    config = ModelConfig(layers=3, width=32, heads=4, context=16)
    model = GPT(config, vocab_size=300)
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    embedding = model.tokens.weight.numel()
    assert isinstance(total, int) and torch is not None
    assert parameter_count(config) == total - embedding


def test_the_schemas_largest_model_is_refused_with_its_size() -> None:
    with pytest.raises(PermanentFailure) as refused:
        TrainingLimits().check(request(HUGE))
    # 96 layers x (12 w^2 + 13 w) + the position embedding + the final norm: about 3.1e11
    assert "309,291,679,744 parameters" in refused.value.reason
    assert "TRAINMQ_MAX_PARAMETERS" in refused.value.reason


def test_batches_are_bounded_in_sequences_and_tokens() -> None:
    limits = TrainingLimits(max_batch_size=64, max_batch_tokens=4096)
    limits.check(request(SMALL, batch_size=64))  # 64 x 64 tokens: at the bound
    with pytest.raises(PermanentFailure, match="TRAINMQ_MAX_BATCH_SIZE"):
        limits.check(request(SMALL, batch_size=65))
    wide = {**SMALL, "context": 128}
    with pytest.raises(PermanentFailure, match="TRAINMQ_MAX_BATCH_TOKENS"):
        limits.check(request(wide, batch_size=64))


def test_limits_come_from_the_environment_and_typos_are_refused() -> None:
    limits = TrainingLimits.from_env(
        {"TRAINMQ_MAX_PARAMETERS": "1_000", "TRAINMQ_MAX_BATCH_SIZE": "4"}
    )
    assert limits == TrainingLimits(max_parameters=1000, max_batch_size=4)
    with pytest.raises(PermanentFailure):
        limits.check(request(SMALL))
    for bad in ("", "1e9", "-5", "²", "ten"):
        with pytest.raises(ConfigurationError):
            TrainingLimits.from_env({"TRAINMQ_MAX_BATCH_TOKENS": bad})


def test_the_train_handler_dead_letters_a_huge_request_before_touching_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    monkeypatch.setenv("TRAINMQ_STORE", str(store_dir))
    huge = request(HUGE).model_copy(
        update={
            "checkpoint_uri": f"{store_dir.as_uri()}/runs/r-huge/checkpoints",
            "output_uri": f"{store_dir.as_uri()}/runs/r-huge",
        }
    )
    event = {"Records": [{"messageId": "m-1", "body": huge.to_json()}]}
    result = handlers.train(event, None)
    assert result["batchItemFailures"] == []
    [failure] = result["permanentFailures"]
    assert failure["itemIdentifier"] == "m-1" and "parameters" in failure["reason"]
    assert list(LocalStore(store_dir).list_keys()) == []  # no run registered, nothing written
    assert json.loads(huge.to_json())["model"]["width"] == 16384
