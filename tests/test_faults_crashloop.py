"""Crash loop, CI size: the real ``hookd run`` SIGKILLed 5 times at random moments under load
(``python -m bench.crashloop`` does 100): every event answered 202 reaches both endpoints. On
PostgreSQL two processes share the outbox and each kill picks one of them.

The seed is printed, so a failing run can be replayed with ``--seed``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.crashloop import crash_loop
from tests.support.backends import rig_storage, takeover_s
from tests.support.slow import require_slow

KILLS = 5
# The bench's retry delays with a 2 s attempt timeout: on PostgreSQL a killed process's attempts
# in flight are made again once their leases end (timeout + 30 s), 13 s sooner than with 15 s.
POLICY = "{timeout: 2s, delays: [200ms, 500ms, 1s, 2s, 5s, 10s, 10s, 10s], jitter: none}"


@pytest.mark.slow
@pytest.mark.timeout(180)
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
        storage=rig_storage(),
        policy=POLICY,
        after_s=2.0,
        settle_s=60 + takeover_s(2.0),
        log=lambda *_: None,
    )
    print(result)
    assert result.kills == KILLS
    assert result.accepted >= 100
    assert result.missing == 0, result.missing_ids
    assert result.final_status["deliveries"]["pending"] == 0
    assert result.final_status["deliveries"]["failed"] == 0
