"""Signing: the cost of each scheme per delivery, and delivery throughput RSA vs HMAC.

    python -m bench.signing [--quick] [--events N]

Part 1, in this process: each built-in signer (made by hookd's own factories, as the daemon
makes them) signs a ``standard``-format body of ~400 bytes; the figure is the median over
batches of the time per ``sign()`` call, in µs, and the ratio to ``hmac-sha256``. RSA is
measured uncached (a cache that keeps nothing: what a first attempt costs) and cached (the same
body again: what a retry costs). Because RSA is ``blocking``, the dispatcher calls it through
``asyncio.to_thread``; that round trip is measured too.

Part 2, real processes: delivery throughput (the method of :mod:`bench.delivery`: sink window
rate, fresh hookd per run, every event distinct so every RSA signature is computed) to one
``rsa-sha256`` endpoint and to one ``hmac-sha256`` endpoint, alternating H R R H.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from bench import common
from bench.common import Report
from bench.delivery import hookd_throughput

HMAC_SECRET = "bench-hmac-secret"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _body(i: int) -> bytes:
    data = {
        "i": i,
        "customer": f"cus_{i:010d}",
        "amount": 1999,
        "note": "lorem ipsum dolor sit amet " * 10,
    }
    return json.dumps(
        {"type": "invoice.paid", "timestamp": "2026-01-01T00:00:00.000Z", "data": data},
        separators=(",", ":"),
    ).encode()


def time_calls(fn: Callable[[int], object], *, calls: int, batch: int = 20) -> float:
    """Median µs per call over batches of ``batch`` calls (after a short warm-up)."""
    for i in range(min(50, calls)):
        fn(i)
    per_call = []
    i = 0
    for _ in range(max(1, calls // batch)):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn(i)
            i += 1
        per_call.append((time.perf_counter_ns() - start) / batch / 1000)
    return common.median(per_call)


def signer_costs(calls: int) -> list[tuple[str, float]]:
    from hookd import signing
    from hookd.registry import Message, SignerConfig, SigningKey

    private_pem, _ = signing.generate_rsa(2048)
    whsk, _ = signing.generate_ed25519()

    def make(scheme: str, material: str) -> Any:
        config = SignerConfig(scheme=scheme, keys=(SigningKey(material=material),))
        factory = {
            signing.HMAC_SHA256: signing.hmac_sha256_factory,
            signing.STANDARD_WEBHOOKS: signing.standard_webhooks_factory,
            signing.RSA_SHA256: signing.rsa_sha256_factory,
        }[scheme]
        return factory(config)

    slow_calls = max(200, calls // 10)
    # distinct bodies: more than the slow measurements use, so an RSA signer never sees a
    # body twice (uncached); the first 256 are then signed again (cached)
    messages = [
        Message(event_id=f"evt_{i}", delivery_id=f"dlv_{i}", timestamp=1767225600, body=_body(i))
        for i in range(3 * slow_calls + 200)
    ]
    now = time.time()
    rsa = make(signing.RSA_SHA256, private_pem.decode())
    cached = messages[:256]
    for m in cached:
        rsa.sign(m, now)
    fresh = iter(messages[256:])
    hmac_signer = make(signing.HMAC_SHA256, HMAC_SECRET)
    v1 = make(signing.STANDARD_WEBHOOKS, WHSEC)
    v1a = make(signing.STANDARD_WEBHOOKS, whsk)
    cases: list[tuple[str, Callable[[int], object], int]] = [
        ("hmac-sha256", lambda i: hmac_signer.sign(cached[i % 256], now), calls),
        ("standard-webhooks v1 (HMAC)", lambda i: v1.sign(cached[i % 256], now), calls),
        ("standard-webhooks v1a (ed25519)", lambda i: v1a.sign(cached[i % 256], now), slow_calls),
        ("rsa-sha256 2048, uncached", lambda i: rsa.sign(next(fresh), now), slow_calls),
        ("rsa-sha256 2048, cached", lambda i: rsa.sign(cached[i % 256], now), calls),
    ]
    out = [(label, time_calls(fn, calls=n)) for label, fn, n in cases]

    async def threaded() -> float:
        async def one(i: int) -> None:
            await asyncio.to_thread(rsa.sign, next(fresh), now)

        for i in range(20):
            await one(i)
        samples = []
        for i in range(slow_calls):
            start = time.perf_counter_ns()
            await one(i)
            samples.append((time.perf_counter_ns() - start) / 1000)
        return common.median(samples)

    out.append(("rsa-sha256 uncached, via asyncio.to_thread", common.uvloop_run(threaded())))
    return out


def run(args: argparse.Namespace) -> Report:
    report = Report("signing", quick=args.quick)
    calls = 2_000 if args.quick else 20_000
    costs = signer_costs(calls)
    base = costs[0][1]
    t = report.table(
        "Signing cost per delivery (median µs per sign() call, ~400 B body); ratio = / hmac-sha256",
        ["scheme", "µs", "ratio", "signatures/s on one core"],
    )
    for label, us in costs:
        t.add(label, us, f"{us / base:.1f}", 1e6 / us)
    for label, us in costs:
        print(f"  {label:<45} {us:>9.1f} µs", flush=True)

    deliveries = args.events or (2_000 if args.quick else 8_000)
    order = ["hmac", "rsa"] if args.quick else ["hmac", "rsa", "rsa", "hmac"]
    got: dict[str, list[float]] = {"hmac": [], "rsa": []}
    cpu: dict[str, list[float]] = {"hmac": [], "rsa": []}
    with common.workspace("signing") as tmp:
        from hookd import signing

        private_pem, _ = signing.generate_rsa(2048)
        key_file = tmp / "rsa.pem"
        key_file.write_bytes(private_pem)
        schemes = {
            "hmac": f"{{scheme: hmac-sha256, secret: {HMAC_SECRET}}}",
            "rsa": f"{{scheme: rsa-sha256, private_key_file: {key_file}}}",
        }
        sink = common.start_server(tmp, "sink", port=common.free_port())
        with common.running(sink):
            common.wait_ready(sink)
            for k, scheme in enumerate(order):
                res = hookd_throughput(
                    tmp,
                    sink,
                    name=f"{scheme}-{k}",
                    endpoints=1,
                    deliveries=deliveries,
                    signing=schemes[scheme],
                )
                got[scheme].append(res.per_s)
                cpu[scheme].append(res.cpu_ms_per)
                print(f"  {scheme}: {res.per_s:,.0f} deliveries/s", flush=True)
    hmac_rate = common.median(got["hmac"])
    rsa_rate = common.median(got["rsa"])
    d = report.table(
        f"Delivery throughput to one endpoint, {deliveries:,} deliveries per run "
        f"(runs in order {' '.join(s.upper()[0] for s in order)})",
        ["scheme", "deliveries/s (runs)", "median", "ratio", "hookd CPU ms/delivery"],
    )
    d.add(
        "hmac-sha256",
        ", ".join(f"{x:,.0f}" for x in got["hmac"]),
        hmac_rate,
        "1.00",
        common.median(cpu["hmac"]),
    )
    d.add(
        "rsa-sha256 (2048-bit, uncached)",
        ", ".join(f"{x:,.0f}" for x in got["rsa"]),
        rsa_rate,
        f"{common.ratio(rsa_rate, hmac_rate):.2f}",
        common.median(cpu["rsa"]),
    )
    report.check(
        "delivery throughput, RSA / HMAC", common.ratio(rsa_rate, hmac_rate), ">=", 0.7, "x"
    )
    report.notes.append(
        "part 1 runs in the bench process (no daemon); part 2 uses fresh hookd processes "
        "(synchronous: full, concurrency 256) and the bench.servers sink"
    )
    return report


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=0, help="deliveries per run (8,000)")
    args = parser.parse_args()
    report = run(args)
    common.finish(report, write_doc=not args.no_doc)


if __name__ == "__main__":
    main()
