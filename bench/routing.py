"""What routing costs at ingest: tenants, payload filters and schemas, each against the same
configuration without them, in the same run.

    python -m bench.routing [--quick] [--rounds N] [--duration S]

Every daemon's endpoints point at a local blackhole (deliveries park, as in :mod:`bench.ingest`),
so the figures are ingest alone: validate, route, commit. Pairs (B against A):

``tenants``
    A: 5 untenanted endpoints, untenanted events. B: 1,000 tenants x 5 endpoints (5,000
    endpoints), each event carrying one of the 1,000 tenants. Both fan out to 5 deliveries per
    event; B must find its 5 among 5,000 (SPEC §8 routing is indexed by tenant). Target: B
    keeps >= 90 % of A.
``filters``
    A: 100 endpoints subscribed to everything. B: the same 100, each with a 5-condition payload
    filter that the events match (so both make 100 deliveries per event and only the filters'
    cost differs). The 100 filters are alike: endpoints holding one filter share its matcher and
    routing decides it once per event.
``schema``
    A: events of a type without a schema. B: the type has a 30-field JSON Schema that every
    event (30 extra fields in its data) matches; A's events carry the same 30 fields.
``filters + schema``
    B with both against A with neither; here no two of the 100 filters are alike (each its own
    threshold), so every one is evaluated for every event. Target: >= 80 % (the issue's figure:
    filters and schemas together).

Batches of 100 events at concurrency 4, and single events at concurrency 16. Every daemon makes
at most 5 attempts at once (``delivery.concurrency: 5``; they hang on the blackhole), so A and B
do the same delivery work whatever their number of endpoints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Proc, Report

TOKEN = "bench-routing-token"
TENANTS = 1000
PER_TENANT = 5
FILTERED = 100
FIELDS = 30

HEAD = """\
listen: 127.0.0.1:PORT
shutdown_timeout: 1s
storage: {path: DATABASE, synchronous: full}
auth: {ingest_tokens: [TOKEN], admin_tokens: [bench-admin-token]}
delivery: {allow_private_networks: true, concurrency: 5}
log: {level: warning, format: json}
limits: {max_pending: 100000000, max_endpoints_per_tenant: 100}
policies:
  parked: {delays: [1h], timeout: 1h}
