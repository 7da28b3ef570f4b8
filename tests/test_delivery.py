"""The delivery engine end to end: real daemon, a real store of each backend, real receivers on
127.0.0.1.

Policies here mirror the presets with delays of a tenth of a second, so whole schedules run in
about a second. Outcomes are read through the daemon's store, as the daemon recorded them.
Real time is only ever bounded from below (a retry never comes before its delay): how late a
busy machine runs one is not the daemon's doing, and test_policy proves the schedules exactly.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from standardwebhooks.webhooks import Webhook

from hookd.signing import generate_rsa, generate_standard_secret
from tests.support import (
    Answer,
    Daemon,
    Received,
    backends,
    config,
    endpoint,
    fail_first,
    free_port,
    gaps,
    receiver,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

# Presets with their retry_on / timeout / disable_after, delays shortened, jitter off.
PRESET_POLICIES = """\
  taskview: {delays: [100ms, 200ms], jitter: none}
  taskee: {delays: [100ms, 100ms, 100ms, 100ms, 100ms, 100ms], jitter: none}
  standard: {delays: [100ms, 150ms, 200ms, 250ms, 300ms], jitter: none}
"""


# --------------------------------------------------------------------------- schedules


async def test_each_preset_schedule_runs_its_attempts_at_its_gaps(tmp_path: Path) -> None:
    """taskview: 3 attempts then failed; taskee: 7 attempts on 429; standard: retries to success;
    each retry arrives no sooner than its policy delay after the one before."""
    async with (
        receiver(decide=lambda hit, n: 500) as tv,
        receiver(decide=lambda hit, n: 429) as tk,
        receiver(decide=fail_first(3, 503)) as st,
    ):
        endpoints = (
            endpoint("tv", tv.url, policy="taskview")
            + endpoint("tk", tk.url, policy="taskee")
            + endpoint("st", st.url, policy="standard")
        )
        async with running_daemon(tmp_path, config(endpoints, policies=PRESET_POLICIES)) as d:
            ids = await d.send("task.updated")
            names = ("tv", "tk", "st")
            rows = dict(zip(names, await d.settled(*(ids[ep] for ep in names)), strict=True))
            tries = {ep: await d.attempts(ids[ep]) for ep in ("tv", "tk")}

    assert (rows["tv"].status, rows["tv"].attempt_count) == ("failed", 3)
    assert (rows["tk"].status, rows["tk"].attempt_count) == ("failed", 7)
    assert (rows["st"].status, rows["st"].attempt_count) == ("succeeded", 4)
    assert rows["tk"].last_status_code == 429
    schedules = {"tv": [0.1, 0.2], "tk": [0.1] * 6, "st": [0.1, 0.15, 0.2]}
    for rec, ep in ((tv, "tv"), (tk, "tk"), (st, "st")):
        assert {h.webhook_id for h in rec.requests} == {ids["event"]}
        observed = gaps(rec.requests)
        assert len(observed) == len(schedules[ep])
        for seen, wanted in zip(observed, schedules[ep], strict=True):
            assert seen >= wanted, (ep, observed)
    assert [a.status_code for a in tries["tv"]] == [500, 500, 500]
    assert [a.n for a in tries["tk"]] == [1, 2, 3, 4, 5, 6, 7]


async def test_only_listed_codes_are_retried(tmp_path: Path) -> None:
    """A 500 to a 429-only (taskee) policy fails at once; the same 500 is retried by taskview."""
    async with receiver(decide=lambda hit, n: 500) as rec:
        endpoints = endpoint("tk", rec.url_for("/tk"), policy="taskee") + endpoint(
            "tv", rec.url_for("/tv"), policy="taskview"
        )
        async with running_daemon(tmp_path, config(endpoints, policies=PRESET_POLICIES)) as d:
            ids = await d.send("contact.create")
            taskee, taskview = await d.settled(ids["tk"], ids["tv"])
    assert (taskee.status, taskee.attempt_count, taskee.last_status_code) == ("failed", 1, 500)
    assert taskee.next_attempt_at is None
    assert (taskview.status, taskview.attempt_count) == ("failed", 3)
    assert sum(1 for h in rec.requests if h.path == "/tk") == 1


async def test_a_slow_receiver_times_out_and_is_retried(tmp_path: Path) -> None:
    """No response within the policy timeout: attempt error 'timeout', retried, then failed
    (the receiver would have answered 200, after three times the timeout)."""
    policies = "  slow: {timeout: 200ms, delays: [100ms], jitter: none}\n"
    async with receiver(delay=0.6) as rec:
        endpoints = endpoint("slow", rec.url, policy="slow")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            ids = await d.send("a.b")
            [row] = await d.settled(ids["slow"])
            tries = await d.attempts(ids["slow"])
    assert (row.status, row.attempt_count) == ("failed", 2)
    for attempt in tries:
        assert attempt.status_code is None
        assert attempt.error is not None
        assert attempt.error.startswith("timeout"), attempt.error
        assert attempt.latency_ms >= 150  # it waited for the timeout (less a timer's slack)
    assert len(rec.requests) == 2


async def test_a_closed_port_is_a_network_error_and_is_retried(tmp_path: Path) -> None:
    """Connection refused: attempt error 'network', retried per policy, then failed."""
    policies = "  quick: {delays: [100ms, 100ms], jitter: none}\n"
    endpoints = endpoint("gone", f"http://127.0.0.1:{free_port()}/hook", policy="quick")
    async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
        ids = await d.send("a.b")
        [row] = await d.settled(ids["gone"])
        tries = await d.attempts(ids["gone"])
    assert (row.status, row.attempt_count) == ("failed", 3)
    errors = [a.error or "" for a in tries]
    assert all(e.startswith("network: ") for e in errors), errors
    assert "Cannot connect" in errors[0]
    assert row.last_error == errors[-1]


# --------------------------------------------------------------------------- Retry-After


async def test_retry_after_outweighs_a_shorter_policy_delay(tmp_path: Path) -> None:
    """429 + Retry-After: 1 with a 100ms policy delay: the retry is scheduled, and comes, at
    least 1s later."""
    policy = "{retry_on: [429], delays: [100ms, 100ms], jitter: none}"
    scheduled, gap = await _retried_after_a_429(tmp_path, policy, retry_after="1")
    assert scheduled >= 1.0  # the policy's 100ms gave way
    assert gap >= 1.0


async def test_retry_after_is_capped_by_retry_after_max(tmp_path: Path) -> None:
    """Retry-After: 3600 with retry_after_max 300ms: the retry is scheduled at least 300ms but
    far less than the hour asked for, and made."""
    policy = "{retry_on: [429], delays: [100ms], jitter: none, retry_after_max: 300ms}"
    scheduled, gap = await _retried_after_a_429(tmp_path, policy, retry_after="3600")
    assert 0.3 <= scheduled < 60  # capped: far short of the hour
    assert gap >= 0.3


async def _retried_after_a_429(
    tmp_path: Path, policy: str, retry_after: str
) -> tuple[float, float]:
    """One delivery on ``policy``, answered 429 with ``Retry-After`` once, then 200.

    Returns how long after the first attempt started its retry was scheduled (as recorded),
    and the seconds between the two arrivals.
    """
    async with receiver(
        decide=lambda hit, n: (429, {"Retry-After": retry_after}) if n == 1 else 200
    ) as rec:
        text = config(endpoint("ep", rec.url, policy="quick"), policies=f"  quick: {policy}\n")
        async with running_daemon(tmp_path, text) as d:
            ids = await d.send("a.b")
            due = await wait_for(lambda: _retry_due(d, ids["ep"]))
            [row] = await d.settled(ids["ep"])
            [first, _] = await d.attempts(ids["ep"])
    assert (row.status, row.attempt_count) == ("succeeded", 2)
    [gap] = gaps(rec.requests)
    return due - first.started_at, gap


async def _retry_due(d: Daemon, delivery_id: str) -> float | None:
    """The retry's due time once the first attempt is recorded with one."""
    row = await d.row(delivery_id)
    return row.next_attempt_at if row.attempt_count == 1 else None


