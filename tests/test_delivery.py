"""The delivery engine end to end: real daemon, real SQLite file, real receivers on 127.0.0.1.

Policies here mirror the presets with delays of a tenth of a second, so whole schedules run in
about a second. Outcomes are read from the database file (read-only) as the daemon wrote them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from standardwebhooks.webhooks import Webhook

from hookd.signing import generate_rsa, generate_standard_secret
from tests.support import Daemon, free_port, running_daemon, wait_for

# --------------------------------------------------------------------------- test kit

Answer = int | tuple[int, dict[str, str]]


@dataclass
class Hit:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Lab:
    """A receiver on 127.0.0.1 that records every request and answers through ``decide``.

    ``decide(hit, n)`` gets the request and how many times its ``webhook-id`` has arrived so far
    (1 on the first), and returns a status code or ``(status, headers)``. ``active``/``peak``
    count requests being handled at once.
    """

    def __init__(
        self, decide: Callable[[Hit, int], Answer] | None = None, *, delay: float = 0.0
    ) -> None:
        self.decide: Callable[[Hit, int], Answer] = decide or (lambda hit, n: 200)
        self.delay = delay
        self.hits: list[Hit] = []
        self.active = 0
        self.peak = 0
        self.base = ""

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def of(self, webhook_id: str) -> list[Hit]:
        return [h for h in self.hits if h.headers.get("webhook-id") == webhook_id]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hit = Hit(request.path, dict(request.headers), body, time.time())
        self.hits.append(hit)
        n = len(self.of(hit.headers.get("webhook-id", ""))) if "webhook-id" in hit.headers else 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.decide(hit, n)
        finally:
            self.active -= 1
        if isinstance(answer, tuple):
            return web.Response(status=answer[0], headers=answer[1], text="answer")
        return web.Response(status=answer, text=f"status {answer}")


@contextlib.asynccontextmanager
async def lab(
    decide: Callable[[Hit, int], Answer] | None = None, *, delay: float = 0.0
) -> AsyncIterator[Lab]:
    rec = Lab(decide, delay=delay)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield rec
    finally:
        await runner.cleanup()


def fail_first(times: int, status: int = 500) -> Callable[[Hit, int], Answer]:
    """Answer ``status`` to the first ``times`` arrivals of each webhook id, then 200."""
    return lambda hit, n: status if n <= times else 200


def query(db: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    """Rows from the daemon's database, opened read-only."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def delivery(db: Path, delivery_id: str) -> sqlite3.Row:
    return query(db, "SELECT * FROM deliveries WHERE id = ?", delivery_id)[0]


def attempts(db: Path, delivery_id: str) -> list[sqlite3.Row]:
    return query(db, "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY n", delivery_id)


async def settled(db: Path, delivery_id: str, within: float = 10) -> sqlite3.Row:
    """Wait until a delivery is no longer pending; its row."""

    def done() -> sqlite3.Row | None:
        row = delivery(db, delivery_id)
        return row if row["status"] != "pending" else None

    row: sqlite3.Row = await wait_for(done, timeout=within, interval=0.02)
    return row


async def post(d: Daemon, type_: str, data: Any = None) -> dict[str, str]:
    """Post one event; its id and ``{endpoint: delivery id}``."""
    status, body = await d.post_event(type_, data if data is not None else {"n": 1})
    assert status == 202, body
    return {"event": body["id"], **{x["endpoint"]: x["id"] for x in body["deliveries"]}}


def gaps(hits: list[Hit]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(hits)]


