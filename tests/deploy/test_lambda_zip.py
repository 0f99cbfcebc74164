"""The Lambda deployment zip: reproducible, lean, and enough on its own to run the handler.

The end-to-end test extracts the zip into an empty folder and runs the handler
in a clean interpreter (``-I -S``: the standard library and that folder, no
site-packages) on a recorded SQS event, with S3 and SQS served by moto.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import socket
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trainmq.cli.exit_codes import ExitCode
from trainmq.cli.main import app
from trainmq.packaging.fetch import download_command
from trainmq.packaging.lambda_zip import FIXED_TIME, PackageError, Target, build, normalize

HERE = Path(__file__).parent
EVENT = HERE / "fixtures" / "sqs_event.json"
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
ARCHITECTURE = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
OTHER_RUNTIME = f"python3.{sys.version_info.minor + 1}"
REGION = "us-east-1"
TRAINING_EXTRAS = ("torch", "numpy", "tokenizers", "matplotlib")


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dist") / "trainmq-lambda.zip"
    build(path, runtime=RUNTIME, architecture=ARCHITECTURE)
    return path


def top_levels(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return {name.split("/")[0] for name in archive.namelist()}


# -- reproducible ---------------------------------------------------------------------------
def test_same_inputs_give_the_same_bytes(lambda_zip: Path, tmp_path: Path) -> None:
    source = Path(__import__("trainmq.training.intake").training.intake.__file__)
    stat = source.stat()
    try:
        os.utime(source, (stat.st_atime, stat.st_mtime + 3600))  # a newer mtime, same content
        again = build(tmp_path / "again.zip", runtime=RUNTIME, architecture=ARCHITECTURE)
    finally:
        os.utime(source, (stat.st_atime, stat.st_mtime))
    assert again.path.read_bytes() == lambda_zip.read_bytes()
    assert again.sha256 == hashlib.sha256(lambda_zip.read_bytes()).hexdigest()


def test_entries_are_sorted_dated_1980_mode_0644_and_without_caches(lambda_zip: Path) -> None:
    with zipfile.ZipFile(lambda_zip) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names) and len(names) == len(set(names))
    for info in infos:
        assert info.date_time == FIXED_TIME, info.filename
        assert info.external_attr >> 16 == 0o100644, info.filename
        assert not info.is_dir(), info.filename
        assert "__pycache__" not in info.filename and not info.filename.endswith(".pyc")


def test_the_zip_holds_trainmq_and_the_intake_dependencies_only(lambda_zip: Path) -> None:
    tops = top_levels(lambda_zip)
    assert {"trainmq", "pydantic", "pydantic_core", "boto3", "botocore", "s3transfer"} <= tops
    for excluded in (*TRAINING_EXTRAS, "pulumi", "pulumi_aws", "typer", "moto", "pytest"):
        assert excluded not in tops, excluded
    with zipfile.ZipFile(lambda_zip) as archive:
        names = set(archive.namelist())
    assert "trainmq/training/intake.py" in names
    assert "trainmq/queue/sqlite/schema.sql" in names  # package data comes along
    assert not [n for n in names if n.endswith(("/RECORD", "/INSTALLER", "/direct_url.json"))]


# -- compiled dependencies ------------------------------------------------------------------
def test_a_runtime_the_installed_build_does_not_fit_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(PackageError) as caught:
        build(tmp_path / "z.zip", runtime=OTHER_RUNTIME, architecture=ARCHITECTURE, fetch=False)
    message = str(caught.value)
    assert "pydantic_core" in message and f"no wheel for {OTHER_RUNTIME}" in message
    hint = f"pip download --only-binary=:all: --no-deps --python-version {OTHER_RUNTIME[6:]}"
    assert hint in message
    assert not (tmp_path / "z.zip").exists()


def fake_wheel(folder: Path, tags: str) -> Path:
    """A pydantic-core wheel of the installed version, for another Python (its .so is a stub)."""
    from importlib.metadata import version

    folder.mkdir(exist_ok=True)
    wheel = folder / f"pydantic_core-{version('pydantic-core')}-{tags}.whl"
    so = f"pydantic_core/_pydantic_core.cpython-3{sys.version_info.minor + 1}-x86_64-linux-gnu.so"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pydantic_core/__init__.py", "# from the wheel\n")
        archive.writestr(so, b"\x7fELF stub")
        archive.writestr(f"pydantic_core-{version('pydantic-core')}.dist-info/METADATA", "x")
        archive.writestr(f"pydantic_core-{version('pydantic-core')}.dist-info/RECORD", "")
    return wheel


def test_a_fitting_wheel_replaces_the_installed_build(tmp_path: Path) -> None:
    minor = sys.version_info.minor + 1
    wheel = fake_wheel(
        tmp_path / "wheels", f"cp3{minor}-cp3{minor}-manylinux_2_17_x86_64.manylinux2014_x86_64"
    )
    report = build(tmp_path / "z.zip", runtime=OTHER_RUNTIME, architecture="x86_64",
                   wheels=wheel.parent)  # fmt: skip
    assert {s.name: s.origin for s in report.sources}["pydantic-core"] == wheel.name
    with zipfile.ZipFile(report.path) as archive:
        names = set(archive.namelist())
        assert archive.read("pydantic_core/__init__.py") == b"# from the wheel\n"
    assert f"pydantic_core/_pydantic_core.cpython-3{minor}-x86_64-linux-gnu.so" in names
    assert not [n for n in names if "_pydantic_core.cpython-3" in n and f"-3{minor}-" not in n]
    assert not [n for n in names if n.endswith("/RECORD")]


def test_a_missing_wheel_is_fetched_with_pip_for_the_runtime(tmp_path: Path) -> None:
    minor = sys.version_info.minor + 1
    asked: list[tuple[str, str, str, Path]] = []

    def download(name: str, version: str, target: Target, dest: Path) -> None:
        asked.append((name, version, target.runtime, dest))
        fake_wheel(dest, f"cp3{minor}-cp3{minor}-manylinux_2_17_x86_64.manylinux2014_x86_64")

    report = build(tmp_path / "z.zip", runtime=OTHER_RUNTIME, architecture="x86_64",
                   downloader=download)  # fmt: skip
    [(name, version, runtime, _)] = asked
    assert normalize(name) == "pydantic-core" and runtime == OTHER_RUNTIME
    assert version == importlib.metadata.version("pydantic-core")
    origin = {s.name: s.origin for s in report.sources}["pydantic-core"]
    assert origin.startswith("pydantic_core-") and f"cp3{minor}" in origin


def test_the_fetch_is_pips_own_download_for_the_target() -> None:
    target = Target.parse("python3.12", "arm64")
    command = download_command("pydantic_core", "2.33.2", target, "/tmp/w")
    assert command == [
        "pip", "download", "--only-binary=:all:", "--no-deps", "--python-version", "3.12",
        "--platform", "manylinux2014_aarch64", "--dest", "/tmp/w", "pydantic_core==2.33.2",
    ]


def test_the_zip_file_is_mode_0644(lambda_zip: Path) -> None:
    assert stat.S_IMODE(lambda_zip.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "tags",
    [
        "cp3{m}-cp3{m}-macosx_11_0_arm64",
        "cp3{m}-cp3{m}-musllinux_1_1_x86_64",
        "cp3{m}-cp3{m}-manylinux_2_17_aarch64",
        "cp310-cp310-manylinux_2_17_x86_64",
    ],
)
def test_a_wheel_for_another_platform_is_not_taken(tmp_path: Path, tags: str) -> None:
    wheel = fake_wheel(tmp_path / "wheels", tags.format(m=sys.version_info.minor + 1))
    with pytest.raises(PackageError, match="no wheel"):
        build(tmp_path / "z.zip", runtime=OTHER_RUNTIME, architecture="x86_64",
              wheels=wheel.parent, fetch=False)  # fmt: skip


@pytest.mark.parametrize(
    ("runtime", "wheel", "fits"),
    [
        ("python3.12", "x-1-cp312-cp312-manylinux_2_34_x86_64.whl", True),
        ("python3.12", "x-1-cp312-cp312-manylinux_2_35_x86_64.whl", False),  # newer glibc
        ("python3.11", "x-1-cp311-cp311-manylinux_2_28_x86_64.whl", False),  # AL2: glibc 2.26
        ("python3.11", "x-1-cp311-cp311-manylinux2014_x86_64.whl", True),
        ("python3.13", "x-1-cp38-abi3-manylinux_2_17_x86_64.whl", True),
        ("python3.12", "x-1-cp313-abi3-manylinux_2_17_x86_64.whl", False),  # abi3 from 3.13 on
        ("python3.12", "x-1-py3-none-any.whl", False),  # only compiled wheels are looked up
    ],
)
def test_wheel_tags_against_the_lambda_runtime(runtime: str, wheel: str, fits: bool) -> None:
    assert Target.parse(runtime, "x86_64").fits_wheel(wheel) is fits


# -- the command ----------------------------------------------------------------------------
def test_the_command_writes_the_zip_and_names_its_contents(tmp_path: Path) -> None:
    output = tmp_path / "out" / "lambda.zip"
    result = CliRunner().invoke(
        app,
        ["package", "lambda", "--output", str(output), "--runtime", RUNTIME,
         "--architecture", ARCHITECTURE],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {output} for {RUNTIME} {ARCHITECTURE}")
    assert "  pydantic-core " in result.output and "  trainmq 0.1.0 (installed)" in result.output
    assert zipfile.is_zipfile(output)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--runtime", "python3.8"], "runtime 'python3.8' is not a Lambda Python runtime"),
        (["--architecture", "sparc"], "architecture 'sparc' is not x86_64 or arm64"),
        (["--wheels", "no-such-folder"], "the wheels folder no-such-folder does not exist"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["package", "lambda", "--output", str(tmp_path / "z.zip"), *arguments]
    )
    assert result.exit_code == ExitCode.CONFIGURATION_ERROR
    assert result.output.count("\n") == 1 and message in result.output
    assert "Traceback" not in result.output


# -- the handler from the zip, in a clean interpreter ---------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


RUNNER = """
import json, sys, sysconfig
root = sys.argv[1]
sys.path.insert(0, root)
from trainmq.training.intake import handler
with open(sys.argv[2]) as stream:
    event = json.load(stream)
