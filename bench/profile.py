"""Where hookd's CPU goes: py-spy on a real daemon under one workload, per thread.

    python -m bench.profile delivery [--events 6000] [--src DIR] [--rate 250]
    python -m bench.profile batch [--duration 6] [--src DIR]
    python -m bench.profile single [--duration 6] [--src DIR]

``delivery``: one endpoint (standard-webhooks) on the ``bench.servers sink``; ``--events``
are ingested in batches of 100 and delivered, and the profile covers ingest, attempt and
record alike. ``batch``: batches of 100 at concurrency 8 to the parked endpoint of
``bench.ingest`` (no HTTP delivery competes). py-spy samples the daemon's threads (``--threads
--native`` off, 250 Hz) for the whole workload; the results go to ``bench/results/profile/``:
``NAME.svg`` (a flame graph, threads side by side), ``NAME.txt`` (the collapsed stacks) and
``NAME.json`` (CPU per thread from ``/proc/PID/task/*/stat`` over the workload, and the top
functions by self and total samples per thread, which this command also prints).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import time
import zlib
from html import escape
from pathlib import Path
from typing import Any

from bench import common
from bench.delivery import TOKEN as DELIVERY_TOKEN
from bench.delivery import hookd_yaml, reset_sink, wait_count
from bench.ingest import TOKEN as INGEST_TOKEN
from bench.ingest import start_parked

OUT = common.RESULTS / "profile"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of ``pid``, by thread name (``main`` = event loop)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = collections.defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        key = "main" if task.name == str(pid) else name
        out[key] += (int(fields[11]) + int(fields[12])) / ticks
    return dict(out)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 3) for k in after}


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(common.PYTHON).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


def record(pid: int, name: str, seconds: float) -> subprocess.Popen[bytes]:
    OUT.mkdir(parents=True, exist_ok=True)
    argv = [py_spy(), "record", "--pid", str(pid), "--threads", "--rate", "250", "--nonblocking"]
    argv += ["--duration", str(int(seconds)), "--format", "raw", "-o", str(OUT / f"{name}.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Top functions by self and total samples, per thread (collapsed stacks)."""
    self_: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    samples: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0]
        thread = "main" if "MainThread" in thread or "main" in thread.lower() else thread
        n = int(count)
        samples[thread] += n
        funcs = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in frames[1:]]
        if funcs:
            self_[thread][funcs[-1]] += n
        for f in set(funcs):
            total[thread][f] += n
    return {
        t: {
            "samples": samples[t],
            "self": [(f, round(c / samples[t], 3)) for f, c in self_[t].most_common(top)],
            "total": [(f, round(c / samples[t], 3)) for f, c in total[t].most_common(top)],
        }
        for t in samples
    }


def flame(path: Path, width: int = 1600, row: int = 16) -> Path:
    """An SVG flame graph of the collapsed stacks in ``path`` (one tower per thread, widths
    proportional to samples; hover a frame for its name and share). Written next to it."""
    root: dict[str, Any] = {"n": 0, "kids": {}}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        node = root
        node["n"] += int(count)
        for frame in stack.split(";"):
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += int(count)
    rects: list[str] = []
    depth_max = 0

    def draw(node: dict[str, Any], x: float, depth: int) -> None:
        nonlocal depth_max
        for name, kid in sorted(node["kids"].items()):
            w = kid["n"] / max(root["n"], 1) * width
            if w >= 0.5:
                depth_max = max(depth_max, depth)
                share = kid["n"] / root["n"]
                label = escape(name)
                text = escape(name[: int(w / 7)]) if w > 30 else ""
                hue = 10 + zlib.crc32(name.split(" (")[0].encode()) % 40
                rects.append(
                    f'<g><title>{label} — {share:.1%}</title><rect x="{x:.1f}" '
                    f'y="{{Y{depth}}}" width="{w:.1f}" height="{row - 1}" '
                    f'fill="hsl({hue},85%,60%)"/><text x="{x + 2:.1f}" y="{{T{depth}}}" '
                    f'font-size="11">{text}</text></g>'
                )
                draw(kid, x, depth + 1)
            x += w

    draw(root, 0.0, 0)
    height = (depth_max + 2) * row
    body = "\n".join(rects)
    for d in range(depth_max + 1):  # the root at the bottom, callees above
        y = height - (d + 1) * row
        body = body.replace(f"{{Y{d}}}", str(y)).replace(f"{{T{d}}}", str(y + row - 4))
    svg = path.with_suffix(".svg")
    svg.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace">{body}</svg>\n'
    )
    return svg


