"""Timeouts, dying handler processes, a SIGKILLed worker, heartbeats and graceful shutdown."""

from __future__ import annotations

import signal

from tests.worker.conftest import Env, counts, drain, make_queue, send, wait_for


def test_a_handler_past_its_timeout_is_killed_and_its_batch_kept(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "slow", visibility=2, max_receives=2)
        dlq = url.replace("/slow", "/slow-dlq")
        [slow_id] = send(sqs, url, [{"n": 0, "do": "sleep", "seconds": 30}])
        worker = env.start("scripted", "slow", "--timeout", "1", "--batch-size", "1")
        wait_for(lambda: counts(sqs, dlq)[0] == 1, timeout=20, what="the slow message in the DLQ")
        send(sqs, url, [{"n": 1}])
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
        assert [m["MessageId"] for m in drain(sqs, dlq)] == [slow_id]
    entries = env.log.entries()
    assert [(e["n"], e["receives"]) for e in entries] == [(0, 1), (0, 2), (1, 1)]
    assert len({e["pid"] for e in entries}) == 3  # each kill replaced the process
    assert "outcome=timeout" in worker.output()


def test_a_dying_handler_process_fails_only_its_batch(any_env: Env) -> None:
    with any_env.client() as sqs:
        url = make_queue(sqs, "crashy", visibility=1)
        send(sqs, url, [{"n": 0, "do": "exit", "first": True}, {"n": 1}, {"n": 2}])
        worker = any_env.start(
            "scripted", "crashy", "--batch-size", "1", "--concurrency", "2", "--timeout", "1"
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), what="the queue to empty")
    handled = sorted((e["n"], e["receives"]) for e in any_env.log.entries())
    assert handled == [(0, 1), (0, 2), (1, 1), (2, 1)]
    assert "handler process exited with status 3" in worker.output()


def test_sigkill_of_the_worker_loses_nothing(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "killed", visibility=2)
        bodies = [{"n": i, "do": "sleep", "seconds": 30, "first": True} for i in range(4)]
        send(sqs, url, bodies)
        worker = env.start("scripted", "killed", "--batch-size", "2", "--timeout", "2")
        wait_for(lambda: env.log.entries(), what="a batch to start")
        worker.kill_group()
        assert counts(sqs, url)[1] >= 1  # in flight, not lost and not deleted
        env.start("scripted", "killed", "--batch-size", "2", "--timeout", "2")
        wait_for(lambda: counts(sqs, url) == (0, 0), timeout=30, what="the queue to empty")
    finished = {e["n"] for e in env.log.entries() if e["receives"] > 1}
    first = {e["n"] for e in env.log.entries() if e["receives"] == 1}
    assert first | finished == {0, 1, 2, 3}
    assert first <= finished  # everything the killed worker started came back


def test_heartbeats_keep_a_long_handler_from_being_redelivered(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "long", visibility=2)
        [message_id] = send(sqs, url, [{"n": 0, "do": "sleep", "seconds": 6}])
        env.start(
            "scripted", "long", "--long-running", "--timeout", "60", "--concurrency", "2",
            "--batch-size", "1",
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), timeout=20, what="the queue to empty")
    entries = env.log.entries()
    assert [(e["id"], e["receives"]) for e in entries] == [(message_id, 1)]


def test_heartbeats_cover_messages_held_while_a_batching_window_fills(env: Env) -> None:
    # The window (5 s) is longer than the visibility timeout (2 s): without heartbeats
    # from the moment of receipt, the held message would become visible again and be
    # received a second time into the same batch.
    with env.client() as sqs:
        url = make_queue(sqs, "window", visibility=2)
        [message_id] = send(sqs, url, [{"n": 0}])
        env.start(
            "scripted", "window", "--timeout", "1", "--batch-size", "100",
            "--batching-window", "5",
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), timeout=20, what="the queue to empty")
    assert [(e["id"], e["receives"]) for e in env.log.entries()] == [(message_id, 1)]


def test_without_heartbeats_a_long_handler_is_redelivered(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "lease", visibility=1)
        send(sqs, url, [{"n": 0, "do": "sleep", "seconds": 3, "first": True}])
        env.start(
            "scripted", "lease", "--no-heartbeat", "--timeout", "1", "--concurrency", "2",
            "--batch-size", "1",
        )
        wait_for(lambda: counts(sqs, url) == (0, 0), timeout=20, what="the queue to empty")
    assert sorted(e["receives"] for e in env.log.entries())[:2] == [1, 2]


def test_sigterm_finishes_the_running_batch_and_exits_zero(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "graceful", visibility=10)
        send(sqs, url, [{"n": 0, "do": "sleep", "seconds": 1.5}])
        worker = env.start("scripted", "graceful", "--timeout", "5")
        wait_for(lambda: env.log.entries(), what="the batch to start")
        assert worker.terminate() == 0
        assert counts(sqs, url) == (0, 0)  # finished and deleted before exiting


def test_sigterm_releases_received_but_unstarted_messages(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "gather", visibility=300)
        send(sqs, url, [{"n": i} for i in range(3)])
        worker = env.start(
            "scripted", "gather", "--batch-size", "100", "--batching-window", "60",
            "--timeout", "5",
        )
        wait_for(lambda: counts(sqs, url) == (0, 3), what="the worker to hold the messages")
        assert worker.terminate() == 0
        assert counts(sqs, url) == (3, 0)  # visible again at once, not after 300 s
    assert env.log.entries() == []


def test_a_second_signal_aborts(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "abort", visibility=30)
        send(sqs, url, [{"n": 0, "do": "sleep", "seconds": 30}])
        worker = env.start("scripted", "abort", "--timeout", "30")
        wait_for(lambda: env.log.entries(), what="the batch to start")
        worker.process.send_signal(signal.SIGTERM)
        worker.process.send_signal(signal.SIGINT)
        assert worker.process.wait(timeout=15) == 130
        assert counts(sqs, url) == (0, 1)  # not deleted: it returns after the visibility timeout