"""
ENDPOINT = (
    "  - {{id: {id}, url: 'http://127.0.0.1:{hole}/hook', policy: parked, max_in_flight: 1,"
    " signing: {{scheme: hmac-sha256, secret: bench-secret}}{more}}}\n"
)
FILTER = (
    ", filter: {data.amount: {$gte: 0}, data.customer: {$regex: '^cus_'},"
    " data.i: {$exist: true}, data.note: {$neq: nothing}, data.f1: {$in: [1, 2, 3]}}"
)


def _schema() -> str:
    props = []
    for n in range(FIELDS):
        kind = (
            "{type: string, maxLength: 64}"
            if n % 3 == 0
            else (
                "{type: integer, minimum: 0}"
                if n % 3 == 1
                else "{type: array, items: {type: string}}"
            )
        )
        props.append(f"f{n}: {kind}")
    required = ", ".join(f"f{n}" for n in range(FIELDS))
    return (
        "event_types:\n  types:\n    bench.checked:\n      schema: {type: object, required: ["
        + required
        + "], properties: {"
        + ", ".join(props)
        + "}}\n"
    )


def _config(endpoints: list[str], *, schema: bool) -> str:
    text = HEAD + "endpoints:\n" + "".join(endpoints)
    return text + (_schema() if schema else "")


def _endpoints(hole: int, count: int, more: str = "", tenant_of: Any = None) -> list[str]:
    out = []
    for n in range(count):
        extra = more
        if tenant_of is not None:
            extra += f", tenant: {tenant_of(n)}"
        out.append(ENDPOINT.format(id=f"ep{n}", hole=hole, more=extra))
    return out


# (pair, side): (config builder, loadgen args)
def _cases(hole: int) -> dict[tuple[str, str], tuple[str, list[str]]]:
    plain5 = _endpoints(hole, PER_TENANT)
    tenanted = _endpoints(hole, TENANTS * PER_TENANT, tenant_of=lambda n: f"t{n // PER_TENANT}")
    hundred = _endpoints(hole, FILTERED)
    filtered = _endpoints(hole, FILTERED, more=FILTER)
    distinct = [  # each endpoint's own threshold: no two filters alike
        ENDPOINT.format(id=f"ep{n}", hole=hole, more=FILTER.replace("$gte: 0", f"$gte: {-n}"))
        for n in range(FILTERED)
    ]
    fields = ["--fields", str(FIELDS)]
    return {
        ("tenants", "A"): (_config(plain5, schema=False), []),
        ("tenants", "B"): (_config(tenanted, schema=False), ["--tenants", str(TENANTS)]),
        ("filters", "A"): (_config(hundred, schema=False), fields),
        ("filters", "B"): (_config(filtered, schema=False), fields),
        ("schema", "A"): (_config(plain5, schema=True), [*fields, "--type", "bench.unchecked"]),
        ("schema", "B"): (_config(plain5, schema=True), [*fields, "--type", "bench.checked"]),
        ("filters + schema", "A"): (_config(hundred, schema=True), [*fields, "--type", "x.y"]),
        ("filters + schema", "B"): (
            _config(distinct, schema=True),
            [*fields, "--type", "bench.checked"],
        ),
    }


MODES = (("batch of 100, c=4", "batch", 4), ("single, c=16", "single", 16))


def _measure(proc: Proc, mode: str, concurrency: int, extra: list[str], seconds: float) -> float:
    result = common.loadgen(
        "ingest",
        "--url",
        proc.url,
        "--token",
        TOKEN,
        "--mode",
        mode,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(seconds),
        "--warmup",
        "0.5",
        "--max-events",
        "120000",
        *extra,
        timeout=seconds + 180,
    )
    if result["errors"]:
        raise RuntimeError(f"{proc.name}: errors {result['statuses']}")
    return float(result["events_per_s"])


def run(args: argparse.Namespace) -> Report:
    report = Report("routing", quick=args.quick)
    seconds = args.duration or (1.5 if args.quick else 3.0)
    rounds = args.rounds or (1 if args.quick else 3)
    with common.workspace("routing") as tmp:
        hole_port = common.free_port()
        hole = common.start_server(tmp, "blackhole", port=hole_port)
        common.wait_listening(hole, hole_port)
        cases = {k: v for k, v in _cases(hole_port).items() if not args.only or k[0] in args.only}
        procs = {key: _start(tmp, key, text) for key, (text, _) in cases.items()}
        with common.running(*procs.values(), hole):
            for proc in procs.values():
                common.wait_ready(proc, timeout=120)
            got: dict[tuple[str, str, str], list[float]] = {}
            for r in range(rounds):
                for label, mode, conc in MODES:
                    for pair in dict.fromkeys(p for p, _ in cases):
                        sides = ("A", "B") if r % 2 == 0 else ("B", "A")
                        for side in sides:
                            proc = procs[(pair, side)]
                            common.wait_idle(proc, timeout=120)
                            rate = _measure(proc, mode, conc, cases[(pair, side)][1], seconds)
                            got.setdefault((pair, side, label), []).append(rate)
                            print(f"  {label:<18} {pair:<17} {side} {rate:>10,.0f} events/s")
        _report(report, got, rounds, seconds)
    return report


def _start(tmp: Path, key: tuple[str, str], text: str) -> Proc:
    port = common.free_port()
    name = f"{key[0].replace(' + ', '-')}-{key[1]}"
    text = text.replace("PORT", str(port), 1).replace("DATABASE", str(tmp / f"{name}.db"), 1)
    return common.start_hookd(tmp, text.replace("TOKEN", TOKEN, 1), port=port, name=name)


def _report(
    report: Report, got: dict[tuple[str, str, str], list[float]], rounds: int, seconds: float
) -> None:
    table = report.table(
        "Ingest with routing work (B) against the same without (A), events/s, median of rounds",
        ["pair", "mode", "A", "B", "B / A"],
    )
    ratios: dict[tuple[str, str], float] = {}
    for (pair, side, label), _ in sorted(got.items()):
        if side != "A":
            continue
        a = common.median(got[(pair, "A", label)])
        b = common.median(got[(pair, "B", label)])
        ratios[(pair, label)] = common.ratio(b, a)
        table.add(pair, label, a, b, f"{ratios[(pair, label)]:.2f}")
    for label, _, _ in MODES:
        if ("tenants", label) not in ratios or ("filters + schema", label) not in ratios:
            continue
        report.check(
            f"1,000 tenants x 5 endpoints / none, {label}", ratios[("tenants", label)], ">=", 0.9
        )
        report.check(
            f"filters + 30-field schema / neither, {label}",
            ratios[("filters + schema", label)],
            ">=",
            0.8,
        )
    report.notes.append(
        f"{rounds} round(s) of {seconds:g} s per case (after 0.5 s warm-up), A and B alternating;"
        " every endpoint parked on a blackhole, so the figures are ingest alone"
    )


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=0, help="rounds (default 3)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds per measurement")
    parser.add_argument(
        "--only", type=lambda text: text.split(","), default=[], help="pairs, e.g. tenants,schema"
    )
    args = parser.parse_args()
    common.finish(run(args), write_doc=not args.no_doc)


if __name__ == "__main__":
    main()