async def test_retry_after_holds_back_the_whole_endpoint(tmp_path: Path) -> None:
    """After a 429 with Retry-After: 1, another delivery to that endpoint waits out the pause."""
    policies = "  quick: {retry_on: [429], delays: [100ms], jitter: none}\n"
    first: list[str] = []

    def decide(hit: Received, n: int) -> Answer:
        if not first:
            first.append(hit.webhook_id)
            return (429, {"Retry-After": "1"})
        return 200

    async with receiver(decide=decide) as rec:
        endpoints = endpoint("ep", rec.url, policy="quick")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            a = await d.send("a.b")
            await wait_for(lambda: _attempted(d, a["ep"], 1))
            b = await d.send("a.b")
            await d.settled(a["ep"], b["ep"])
    paused_at = rec.of(a["event"])[0].at
    [b_hit] = rec.of(b["event"])
    assert b_hit.at - paused_at >= 1.0


async def _attempted(d: Daemon, delivery_id: str, count: int) -> bool:
    return (await d.row(delivery_id)).attempt_count == count


# --------------------------------------------------------------------------- auto-disable


async def test_consecutive_failed_deliveries_disable_the_endpoint(tmp_path: Path) -> None:
    """disable_after: 3 and three failed deliveries (at once): disabled; new events skip it."""
    policies = "  brittle: {delays: [], disable_after: 3}\n"
    async with receiver(decide=lambda hit, n: 500) as rec:
        endpoints = endpoint(
            "bad", rec.url_for("/bad"), policy="brittle", events='["d.*"]'
        ) + endpoint("other", rec.url_for("/other"), events='["d.*"]')
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            posted = await asyncio.gather(*(d.send("d.x", {"i": i}) for i in range(3)))
            for row in await d.settled(*(ids["bad"] for ids in posted)):
                assert row.status == "failed"

            async def disabled() -> bool:
                row = await d.store.endpoint("bad")
                return row is not None and not row.enabled

            await wait_for(disabled)

            async def shown() -> bool:  # /v1/status follows the store (on SQLite at once)
                state = await d.endpoint_status("bad")
                return (state["enabled"], state["consecutive_failures"]) == (False, 3)

            await wait_for(shown, timeout=backends.live_state_s())
            row = await d.store.endpoint("bad")
            assert row is not None
            assert (row.enabled, row.consecutive_failures) == (False, 3)
            assert "3 consecutive failed deliveries" in (row.disabled_reason or "")

            later = await d.send("d.y")
            assert "bad" not in later
            assert "other" in later
            fanned = await d.store.event_deliveries(later["event"])
            assert [r.endpoint for r in fanned] == ["other"]
            assert (await d.endpoint_status("other"))["enabled"] is True
    assert sum(1 for h in rec.requests if h.path == "/bad") == 3