def delivery(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sink_port = common.free_port()
    sink = common.start_server(tmp, "sink", port=sink_port)
    common.wait_listening(sink, sink_port)
    port = common.free_port()
    yaml_text = hookd_yaml(port, tmp / "p.db", sink.url, 1)
    hookd = common.start_hookd(tmp, yaml_text, port=port, name="hookd", src=args.src)
    with common.running(hookd, sink):
        common.wait_ready(hookd)
        reset_sink(sink)
        spy = record(hookd.pid, args.name, args.seconds)
        time.sleep(1.0)  # py-spy attaches
        before, t0 = thread_cpu(hookd.pid), time.monotonic()
        common.loadgen(
            "bulk", "--url", hookd.url, "--token", DELIVERY_TOKEN, "--events", str(args.events),
            "--batch-size", "100", "--concurrency", "4", timeout=300,
        )  # fmt: skip
        stats = wait_count(sink, args.events, 300)
        cpu = cpu_delta(before, thread_cpu(hookd.pid))
        wall = time.monotonic() - t0
        spy.wait(timeout=args.seconds + 30)
    return {"events": args.events, "wall_s": round(wall, 2), "cpu_s": cpu,
            "sink_count": stats["count"],
            "cpu_ms_per_event": {k: round(v / args.events * 1000, 4) for k, v in cpu.items()},
            "cpu_ms_per_event_all": round(sum(cpu.values()) / args.events * 1000, 4)}  # fmt: skip


def batch(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    hole_port = common.free_port()
    hole = common.start_server(tmp, "blackhole", port=hole_port)
    common.wait_listening(hole, hole_port)
    hookd = start_parked(tmp, "hookd", hole_port, src=args.src)
    with common.running(hookd, hole):
        common.wait_ready(hookd)
        spy = record(hookd.pid, args.name, args.seconds)
        time.sleep(1.0)
        before = thread_cpu(hookd.pid)
        res = common.loadgen(
            "ingest", "--url", hookd.url, "--token", INGEST_TOKEN, "--mode", args.workload,
            "--concurrency", "8" if args.workload == "batch" else "64",
            "--duration", str(args.duration), timeout=args.duration + 120,
        )  # fmt: skip
        cpu = cpu_delta(before, thread_cpu(hookd.pid))
        spy.wait(timeout=args.seconds + 30)
    events = float(res["events"]) if "events" in res else res["events_per_s"] * args.duration
    return {"events_per_s": res["events_per_s"], "cpu_s": cpu,
            "cpu_us_per_event": {k: round(v / events * 1e6, 2) for k, v in cpu.items()},
            "cpu_us_per_event_all": round(sum(cpu.values()) / events * 1e6, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["delivery", "batch", "single"])
    parser.add_argument("--src", type=Path, default=None, help="hookd source tree (this one)")
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    args.name = args.name or args.workload
    args.seconds = (args.events / 600 if args.workload == "delivery" else args.duration) + 4
    with common.workspace("profile") as tmp:
        result = (delivery if args.workload == "delivery" else batch)(args, tmp)
    stacks = OUT / f"{args.name}.txt"
    result["profile"] = summarize(stacks) if stacks.exists() else {}
    result["cpu_pressure"] = common.cpu_pressure()
    if stacks.exists():
        flame(stacks)
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "profile"}, indent=1))
    for thread, data in result["profile"].items():
        if data["samples"] < 20:
            continue
        print(f"\n== {thread}: {data['samples']} samples")
        for (f, s), (g, t) in zip(data["self"][:20], data["total"][:20], strict=False):
            print(f"  self {s:5.1%} {f[:60]:<60}  total {t:5.1%} {g[:60]}")


if __name__ == "__main__":
    main()
