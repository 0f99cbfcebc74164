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
