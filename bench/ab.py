"""A/B: the ingest of two hookd source trees, interleaved on this machine in one run.

    python -m bench.ab --a /work/main --b /tmp/hookd-fix [--mode batch] [--concurrency 8]
        [--rounds 5] [--duration 3]

Both daemons run the primary configuration of :mod:`bench.ingest` (fan-out to one parked
endpoint, ``synchronous: full``) side by side; the load generator alternates between them
(A B B A A B …) so that a noisy neighbour hurts both alike. Prints each round and the median
ratio B / A. For trying a fix on a scratch copy before proposing it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import common
from bench.ingest import TOKEN, start_parked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="source tree A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="source tree B (the change)")
    parser.add_argument("--mode", choices=["single", "batch"], default="batch")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    with common.workspace("ab") as tmp:
        hole_port = common.free_port()
        hole = common.start_server(tmp, "blackhole", port=hole_port)
        common.wait_listening(hole, hole_port)
        a = start_parked(tmp, "a", hole_port, src=args.a.resolve())
        b = start_parked(tmp, "b", hole_port, src=args.b.resolve())
        with common.running(a, b, hole):
            common.wait_ready(a)
            common.wait_ready(b)
            got: dict[str, list[float]] = {"a": [], "b": []}
            for r in range(args.rounds):
                order = [("a", a), ("b", b)] if r % 2 == 0 else [("b", b), ("a", a)]
                for key, proc in order:
                    common.wait_idle(a)
                    common.wait_idle(b)
                    res: dict[str, Any] = common.loadgen(
                        "ingest",
                        "--url",
                        proc.url,
                        "--token",
                        TOKEN,
                        "--mode",
                        args.mode,
                        "--concurrency",
                        str(args.concurrency),
                        "--duration",
                        str(args.duration),
                        timeout=args.duration + 120,
                    )
                    got[key].append(res["events_per_s"])
                    print(
                        f"round {r + 1} {key}: {res['events_per_s']:>10,.0f} events/s", flush=True
                    )
    med_a, med_b = common.median(got["a"]), common.median(got["b"])
    print(
        f"median A {med_a:,.0f}  B {med_b:,.0f}  B/A {common.ratio(med_b, med_a):.2f} "
        f"({args.mode}, c={args.concurrency}, {args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
