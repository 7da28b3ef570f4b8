"""Run every benchmark in one go (about 8 minutes; ``--quick``: about 4).

    python -m bench [--quick] [--only ingest,delivery,scale,signing] [--postgres] [--no-doc]
    python bench/run_all.py …   (the same)

Each benchmark prints its tables, saves ``bench/results/NAME.json`` and, on a full run,
rewrites its section of docs/benchmarks.md. A benchmark that fails is reported and the others
still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # after the path set-up above, for `python bench/run_all.py`

NAMES = ("ingest", "delivery", "scale", "signing", "stats")
EXTRA = ("postgres",)  # only when asked for: --postgres, or --only postgres (needs a server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N everywhere")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated subset")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also 1, 2 and 4 processes on PostgreSQL next to SQLite (bench.postgres)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if args.postgres and "postgres" not in names:
        names.append("postgres")
    known = NAMES + EXTRA
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(known)})")
    failed: list[str] = []
    summary: list[str] = []
    started = time.monotonic()
    for name in names:
        module = __import__(f"bench.{name}", fromlist=["run"])
        bench_args = argparse.Namespace(
            quick=args.quick,
            no_doc=args.no_doc,
            rounds=0,
            duration=0.0,
            events=0,
            rows=0,
            soon=0,
            backlog=0,
            dsn=None,
        )
        print(f"\n### {name}", flush=True)
        try:
            report = module.run(bench_args)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        common.finish(report, write_doc=not args.no_doc)
        for check in report.checks:
            mark = "met   " if check.met else "MISSED"
            summary.append(
                f"  {mark} {name}: {check.name}: {common.fmt(check.figure)}{check.unit} "
                f"({check.op} {common.fmt(check.limit)}{check.unit}, {check.margin()})"
            )
    print(f"\n### summary ({time.monotonic() - started:.0f} s)")
    print("\n".join(summary))
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
