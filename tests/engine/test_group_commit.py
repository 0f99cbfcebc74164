"""Group commit: concurrent callers share transactions; failures stay isolated."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from trainmq.queue.sqlite.commit import GroupCommitter


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER UNIQUE)")
    return conn


def test_concurrent_callers_share_commits(tmp_path: Path) -> None:
    gate = threading.Event()
    committer = GroupCommitter(_connect(tmp_path / "db"), full_sync=True)
    # Hold the writer inside one transaction until every caller has queued its work.
    blocker = threading.Thread(target=committer.submit, args=(lambda c: gate.wait(10),))
    blocker.start()
    threads = [
        threading.Thread(
            target=committer.submit,
            args=(lambda c, i=i: c.execute("INSERT INTO t VALUES (?)", (i,)),),
        )
        for i in range(50)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in [blocker, *threads]:
        thread.join()
    count = committer.submit(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
    commits = committer.commits
    committer.close()
    assert count == 50
    assert commits < 50  # the 50 inserts rode in far fewer transactions


def test_a_failing_operation_rolls_back_alone(tmp_path: Path) -> None:
    committer = GroupCommitter(_connect(tmp_path / "db"), full_sync=False)
    committer.submit(lambda c: c.execute("INSERT INTO t VALUES (1)"))

    def fails(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES (2)")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        committer.submit(fails)
    rows = committer.submit(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
    committer.close()
    assert rows == [1]


def test_a_failing_operation_in_a_group_rolls_back_alone(tmp_path: Path) -> None:
    committer = GroupCommitter(_connect(tmp_path / "db"), full_sync=False)
    gate = threading.Event()
    errors: list[BaseException] = []

    def fails(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES (11)")
        raise ValueError("boom")

    def submit(fn: object) -> None:
        try:
            committer.submit(fn)  # type: ignore[arg-type]
        except ValueError as exc:
            errors.append(exc)

    blocker = threading.Thread(target=committer.submit, args=(lambda c: gate.wait(10),))
    blocker.start()
    threads = [
        threading.Thread(target=submit, args=(fn,))
        for fn in (
            lambda c: c.execute("INSERT INTO t VALUES (10)"),
            fails,
            lambda c: c.execute("INSERT INTO t VALUES (12)"),
        )
    ]
    for thread in threads:
        thread.start()
    # the three operations wait behind the blocker, then run as one group
    deadline = time.monotonic() + 10
    while len(committer._pending) < 3:
        assert time.monotonic() < deadline, "the operations never queued up"
        threading.Event().wait(0.001)
    gate.set()
    for thread in [blocker, *threads]:
        thread.join()
    rows = committer.submit(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
    committer.close()
    assert rows == [10, 12]
    assert [str(e) for e in errors] == ["boom"]


def _queue_behind_blocker(
    committer: GroupCommitter, submits: list[object]
) -> tuple[threading.Event, list[threading.Thread]]:
    """Hold the writer in one transaction until every submit is pending, so that they
    run as one group when the returned gate is set."""
    gate = threading.Event()
    blocker = threading.Thread(target=committer.submit, args=(lambda c: gate.wait(10),))
    blocker.start()
    deadline = time.monotonic() + 10
    while not committer._leading:
        assert time.monotonic() < deadline, "the blocker never started"
        threading.Event().wait(0.001)
    threads = [threading.Thread(target=submit) for submit in submits]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    while len(committer._pending) < len(submits):
        assert time.monotonic() < deadline, "the operations never queued up"
        threading.Event().wait(0.001)
    return gate, [blocker, *threads]


def test_adjacent_operations_with_one_merge_key_run_as_one_call(tmp_path: Path) -> None:
    committer = GroupCommitter(_connect(tmp_path / "db"), full_sync=False)
    merged_calls: list[list[int]] = []
    results: dict[int, object] = {}

    def merged(conn: sqlite3.Connection, payloads: list[int]) -> list[int]:
        merged_calls.append(list(payloads))
        conn.executemany("INSERT INTO t VALUES (?)", [(p,) for p in payloads])
        return [p * 10 for p in payloads]

    def submit(value: int) -> None:
        results[value] = committer.submit(
            lambda c: c.execute("INSERT INTO t VALUES (?)", (value,)) and value * 10,
            merge=("queue-a", merged, value),
        )

    gate, threads = _queue_behind_blocker(
        committer, [lambda v=v: submit(v) for v in (1, 2, 3)]  # type: ignore[misc]
    )
    gate.set()
    for thread in threads:
        thread.join()
    rows = committer.submit(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
    committer.close()
    assert merged_calls == [[1, 2, 3]]  # one call for the three, in submission order
    assert results == {1: 10, 2: 20, 3: 30}  # each caller gets its own result back
    assert rows == [1, 2, 3]


def test_a_failing_merged_call_reruns_each_operation_alone(tmp_path: Path) -> None:
    committer = GroupCommitter(_connect(tmp_path / "db"), full_sync=False)
    outcomes: dict[int, object] = {}

    def merged(conn: sqlite3.Connection, payloads: list[int]) -> list[None]:
        conn.executemany("INSERT INTO t VALUES (?)", [(p,) for p in payloads])
        return [None] * len(payloads)  # the duplicate 21 raised inside executemany

    def submit(value: int) -> None:
        try:
            committer.submit(
                lambda c: c.execute("INSERT INTO t VALUES (?)", (value,)),
                merge=("queue-a", merged, value),
            )
            outcomes[value] = "ok"
        except Exception as exc:
            outcomes[value] = type(exc).__name__

    committer.submit(lambda c: c.execute("INSERT INTO t VALUES (21)"))
    gate, threads = _queue_behind_blocker(
        committer, [lambda v=v: submit(v) for v in (20, 21, 22)]  # type: ignore[misc]
    )
    gate.set()
    for thread in threads:
        thread.join()
    rows = committer.submit(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
    committer.close()
    assert outcomes == {20: "ok", 21: "StorageError", 22: "ok"}
    assert rows == [20, 21, 22]


def test_sends_merged_into_one_insert_each_get_their_own_messages(tmp_path: Path) -> None:
    import trainmq

    client = trainmq.client(tmp_path / "queues.db", durability="normal")
    url = client.create_queue(QueueName="q")["QueueUrl"]
    committer = client.service.backend._database.committer
    answers: dict[int, dict[str, str]] = {}

    def send(index: int) -> None:  # batches of 1, 2 and 3 messages: the split must hold
        entries = [{"Id": f"e{n}", "MessageBody": f"{index}-{n}"} for n in range(index % 3 + 1)]
        response = client.send_message_batch(QueueUrl=url, Entries=entries)
        bodies = {entry["Id"]: entry["MessageBody"] for entry in entries}
        answers[index] = {ok["MessageId"]: bodies[ok["Id"]] for ok in response["Successful"]}

    before = committer.commits
    gate, threads = _queue_behind_blocker(
        committer, [lambda i=i: send(i) for i in range(6)]  # type: ignore[misc]
    )
    gate.set()
    for thread in threads:
        thread.join()
    commits = committer.commits - before
    received: dict[str, str] = {}
    while found := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        received.update({m["MessageId"]: m["Body"] for m in found})
    client.close()
    sent = {message_id: body for answer in answers.values() for message_id, body in answer.items()}
    assert [len(answers[i]) for i in range(6)] == [1, 2, 3, 1, 2, 3]
    assert received == sent  # every id names the body its own sender sent
    assert commits == 2  # the blocker's group, then one group for all six sends
