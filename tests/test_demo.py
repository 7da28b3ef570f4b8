"""``hookd demo`` runs the real daemon, shows deliveries and retries, and stops cleanly."""

from __future__ import annotations

import re
import signal

import pytest

from hookd.cli import demo
from tests.support import assert_one_line_error, hookd, running

URL = re.compile(r"hookd status --url (http://127\.0\.0\.1:\d+)")


@pytest.mark.slow
async def test_demo_shows_retries_and_stops_cleanly_on_sigint() -> None:
    async with running("demo", "--events", "3") as run:
        intro = await run.wait_line(lambda s: "hookd status --url" in s)
        url_match = URL.search(intro)
        assert url_match
        url = url_match.group(1)
        assert any(f"hookd deliveries list --url {url}" in line for line in run.lines)

        # The receiver fails the second message once (500), the third with a 429 + Retry-After.
        await run.wait_line(lambda s: "attempt 1 → 500" in s)
        await run.wait_line(lambda s: "attempt 1 → 429" in s and "Retry-After 2s" in s)
        await run.wait_line(lambda s: "attempt 2 → 200" in s)
        await run.wait_line(lambda s: "succeeded 3" in s and "pending 0" in s)

        # Meanwhile other hookd commands can talk to it.
        status = await hookd("status", "--url", url)
        assert status.code == 0, status.err
        assert "orders" in status.out
        assert "crm" in status.out

        code, err = await run.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err
    final = run.lines[-1]
    assert final.startswith("hookd demo stopped after")
    assert "succeeded 3" in final
    assert "failed on purpose" in final


@pytest.mark.slow
async def test_demo_stops_by_itself_after_its_duration() -> None:
    async with running("demo", "--events", "1", "--duration", "1") as run:
        code, err = await run.finish(within=30)
    assert code == 0, err
    assert run.lines[-1].startswith("hookd demo stopped after")
    assert "events posted 1" in run.lines[-1]


@pytest.mark.slow
async def test_demo_rejects_a_bad_duration() -> None:
    assert_one_line_error(await hookd("demo", "--duration", "soon"), 2, "--duration")


@pytest.mark.parametrize(
    ("k", "answers"),
    [
        (0, [200]),
        (1, [500, 200]),
        (2, [429, 200]),
        (3, [200]),
        (4, [500, 503, 200]),
        (7, [500, 200]),
    ],
)
def test_the_receiver_fails_some_messages_on_purpose(k: int, answers: list[int]) -> None:
    """Every delivery succeeds within the demo policy's four attempts."""
    got = [demo.planned(k, attempt)[0] for attempt in range(1, len(answers) + 1)]
    assert got == answers
    assert len(answers) <= 4
