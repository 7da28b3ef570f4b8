"""Crash loop, CI size: the real ``hookd run`` SIGKILLed 5 times at random moments under load
(``python -m bench.crashloop`` does 100): every event answered 202 reaches both endpoints.

The seed is printed, so a failing run can be replayed with ``--seed``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.crashloop import crash_loop
from tests.support.backends import DAEMON_BACKENDS, storage_keys
from tests.support.slow import require_slow

KILLS = 5


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", DAEMON_BACKENDS)
async def test_random_sigkills_under_load_lose_no_accepted_event(
    tmp_path: Path, backend: str
) -> None:
    require_slow("hookd run")
    seed = random.randrange(1 << 30)
    print(f"python -m bench.crashloop --kills {KILLS} --seed {seed}")
    result = await crash_loop(
        tmp_path,
        kills=KILLS,
        rate=50,
        seed=seed,
        processes=2 if backend == "postgres" else 1,  # kill one of two sharing the outbox
        storage=storage_keys(backend),
        settle_s=60,
        log=lambda *_: None,
    )
    print(result)
    assert result.kills == KILLS
    assert result.accepted >= 100
    assert result.missing == 0, result.missing_ids
    assert result.final_status["deliveries"]["pending"] == 0
    assert result.final_status["deliveries"]["failed"] == 0
