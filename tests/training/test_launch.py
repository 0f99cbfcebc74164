"""Allow-listed launch commands: checked against the worker's entrypoints file, run as a
supervised process group, stopped at the deadline and resumed to identical weights."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
import torch

from trainmq.errors import ConfigurationError, PermanentFailure
from trainmq.store import BlobStore, open_store
from trainmq.training import DatasetRef, OptimizerConfig, TrainRequest
from trainmq.training.entrypoints import Entrypoints
from trainmq.training.launcher import launch, launch_request
from trainmq.training.locations import uri_of
from trainmq.training.outcomes import RetryLater
from trainmq.training.runs import RunRegistry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "entrypoints.toml"


def _request(store: BlobStore, run: str, entrypoint: str, **params: object) -> TrainRequest:
    return TrainRequest(
        run_id=run,
        idempotency_key=f"launch/{run}",
        dataset=DatasetRef(
            manifest_uri=uri_of(store, "datasets/none/manifest.json"), manifest_sha256="0" * 64
        ),
        optimizer=OptimizerConfig(seed=4),
        checkpoint_uri=uri_of(store, f"launched/{run}/checkpoints"),
        output_uri=uri_of(store, f"launched/{run}/output"),
        entrypoint=entrypoint,
        params=params,  # type: ignore[arg-type]
    )


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "entrypoints.toml"
    path.write_text(body)
    return path


def test_the_example_file_allows_only_its_entrypoints_within_bounds() -> None:
    entry = Entrypoints.load(EXAMPLE).get("tiny-loop")
    argv, values = entry.argv({"steps": 40, "lr": 0.5})
    assert argv == [
        "python",
        "examples/tiny_loop.py",
        "--lr",
        "0.5",
        "--steps",
        "40",
        "--checkpoint-every",
        "10",
    ]
    assert values == {"lr": 0.5, "steps": 40, "checkpoint_every": 10}
    refusals = {
        "above its maximum 1.0": {"steps": 4, "lr": 3.0},
        "below its minimum 1": {"steps": 0},
        "'steps' must be int": {"steps": True},
        "'lr' must be float": {"steps": 4, "lr": "0.1; rm -rf /"},
        "'steps' is required": {},
        "has no parameter 'shell'": {"steps": 4, "shell": "sh"},
    }
    for reason, params in refusals.items():
        with pytest.raises(PermanentFailure, match=reason):
            entry.argv(params)
    with pytest.raises(PermanentFailure, match=r"'nope' is not allowed on this worker"):
        Entrypoints.load(EXAMPLE).get("nope")


def test_a_str_parameter_is_one_of_its_choices_and_one_argument(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[entrypoints.e]\ncommand = ["echo", "--mode={mode}"]\n'
        '[entrypoints.e.params.mode]\ntype = "str"\nchoices = ["fast", "exact"]\n',
    )
    entry = Entrypoints.load(path).get("e")
    assert entry.argv({"mode": "exact"})[0] == ["echo", "--mode=exact"]
    with pytest.raises(PermanentFailure, match="not one of"):
        entry.argv({"mode": "fast && reboot"})
    for bad in ('type = "str"', 'type = "int"\nmin = 1'):
        path.write_text(
            f'[entrypoints.e]\ncommand = ["x", "{{p}}"]\n[entrypoints.e.params.p]\n{bad}\n'
        )
        with pytest.raises(ConfigurationError):
            Entrypoints.load(path)
    path.write_text('[entrypoints.e]\ncommand = ["x", "{undeclared}"]\n')
    with pytest.raises(ConfigurationError, match="undeclared"):
        Entrypoints.load(path)


def test_the_handler_dead_letters_an_unknown_entrypoint_without_starting_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "store")
    monkeypatch.setenv("TRAINMQ_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("TRAINMQ_ENTRYPOINTS", str(EXAMPLE))
    body = _request(store, "u", "rm-everything").to_json()
    answer = launch({"Records": [{"messageId": "m1", "body": body}]}, None)
    [failure] = answer["permanentFailures"]
    assert "'rm-everything' is not allowed on this worker" in failure["reason"]
    assert not RunRegistry(store).exists("launch/u")


def _python(tmp_path: Path, name: str, code: str) -> Path:
    return _toml(
        tmp_path, f'[entrypoints.{name}]\ncommand = ["{sys.executable}", "-c", "{code}"]\n'
    )


def test_exit_codes_map_to_permanent_failure_and_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_BEAT_EVERY", "0.2")
    store = open_store(tmp_path / "store")
    bad = _python(tmp_path, "bad", "import sys; print('the data is unusable'); sys.exit(65)")
    with pytest.raises(PermanentFailure, match="the data is unusable"):
        launch_request(store, _request(store, "p", "bad"), Entrypoints.load(bad))
    flaky = _python(tmp_path, "flaky", "import sys; print('lost the device'); sys.exit(3)")
    with pytest.raises(RetryLater, match="exited with 3: lost the device"):
        launch_request(store, _request(store, "f", "flaky"), Entrypoints.load(flaky))
    registry = RunRegistry(store)
    assert registry.attempts("launch/f")[-1]["released"]  # the retry need not wait it out
    with store.get("launched/f/output/logs/attempt-000001.log") as stream:
        log = stream.read()
    assert log == b"lost the device\n"


def _loop_entry(tmp_path: Path) -> Entrypoints:
    script = ROOT / "examples" / "tiny_loop.py"
    return Entrypoints.load(
        _toml(
            tmp_path,
            f"""