async def test_one_success_resets_the_failure_counter(tmp_path: Path) -> None:
    """fail, fail, succeed (one delivery each): the counter goes 1, 2, then back to 0."""
    policies = "  brittle: {delays: [], disable_after: 3}\n"
    answers = [500, 500, 200]
    async with receiver(decide=lambda hit, n: answers.pop(0)) as rec:
        endpoints = endpoint("flaky", rec.url, policy="brittle")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            seen = []
            for _ in range(3):
                ids = await d.send("x")
                await d.settled(ids["flaky"])
                seen.append((await d.endpoint_status("flaky"))["consecutive_failures"])
            row = await d.store.endpoint("flaky")
    assert seen == [1, 2, 0]
    assert row is not None
    assert (row.enabled, row.consecutive_failures) == (True, 0)


# --------------------------------------------------------------------------- signing on the wire


async def test_standard_webhooks_deliveries_verify_and_retries_keep_the_id(
    tmp_path: Path,
) -> None:
    """Each attempt verifies with `standardwebhooks`; a retry has the same id, and each attempt
    is stamped with its own start time (a new timestamp, not the first one's)."""
    secret = generate_standard_secret()
    policies = "  once-more: {delays: [1100ms], jitter: none}\n"
    async with receiver(decide=fail_first(1)) as rec:
        endpoints = endpoint("sw", rec.url, policy="once-more", signing=f'{{secret: "{secret}"}}')
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            ids = await d.send("invoice.paid", {"amount": 12, "note": "café ✓"})
            [row] = await d.settled(ids["sw"])
            tries = await d.attempts(ids["sw"])
    assert row.status == "succeeded"
    first, second = rec.requests
    verifier = Webhook(secret)
    for hit, attempt in zip((first, second), tries, strict=True):
        payload = verifier.verify(hit.body, hit.headers)
        assert payload["type"] == "invoice.paid"
        assert payload["data"] == {"amount": 12, "note": "café ✓"}
        assert int(hit.headers["webhook-timestamp"]) == int(attempt.started_at)
    assert first.webhook_id == second.webhook_id == ids["event"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.body == second.body  # the event body is stable across retries


async def test_rsa_deliveries_verify_with_the_public_key(tmp_path: Path) -> None:
    """rsa-sha256: x-wh-signature is PKCS#1 v1.5 SHA-256 over exactly the bytes received."""
    private_pem, public_pem = generate_rsa()
    key_file = tmp_path / "taskee.pem"
    key_file.write_bytes(private_pem)
    async with receiver() as rec:
        endpoints = endpoint(
            "tk",
            rec.url,
            body="taskee",
            signing=f'{{scheme: rsa-sha256, private_key_file: "{key_file}"}}',
        )
        async with running_daemon(tmp_path, config(endpoints)) as d:
            ids = await d.send("ContactCreate", {"name": "Zoë"})
            await d.settled(ids["tk"])
    [hit] = rec.requests
    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(public, rsa.RSAPublicKey)
    signature = base64.b64decode(hit.headers["x-wh-signature"])
    public.verify(signature, hit.body, padding.PKCS1v15(), hashes.SHA256())
    assert b'"webhookId"' in hit.body
    assert "Zoë".encode() in hit.body
