"""The README's Python examples, run exactly as printed.

Every ```python block of README.md is run here, in a fresh working directory,
in the order the README shows it; blocks of one section share a namespace, as
they do for a reader who runs them one after another.  The only change: the
examples that talk to ``trainmq serve`` at 127.0.0.1:9324 talk to one started
on a free port (a test cannot claim a fixed port on a shared machine).  Around the examples the test
does what the README tells the reader to do in the shell (start the server,
create the queues, run the prepare workers).  A block that no test below
claims fails ``test_every_python_block_is_run``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trainmq

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text("utf-8"), re.S | re.M)

# Each test claims the blocks it runs by a line they contain.
API = ('sqs = trainmq.client("sqlite:///.trainmq/queues.db")', 'QueueName="shards.fifo"')
ENDPOINT = ('"sqs", endpoint_url="http://127.0.0.1:9324"', 'broker="sqs://local:local@')
HANDLER = ("# app.py: an ordinary Lambda handler",)
PIPELINE = ("source_uri, source_sha, inputs = ingest(", "while (dataset := manifest_ref(")
OWN_LOOP = ("# your own model and loop, made durable by trainmq",)
HF_TRAINER = ("# a Hugging Face Trainer, made durable by trainmq",)


def block(marker: str) -> str:
    [found] = [code for code in BLOCKS if marker in code]
    return found


def run(code: str, namespace: dict[str, Any]) -> None:
    exec(compile(code, str(README), "exec"), namespace)


def test_every_python_block_is_run() -> None:
    markers = (*API, *ENDPOINT, *HANDLER, *PIPELINE, *OWN_LOOP, *HF_TRAINER)
    claimed = [block(marker) for marker in markers]
    assert sorted(claimed) == sorted(BLOCKS)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_python_api(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    run(block(API[0]), namespace)
    assert capsys.readouterr().out == "AWS.SimpleQueueService.NonExistentQueue\n"
    assert (workdir / ".trainmq" / "queues.db").is_file()  # relative, as the comment says
    run(block(API[1]), namespace)
    with trainmq.client() as sqs:
        names = [u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]]
        train = sqs.get_queue_url(QueueName="train")["QueueUrl"]
        left = sqs.get_queue_attributes(QueueUrl=train, AttributeNames=["All"])["Attributes"]
    assert names == ["shards.fifo", "train", "train-dlq"]
    assert left["ApproximateNumberOfMessages"] == left["ApproximateNumberOfMessagesNotVisible"]
    assert left["ApproximateNumberOfMessages"] == "0"  # received and deleted


@pytest.fixture
def served(workdir: Path) -> Iterator[str]:
    """``trainmq serve`` as the README starts it, on a free port."""
    from tests.server.conftest import free_port

    port = free_port()
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "trainmq", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "server not ready"
            time.sleep(0.05)  # poll interval of a bounded readiness wait
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_boto3_and_celery_against_trainmq_serve(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {}
    run(block(ENDPOINT[0]).replace("127.0.0.1:9324", served), namespace)
    assert capsys.readouterr().out == '{"file": "shard-0001.txt"}\n'
    run(block(ENDPOINT[1]).replace("127.0.0.1:9324", served), namespace)
    assert namespace["tokenize"].name.endswith("tokenize")


def test_the_lambda_handler_is_a_plain_function() -> None:
    namespace: dict[str, Any] = {}
    run(block(HANDLER[0]), namespace)
    assert namespace["handle"]({"Records": []}, None) == {"batchItemFailures": []}


def test_feeding_the_pipeline(workdir: Path) -> None:
    from trainmq.store import open_store
    from trainmq.training.messages import PrepareRequest
    from trainmq.training.prepare import prepare

    with trainmq.client() as sqs:  # what the shell recipe's `trainmq queue create` lines do
        for name in ("prepare", "train"):
            sqs.create_queue(QueueName=name)
    namespace: dict[str, Any] = {}
    run(block(PIPELINE[0]), namespace)
    store = open_store(".trainmq/store")
    with trainmq.client() as sqs:  # what the prepare workers do
        url = sqs.get_queue_url(QueueName="prepare")["QueueUrl"]
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                prepare(store, PrepareRequest.model_validate_json(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    run(block(PIPELINE[1]), namespace)
    with trainmq.client() as sqs:
        url = sqs.get_queue_url(QueueName="train")["QueueUrl"]
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert '"run_id":"r-17"' in message["Body"].replace(" ", "")
    assert namespace["dataset"].manifest_sha256 in message["Body"]


@pytest.mark.parametrize(
    "page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda page: page.name
)
def test_documents_link_only_to_files_in_the_repository(page: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8"))
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing


def test_your_own_loop_made_durable(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainmq.store import open_store
    from trainmq.training.runs import RunRegistry

    run(block(OWN_LOOP[0]), {})
    assert capsys.readouterr().out == "20\n"
    registry = RunRegistry(open_store(".trainmq/store"))
    assert [e.event for e in registry.events("my-run/1")][-1] == "completed"
    run(block(OWN_LOOP[0]), {})  # a second delivery finds the run complete: it trains nothing
    assert capsys.readouterr().out == "20\n"
    assert len(registry.attempts("my-run/1")) == 1


# The Trainer asks for pinned memory, which a machine without an accelerator cannot give.
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")
def test_a_hugging_face_trainer_made_durable(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from trainmq.store import open_store
    from trainmq.training.runs import RunRegistry

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing is downloaded
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    if not os.environ.get("CI"):  # on CI the Makefile installs the hf extra: no skipping
        pytest.importorskip("transformers")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only waits for other threads on a busy machine
    try:
        run(block(HF_TRAINER[0]), {})
    finally:
        torch.set_num_threads(threads)
    assert capsys.readouterr().out.splitlines()[-1] == "20"
    registry = RunRegistry(open_store(".trainmq/store"))
    events = registry.events("hf-run/1")
    assert [e.step for e in events if e.event == "progress" and e.train_loss] == [5, 10, 15, 20]
    assert [e.event for e in events][-1] == "completed"
    run(block(HF_TRAINER[0]), {})  # a second delivery finds the run complete: it trains nothing
    assert capsys.readouterr().out.splitlines()[-1] == "20"
    assert len(registry.attempts("hf-run/1")) == 1
