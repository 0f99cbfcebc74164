"""Setting up and driving the pipeline: queues, corpus ingestion, fan-out, requests.

``trainmq demo`` and the pipeline benchmark use these; so can anyone who wants
the same layout.  The layout: one queue per stage (``prepare``, ``train``,
``evaluate``), each with a dead-letter queue, and an ``events`` queue the
trainer publishes ``TrainingEvent``s to.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import BlobStore
from .dataset import Source, SourceInput, canonical_json
from .locations import uri_of
from .messages import DatasetRef, PrepareRequest

__all__ = [
    "DEFAULT_LAYOUT",
    "STAGES",
    "Layout",
    "create_queues",
    "ingest",
    "manifest_ref",
    "python_corpus",
]

STAGES = ("prepare", "train", "evaluate")


@dataclass(frozen=True)
class Layout:
    """Queue names of one pipeline (``prefix`` lets several share a database)."""

    prefix: str = ""

    def queue(self, stage: str) -> str:
        return f"{self.prefix}{stage}"

    def dlq(self, stage: str) -> str:
        return f"{self.prefix}{stage}-dlq"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"


DEFAULT_LAYOUT = Layout()


def create_queues(
    client: Any,
    layout: Layout = DEFAULT_LAYOUT,
    *,
    max_receives: int = 3,
    visibility: dict[str, int] | None = None,
) -> dict[str, str]:
    """Create every queue (idempotently); returns name -> URL."""
    visibility = {"prepare": 900, "train": 30, "evaluate": 900, **(visibility or {})}
    urls: dict[str, str] = {}
    for stage in STAGES:
        dlq_url = client.create_queue(
            QueueName=layout.dlq(stage), Attributes={"MessageRetentionPeriod": "1209600"}
        )["QueueUrl"]
        urls[layout.dlq(stage)] = dlq_url
        arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        urls[layout.queue(stage)] = client.create_queue(
            QueueName=layout.queue(stage),
            Attributes={
                "VisibilityTimeout": str(visibility[stage]),
                "MessageRetentionPeriod": "345600",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)}
                ),
            },
        )["QueueUrl"]
    urls[layout.events] = client.create_queue(QueueName=layout.events)["QueueUrl"]
    return urls


def _stdlib_sources() -> Iterator[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.glob("*.py")):
        try:
            yield f"stdlib/{path.name}", path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def _doc_topics() -> Iterator[tuple[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip the documentation topics
        return
    for name in sorted(topics):
        yield f"docs/{name}", topics[name]


def python_corpus(max_bytes: int = 2_000_000, files: int = 4) -> list[tuple[str, bytes]]:
    """Text that ships with Python itself, as ``files`` JSON-lines input files.

    The documentation topics of ``pydoc`` and the standard library's sources,
    in a fixed order, up to about ``max_bytes`` of text: every document is
    ``{"id": ..., "text": ...}``; documents are dealt round-robin into files.
    """
    buckets: list[list[str]] = [[] for _ in range(files)]
    total = 0
    for number, (name, text) in enumerate([*_doc_topics(), *_stdlib_sources()]):
        if total >= max_bytes:
            break
        buckets[number % files].append(json.dumps({"id": name, "text": text}))
        total += len(text)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return [
        (f"python{version}-part-{i:02d}.jsonl", ("\n".join(lines) + "\n").encode())
        for i, lines in enumerate(buckets)
        if lines
    ]


def ingest(
    store: BlobStore, dataset_id: str, inputs: list[tuple[str, bytes]]
) -> tuple[str, str, list[SourceInput]]:
    """Store the input files and the dataset's source; returns its URI, sha256 and inputs."""
    entries = []
    for name, data in inputs:
        sha = hashlib.sha256(data).hexdigest()
        key = f"datasets/{dataset_id}/inputs/{sha[:16]}-{os.path.basename(name)}"
        if not store.exists(key):
            store.put(key, data)
        entries.append(SourceInput(uri=uri_of(store, key), sha256=sha, bytes=len(data)))
    source = canonical_json(Source(dataset_id=dataset_id, inputs=entries).model_dump())
    sha = hashlib.sha256(source).hexdigest()
    key = f"datasets/{dataset_id}/sources/{sha}.json"
    if not store.exists(key):
        store.put(key, source)
    return uri_of(store, key), sha, entries


def prepare_requests(
    store: BlobStore,
    dataset_id: str,
    source_uri: str,
    source_sha256: str,
    inputs: list[SourceInput],
    *,
    vocab_size: int = 2048,
    shard_tokens: int = 65536,
    tokenizer: tuple[str, str] | None = None,
) -> list[PrepareRequest]:
    """The fan-out: one ``PrepareRequest`` per input file, all writing one dataset version.

    ``tokenizer``: the URI and sha256 of an existing ``tokenizer.json`` to use instead of
    training one (the version then lives in a folder named by that sha256)."""
    uri, sha256 = tokenizer or (None, None)
    flavour = f"t{sha256[:16]}" if sha256 else f"v{vocab_size}"
    pin = f"-{flavour}" if sha256 else ""
    prefix = uri_of(store, f"datasets/{dataset_id}/versions/{source_sha256[:16]}-{flavour}")
    return [
        PrepareRequest(
            dataset_id=dataset_id,
            source_uri=source_uri,
            source_sha256=source_sha256,
            input_uri=item.uri,
            input_sha256=item.sha256,
            output_prefix=prefix,
            vocab_size=vocab_size,
            shard_tokens=shard_tokens,
            idempotency_key=f"prepare/{source_sha256[:16]}{pin}/{item.sha256[:16]}",
            tokenizer_uri=uri,
            tokenizer_sha256=sha256,
        )
        for item in inputs
    ]


def manifest_ref(store: BlobStore, request: PrepareRequest) -> DatasetRef | None:
    """The dataset version the fan-out of ``request`` produced, once its manifest exists."""
    from .locations import key_of

    key = key_of(store, request.output_prefix).rstrip("/") + "/manifest.json"
    if not store.exists(key):
        return None
    with store.get(key) as stream:
        data = stream.read()
    return DatasetRef(
        manifest_uri=uri_of(store, key), manifest_sha256=hashlib.sha256(data).hexdigest()
    )