result = handler(event, None)
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted(
    name for name, module in sys.modules.items()
    if getattr(module, "__file__", None)
    and not module.__file__.startswith((root, *stdlib))
)
print(json.dumps({"result": result, "outside": outside, "modules": sorted(sys.modules)}))
"""


def test_the_handler_runs_from_the_extracted_zip_alone(
    lambda_zip: Path, moto_endpoint: str, tmp_path: Path
) -> None:
    sqs, s3 = aws("sqs", moto_endpoint), aws("s3", moto_endpoint)
    s3.create_bucket(Bucket="trainmq-datasets")
    urls = {
        name: sqs.create_queue(QueueName=f"trainmq-{name}")["QueueUrl"]
        for name in ("prepare", "train", "evaluate", "intake-dlq")
    }
    root = tmp_path / "task"
    root.mkdir()
    with zipfile.ZipFile(lambda_zip) as archive:
        archive.extractall(root)
    environment = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TRAINMQ_STORE": "s3://trainmq-datasets/pipeline",
        "TRAINMQ_PREPARE_QUEUE_URL": urls["prepare"],
        "TRAINMQ_TRAIN_QUEUE_URL": urls["train"],
        "TRAINMQ_EVALUATE_QUEUE_URL": urls["evaluate"],
        "TRAINMQ_DEAD_LETTER_QUEUE_URL": urls["intake-dlq"],
    }
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(root), str(EVENT)],
        env=environment, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["result"] == {"batchItemFailures": []}
    assert report["outside"] == []  # everything imported came from the zip or the stdlib
    assert not set(report["modules"]) & {*TRAINING_EXTRAS, "pulumi", "typer", "rich"}

    records = json.loads(EVENT.read_text())["Records"]
    train, prepare, _duplicate, invalid, evaluate = records

    def drain(queue: str) -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=urls[queue], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        found: list[dict[str, Any]] = response.get("Messages", [])
        return found

    [forwarded] = drain("train")  # one TrainRequest forwarded, its duplicate not
    assert forwarded["Body"] == train["body"]
    assert forwarded["MessageAttributes"]["trainmq.IdempotencyKey"]["StringValue"] == "train/r-17"
    assert [m["Body"] for m in drain("prepare")] == [prepare["body"]]
    assert [m["Body"] for m in drain("evaluate")] == [evaluate["body"]]
    [dead] = drain("intake-dlq")
    assert dead["Body"] == invalid["body"]
    reason = dead["MessageAttributes"]["trainmq.DeadLetterReason"]["StringValue"]
    assert reason.startswith("invalid TrainRequest: dataset: Field required")

    run_dir = f"pipeline/runs/{hashlib.sha256(b'train/r-17').hexdigest()}"
    listed = s3.list_objects_v2(Bucket="trainmq-datasets")
    assert sorted(o["Key"] for o in listed.get("Contents", [])) == [
        f"pipeline/intake/forwarded/{hashlib.sha256(b'train/r-17').hexdigest()}.json",
        f"{run_dir}/run.json",
        f"pipeline/runs/by-id/{hashlib.sha256(b'r-17').hexdigest()}.json",  # find by run id
    ]
    run = json.loads(
        s3.get_object(Bucket="trainmq-datasets", Key=f"{run_dir}/run.json")["Body"].read()
    )
    assert (run["run_id"], run["idempotency_key"], run["request"]) == (
        "r-17",
        "train/r-17",
        train["body"],
    )
