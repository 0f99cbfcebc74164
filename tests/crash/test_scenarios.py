"""Crash scenarios under SIGKILL, judged by the history checker (quick version).

Each scenario (``scenarios.SCENARIOS``) runs a few rounds of producers and
consumers (and an opener, or a ``trainmq serve`` process under boto3 clients)
that are SIGKILLed at random moments; then every message must be accounted for
(``history.py`` lists what is checked).  ``make chaos`` runs many more rounds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.crash import scenarios

ROUNDS = 3


@pytest.mark.slow
@pytest.mark.parametrize("scenario", scenarios.SCENARIOS, ids=lambda s: s.name)
def test_every_message_accounted_for(scenario: scenarios.Scenario, tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(2**32)
    outcome = scenarios.run(scenario, tmp_path, ROUNDS, seed)
    print(f"seed {seed}\n{scenarios.HEADER}\n{outcome.row()}")
    assert outcome.violations == [], f"seed {seed}: {outcome.violations[:20]}"
    assert outcome.kills >= ROUNDS
    assert outcome.history.acked, f"seed {seed}: no send was acknowledged"
    assert any(d.actor != "drain" for d in outcome.history.deliveries), "nothing was consumed"