[entrypoints.tiny]
command = ["{sys.executable}", "{script}", "--lr", "0.01", "--steps", "{{steps}}",
           "--checkpoint-every", "5", "--pause", "{{pause}}"]
grace_seconds = 60
[entrypoints.tiny.params.steps]
type = "int"
min = 1
max = 1000
[entrypoints.tiny.params.pause]
type = "float"
min = 0
max = 1
""",
        )
    )


def _weights(store: BlobStore, run: str) -> dict[str, torch.Tensor]:
    with store.get(f"launched/{run}/output/model.pt") as stream:
        data = stream.read()
    weights: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), weights_only=True)
    return weights


def test_a_launched_job_stopped_at_the_deadline_resumes_to_identical_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINMQ_BEAT_EVERY", "0.2")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    entrypoints = _loop_entry(tmp_path)
    store = open_store(tmp_path / "store")
    done = launch_request(store, _request(store, "whole", "tiny", steps=30, pause=0.0), entrypoints)
    assert done["steps"] == 30

    request = _request(store, "cut", "tiny", steps=30, pause=0.05)
    marker = tmp_path / "store" / "launched" / "cut" / "checkpoints" / "step-00000010"

    def remaining() -> float:  # the deadline arrives once the job checkpointed step 10
        return 0.0 if (marker / "COMPLETE.json").exists() else 1000.0

    with pytest.raises(RetryLater, match="stopped to resume"):
        launch_request(store, request, entrypoints, remaining=remaining)
    registry = RunRegistry(store)
    assert registry.attempts("launch/cut")[-1]["released"]
    assert registry.completion("launch/cut") is None
    stopped = [e.step for e in registry.events("launch/cut") if e.event == "checkpoint"]
    assert stopped[-1] > 10  # the job checkpointed where it stopped, then exited 75

    again = launch_request(store, request, entrypoints)
    assert again["steps"] == 30 and again["attempt"] == 2
    resumed = [e.step for e in registry.events("launch/cut") if e.event == "resumed"]
    assert resumed == [stopped[-1]]
    whole, cut = _weights(store, "whole"), _weights(store, "cut")
    assert list(whole) == list(cut)
    assert all(torch.equal(whole[name], cut[name]) for name in whole)