def config(endpoints: str, *, policies: str = "", delivery: str = "", private: bool = True) -> str:
    """A daemon config on loopback (private networks allowed: receivers live on 127.0.0.1).

    The result goes through ``str.format`` in ``running_daemon``, so YAML braces are doubled.
    """

    def esc(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    text = "listen: 127.0.0.1:{port}\nstorage: {{path: {db}}}\n"
    text += esc(f"delivery: {{allow_private_networks: {str(private).lower()}{delivery}}}\n")
    if policies:
        text += "policies:\n" + esc(policies)
    return text + "endpoints:\n" + esc(endpoints)


SECRET = generate_standard_secret()


def endpoint(endpoint_id: str, url: str, **fields: str) -> str:
    """One endpoint as a flow-style YAML list item, signed with SECRET unless told otherwise."""
    parts = [f"id: {endpoint_id}", f'url: "{url}"', *(f"{k}: {v}" for k, v in fields.items())]
    if "signing" not in fields:
        parts.append(f'signing: {{secret: "{SECRET}"}}')
    return "  - {" + ", ".join(parts) + "}\n"


# Presets with their retry_on / timeout / disable_after, delays shortened, jitter off.
PRESET_POLICIES = """\
  taskview: {delays: [100ms, 200ms], jitter: none}
  taskee: {delays: [100ms, 100ms, 100ms, 100ms, 100ms, 100ms], jitter: none}
  standard: {delays: [100ms, 150ms, 200ms, 250ms, 300ms], jitter: none}
"""


# --------------------------------------------------------------------------- schedules


async def test_each_preset_schedule_runs_its_attempts_at_its_gaps(tmp_path: Path) -> None:
    """taskview: 3 attempts then failed; taskee: 7 attempts on 429; standard: retries to success."""
    async with (
        lab(lambda hit, n: 500) as tv,
        lab(lambda hit, n: 429) as tk,
        lab(fail_first(3, 503)) as st,
    ):
        endpoints = (
            endpoint("tv", tv.url(), policy="taskview")
            + endpoint("tk", tk.url(), policy="taskee")
            + endpoint("st", st.url(), policy="standard")
        )
        async with running_daemon(tmp_path, config(endpoints, policies=PRESET_POLICIES)) as d:
            db = tmp_path / "hookd.db"
            ids = await post(d, "task.updated")
            rows = {ep: await settled(db, ids[ep]) for ep in ("tv", "tk", "st")}

    assert (rows["tv"]["status"], rows["tv"]["attempt_count"]) == ("failed", 3)
    assert (rows["tk"]["status"], rows["tk"]["attempt_count"]) == ("failed", 7)
    assert (rows["st"]["status"], rows["st"]["attempt_count"]) == ("succeeded", 4)
    assert rows["tk"]["last_status_code"] == 429
    schedules = {"tv": [0.1, 0.2], "tk": [0.1] * 6, "st": [0.1, 0.15, 0.2]}
    for rec, ep in ((tv, "tv"), (tk, "tk"), (st, "st")):
        assert {h.webhook_id for h in rec.hits} == {ids["event"]}
        observed = gaps(rec.hits)
        assert len(observed) == len(schedules[ep])
        for seen, wanted in zip(observed, schedules[ep], strict=True):
            assert wanted <= seen < wanted + 0.5, (ep, observed)
    assert [a["status_code"] for a in attempts(db, ids["tv"])] == [500, 500, 500]
    assert [a["n"] for a in attempts(db, ids["tk"])] == [1, 2, 3, 4, 5, 6, 7]


async def test_only_listed_codes_are_retried(tmp_path: Path) -> None:
    """A 500 to a 429-only (taskee) policy fails at once; the same 500 is retried by taskview."""
    async with lab(lambda hit, n: 500) as rec:
        endpoints = endpoint("tk", rec.url("/tk"), policy="taskee") + endpoint(
            "tv", rec.url("/tv"), policy="taskview"
        )
        async with running_daemon(tmp_path, config(endpoints, policies=PRESET_POLICIES)) as d:
            db = tmp_path / "hookd.db"
            ids = await post(d, "contact.create")
            taskee, taskview = await settled(db, ids["tk"]), await settled(db, ids["tv"])
    assert (taskee["status"], taskee["attempt_count"], taskee["last_status_code"]) == (
        "failed",
        1,
        500,
    )
    assert taskee["next_attempt_at"] is None
    assert (taskview["status"], taskview["attempt_count"]) == ("failed", 3)
    assert sum(1 for h in rec.hits if h.path == "/tk") == 1


async def test_a_slow_receiver_times_out_and_is_retried(tmp_path: Path) -> None:
    """No response within the policy timeout: attempt error 'timeout', retried, then failed."""
    policies = "  slow: {timeout: 200ms, delays: [100ms], jitter: none}\n"
    async with lab(delay=0.6) as rec:
        endpoints = endpoint("slow", rec.url(), policy="slow")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            db = tmp_path / "hookd.db"
            ids = await post(d, "a.b")
            row = await settled(db, ids["slow"])
            tries = attempts(db, ids["slow"])
    assert (row["status"], row["attempt_count"]) == ("failed", 2)
    for attempt in tries:
        assert attempt["status_code"] is None
        assert attempt["error"].startswith("timeout"), attempt["error"]
        assert 150 <= attempt["latency_ms"] < 550
    assert len(rec.hits) == 2


async def test_a_closed_port_is_a_network_error_and_is_retried(tmp_path: Path) -> None:
    """Connection refused: attempt error 'network', retried per policy, then failed."""
    policies = "  quick: {delays: [100ms, 100ms], jitter: none}\n"
    endpoints = endpoint("gone", f"http://127.0.0.1:{free_port()}/hook", policy="quick")
    async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
        db = tmp_path / "hookd.db"
        ids = await post(d, "a.b")
        row = await settled(db, ids["gone"])
        tries = attempts(db, ids["gone"])
    assert (row["status"], row["attempt_count"]) == ("failed", 3)
    assert all(a["error"].startswith("network: ") for a in tries), [a["error"] for a in tries]
    assert "Cannot connect" in tries[0]["error"]
    assert row["last_error"] == tries[-1]["error"]


# --------------------------------------------------------------------------- Retry-After


async def test_retry_after_outweighs_a_shorter_policy_delay(tmp_path: Path) -> None:
    """429 + Retry-After: 1 with a 100ms policy delay: the retry comes at least 1s later."""
    policies = "  quick: {retry_on: [429], delays: [100ms, 100ms], jitter: none}\n"
    async with lab(lambda hit, n: (429, {"Retry-After": "1"}) if n == 1 else 200) as rec:
        endpoints = endpoint("ep", rec.url(), policy="quick")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            db = tmp_path / "hookd.db"
            ids = await post(d, "a.b")
            row = await settled(db, ids["ep"])
    assert (row["status"], row["attempt_count"]) == ("succeeded", 2)
    [gap] = gaps(rec.hits)
    assert 1.0 <= gap < 1.6


async def test_retry_after_is_capped_by_retry_after_max(tmp_path: Path) -> None:
    """Retry-After: 3600 with retry_after_max 300ms: the retry comes after ~300ms, not an hour."""
    policies = "  quick: {retry_on: [429], delays: [100ms], jitter: none, retry_after_max: 300ms}\n"
    async with lab(lambda hit, n: (429, {"Retry-After": "3600"}) if n == 1 else 200) as rec:
        endpoints = endpoint("ep", rec.url(), policy="quick")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            db = tmp_path / "hookd.db"
            ids = await post(d, "a.b")
            row = await settled(db, ids["ep"])
    assert (row["status"], row["attempt_count"]) == ("succeeded", 2)
    [gap] = gaps(rec.hits)
    assert 0.3 <= gap < 0.8


async def test_retry_after_holds_back_the_whole_endpoint(tmp_path: Path) -> None:
    """After a 429 with Retry-After: 1, another delivery to that endpoint waits out the pause."""
    policies = "  quick: {retry_on: [429], delays: [100ms], jitter: none}\n"
    first: list[str] = []

    def decide(hit: Hit, n: int) -> Answer:
        if not first:
            first.append(hit.webhook_id)
            return (429, {"Retry-After": "1"})
        return 200

    async with lab(decide) as rec:
        endpoints = endpoint("ep", rec.url(), policy="quick")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            db = tmp_path / "hookd.db"
            a = await post(d, "a.b")
            await wait_for(lambda: delivery(db, a["ep"])["attempt_count"] == 1)
            b = await post(d, "a.b")
            await settled(db, a["ep"])
            await settled(db, b["ep"])
    paused_at = rec.of(a["event"])[0].at
    [b_hit] = rec.of(b["event"])
    assert b_hit.at - paused_at >= 1.0
    assert b_hit.at - paused_at < 1.6


# --------------------------------------------------------------------------- auto-disable


async def status_of(d: Daemon, endpoint: str) -> dict[str, Any]:
    code, body = await d.request("GET", "/v1/status")
    assert code == 200, body
    [entry] = [e for e in body["endpoints"] if e["id"] == endpoint]
    result: dict[str, Any] = entry
    return result


async def test_consecutive_failed_deliveries_disable_the_endpoint(tmp_path: Path) -> None:
    """disable_after: 3 and three failed deliveries (at once): disabled; new events skip it."""
    policies = "  brittle: {delays: [], disable_after: 3}\n"
    async with lab(lambda hit, n: 500) as rec:
        endpoints = endpoint("bad", rec.url("/bad"), policy="brittle", events='["d.*"]') + endpoint(
            "other", rec.url("/other"), events='["d.*"]'
        )
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            db = tmp_path / "hookd.db"
            posted = await asyncio.gather(*(post(d, "d.x", {"i": i}) for i in range(3)))
            for ids in posted:
                assert (await settled(db, ids["bad"]))["status"] == "failed"
            await wait_for(
                lambda: not query(db, "SELECT enabled FROM endpoints WHERE id='bad'")[0][0]
            )
            state = await status_of(d, "bad")
            assert (state["enabled"], state["consecutive_failures"]) == (False, 3)
            [row] = query(db, "SELECT * FROM endpoints WHERE id = 'bad'")
            assert (row["enabled"], row["consecutive_failures"]) == (0, 3)
            assert "3 consecutive failed deliveries" in row["disabled_reason"]

            later = await post(d, "d.y")
            assert "bad" not in later
            assert "other" in later
            fanned = query(
                db, "SELECT endpoint_id FROM deliveries WHERE event_id = ?", later["event"]
            )
            assert [r[0] for r in fanned] == ["other"]
            assert (await status_of(d, "other"))["enabled"] is True
    assert sum(1 for h in rec.hits if h.path == "/bad") == 3


async def test_one_success_resets_the_failure_counter(tmp_path: Path) -> None:
    """fail, fail, succeed (one delivery each): the counter goes 1, 2, then back to 0."""
    policies = "  brittle: {delays: [], disable_after: 3}\n"
    answers = [500, 500, 200]
    async with lab(lambda hit, n: answers.pop(0)) as rec:
        endpoints = endpoint("flaky", rec.url(), policy="brittle")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            db = tmp_path / "hookd.db"
            seen = []
            for _ in range(3):
                ids = await post(d, "x")
                await settled(db, ids["flaky"])
                seen.append((await status_of(d, "flaky"))["consecutive_failures"])
            [row] = query(db, "SELECT * FROM endpoints WHERE id = 'flaky'")
    assert seen == [1, 2, 0]
    assert (row["enabled"], row["consecutive_failures"]) == (1, 0)


# --------------------------------------------------------------------------- signing on the wire


async def test_standard_webhooks_deliveries_verify_and_retries_keep_the_id(
    tmp_path: Path,
) -> None:
    """Each attempt verifies with `standardwebhooks`; a retry has the same id, a new timestamp."""
    secret = generate_standard_secret()
    policies = "  once-more: {delays: [1100ms], jitter: none}\n"
    async with lab(fail_first(1)) as rec:
        endpoints = endpoint("sw", rec.url(), policy="once-more", signing=f'{{secret: "{secret}"}}')
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            ids = await post(d, "invoice.paid", {"amount": 12, "note": "café ✓"})
            row = await settled(tmp_path / "hookd.db", ids["sw"])
    assert row["status"] == "succeeded"
    first, second = rec.hits
    verifier = Webhook(secret)
    for hit in (first, second):
        payload = verifier.verify(hit.body, hit.headers)
        assert payload["type"] == "invoice.paid"
        assert payload["data"] == {"amount": 12, "note": "café ✓"}
        assert abs(int(hit.headers["webhook-timestamp"]) - hit.at) < 2
    assert first.webhook_id == second.webhook_id == ids["event"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.body == second.body  # the event body is stable across retries


async def test_rsa_deliveries_verify_with_the_public_key(tmp_path: Path) -> None:
    """rsa-sha256: x-wh-signature is PKCS#1 v1.5 SHA-256 over exactly the bytes received."""
    private_pem, public_pem = generate_rsa()
    key_file = tmp_path / "taskee.pem"
    key_file.write_bytes(private_pem)
    async with lab() as rec:
        endpoints = endpoint(
            "tk",
            rec.url(),
            body="taskee",
            signing=f'{{scheme: rsa-sha256, private_key_file: "{key_file}"}}',
        )
        async with running_daemon(tmp_path, config(endpoints)) as d:
            ids = await post(d, "ContactCreate", {"name": "Zoë"})
            await settled(tmp_path / "hookd.db", ids["tk"])
    [hit] = rec.hits
    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(public, rsa.RSAPublicKey)
    signature = base64.b64decode(hit.headers["x-wh-signature"])
    public.verify(signature, hit.body, padding.PKCS1v15(), hashes.SHA256())
    assert b'"webhookId"' in hit.body
    assert "Zoë".encode() in hit.body
