"""The history checker finds each kind of violation it claims to find, and passes a clean run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.history import History, violations

CLEAN = {
    "p": [
        "send 1.0 m-1 g1", "sent 1.1 id1 m-1",
        "send 1.2 m-2 g1", "sent 1.3 id2 m-2",
    ],
    "c": [
        "recv 2.0 2.1 5 1 id1 m-1 g1 1 q",
        "del 2.2 id1", "deleted 2.3 id1",
        "recv 3.0 3.1 5 1 id2 m-2 g1 2 q",
        "chvis 3.2 id2 0", "chvised 3.3 id2 0",
        "recv 4.0 4.1 5 2 id2 m-2 g1 2 q",
        "del 4.2 id2", "deleted 4.3 id2",
    ],
}  # fmt: skip


def check(tmp_path: Path, logs: dict[str, list[str]], drained: tuple[str, ...] = ()) -> list[str]:
    history = History()
    for actor, lines in logs.items():
        path = tmp_path / f"{actor}.log"
        path.write_text("".join(line + "\n" for line in lines))
        history.read(path, actor)
    history.drained.update(drained)
    return violations(history, max_receive_count=4, dead_letter_queues={"dlq"})


def test_a_clean_history_passes(tmp_path: Path) -> None:
    assert check(tmp_path, CLEAN) == []


def with_lines(actor: str, *lines: str) -> dict[str, list[str]]:
    logs = {name: list(body) for name, body in CLEAN.items()}
    logs[actor] = logs.get(actor, []) + list(lines)
    return logs


@pytest.mark.parametrize(
    ("logs", "kind"),
    [
        (with_lines("p", "send 5.0 m-5 g2", "sent 5.1 id5 m-5"), "lost"),
        (with_lines("c", "recv 6.0 6.1 5 1 id9 m-9 g3 9 q"), "invented"),
        (with_lines("p", "send 5.0 m-1 g1", "sent 5.1 id7 m-1"), "invented"),
        (with_lines("x", "recv 2.15 2.18 5 2 id1 m-1 g1 1 q"), "held twice"),
        (with_lines("x", "recv 5.0 5.1 5 3 id2 m-2 g1 2 q"), "delete then redelivered"),
        (
            with_lines("c", "recv 5.0 5.1 5 3 id2 m-2 g1 2 q", "recv 6.0 6.1 5 3 id2 m-2 g1 2 q"),
            "receive counts",
        ),
        (with_lines("c", "recv 5.0 5.1 5 5 id2 m-2 g1 2 q"), "receive counts"),
        (
            with_lines(
                "p",
                "send 5.0 m-3 g2",
                "sent 5.1 id3 m-3",
                "send 5.2 m-4 g2",
                "sent 5.3 id4 m-4",
            )
            | {"c2": ["recv 6.0 6.1 5 1 id4 m-4 g2 4 q", "recv 7.0 7.1 5 1 id3 m-3 g2 3 q"]},
            "FIFO order",
        ),
        (
            with_lines(
                "p",
                "send 5.0 m-3 g2",
                "sent 5.1 id3 m-3",
                "send 5.2 m-4 g2",
                "sent 5.3 id4 m-4",
            )
            | {
                "c2": ["recv 6.0 6.1 5 1 id3 m-3 g2 3 q"],
                "c3": ["recv 7.0 7.1 5 1 id4 m-4 g2 4 q"],
            },
            "FIFO exclusivity",
        ),
    ],
)
def test_each_violation_is_found(tmp_path: Path, logs: dict[str, list[str]], kind: str) -> None:
    found = check(tmp_path, logs, drained=("id3", "id4"))
    assert any(v.startswith(kind) for v in found), found


def test_an_extended_visibility_keeps_the_window_open(tmp_path: Path) -> None:
    logs = with_lines(
        "c",
        "recv 10.0 10.1 2 3 id2 m-2 g1 2 q",
        "chvis 10.5 id2 30",
        "chvised 10.6 id2 30",
    ) | {"x": ["recv 20.0 20.1 5 4 id2 m-2 g1 2 q"]}
    assert any(v.startswith("held twice") for v in check(tmp_path, logs))
    logs["c"] = [line for line in logs["c"] if "chvised 10.6" not in line]
    assert not any(v.startswith("held twice") for v in check(tmp_path, logs))
