"""Shared parts of the benchmarks: processes, readiness, /proc readings, statistics, results.

Every benchmark starts real processes on 127.0.0.1 ports: the ``hookd`` daemon under test
(``python -m hookd run -c FILE`` on a temp database), and bench's own servers and load
generators (``python -m bench.servers``, ``python -m bench.loadgen``). Figures are reported as
ratios against a baseline measured in the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
# HOOKD_BENCH_SRC=DIR benchmarks the hookd package in DIR (say a scratch copy with a fix)
HOOKD_SRC = Path(os.environ.get("HOOKD_BENCH_SRC") or ROOT).resolve()
if HOOKD_SRC != ROOT:
    sys.path.insert(0, str(HOOKD_SRC))


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(src: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "HOOKD_CONFIG")}
    paths = [str(src or HOOKD_SRC), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, paths)))
    return env


@dataclass
class Proc:
    """A child process whose output goes to a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status_kb(self, key: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (``VmHWM`` = peak RSS, ``VmRSS`` = now)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far (``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def loop_cpu_seconds(self) -> float:
        """User + system CPU time of the main thread (the event loop) so far."""
        fields = Path(f"/proc/{self.pid}/task/{self.pid}/stat").read_text().rsplit(")", 1)[1]
        parts = fields.split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not go. Returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=10)


def spawn(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    *,
    url: str = "",
    cwd: Path = ROOT,
    src: Path | None = None,
) -> Proc:
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            list(argv), stdout=log_file, stderr=subprocess.STDOUT, env=_child_env(src), cwd=cwd
        )
    return Proc(name=name, proc=proc, log_path=log_path, url=url)


def start_hookd(
    workdir: Path, yaml_text: str, *, port: int, name: str = "hookd", src: Path | None = None
) -> Proc:
    """``python -m hookd run -c FILE`` (not yet ready; see :func:`wait_ready`).

    ``src`` (default ``HOOKD_SRC``) is the directory whose ``hookd`` package runs.
    """
    path = workdir / f"{name}.yaml"
    path.write_text(yaml_text)
    argv = [PYTHON, "-m", "hookd", "run", "-c", str(path)]
    where = src or HOOKD_SRC
    return spawn(name, argv, workdir, url=f"http://127.0.0.1:{port}", cwd=where, src=where)


def start_server(workdir: Path, kind: str, *, port: int, name: str | None = None) -> Proc:
    """One of :mod:`bench.servers` (``bare`` or ``sink``) in its own process."""
    argv = [PYTHON, "-m", "bench.servers", kind, "--port", str(port)]
    return spawn(name or kind, argv, workdir, url=f"http://127.0.0.1:{port}")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def http_json(url: str, timeout: float = 10.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}: {body[:200]!r}")
    return json.loads(body)


def wait_ready(proc: Proc, path: str = "/readyz", timeout: float = 60.0) -> float:
    """Poll ``path`` every 5 ms until 200; returns seconds since the process was spawned."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited {proc.proc.returncode}:\n{proc.log()}")
        with contextlib.suppress(OSError):
            status, _ = http_get(proc.url + path, timeout=1.0)
            if status == 200:
                return time.monotonic() - proc.started
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} not ready within {timeout}s:\n{proc.log()}")
        time.sleep(0.005)


def wait_listening(proc: Proc, port: int, timeout: float = 30.0) -> float:
    """Wait until ``port`` accepts TCP connections (for servers that never answer HTTP)."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited {proc.proc.returncode}:\n{proc.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return time.monotonic() - proc.started
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} not listening within {timeout}s") from None
            time.sleep(0.01)


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = ""
) -> float:
    """Poll until ``predicate()``; returns the seconds waited, raises after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)
    return time.monotonic() - start


def wait_idle(
    proc: Proc, *, below: float = 0.05, window: float = 0.5, timeout: float = 60.0
) -> float:
    """Wait until the process uses under ``below`` of a core over ``window`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = proc.cpu_seconds()
        time.sleep(window)
        if (proc.cpu_seconds() - before) / window < below:
            break
    return time.monotonic() - start


def run_json(argv: Sequence[str], timeout: float) -> Any:
    """Run a bench helper process to the end and parse the JSON it prints on stdout."""
    done = subprocess.run(
        list(argv), capture_output=True, env=_child_env(), cwd=ROOT, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr.decode()[-3000:]}"
        )
    return json.loads(done.stdout)


def loadgen(*args: str, timeout: float = 300.0) -> dict[str, Any]:
    """``python -m bench.loadgen ARGS`` in its own process; its JSON summary."""
    result: dict[str, Any] = run_json([PYTHON, "-m", "bench.loadgen", *args], timeout)
    return result


def metrics(url: str) -> dict[str, float]:
    """``/metrics`` as ``{"name{labels}": value}`` (Prometheus text format, samples only)."""
    _, body = http_get(url + "/metrics")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def histogram_buckets(samples: dict[str, float], name: str) -> list[tuple[str, float]]:
    """``[(le, cumulative count)]`` of one Prometheus histogram."""
    out = []
    for key, value in samples.items():
        if key.startswith(name + "_bucket{"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            out.append((le, value))
    return sorted(out, key=lambda kv: float(kv[0]))


def histogram_quantile(buckets: list[tuple[str, float]], q: float) -> str:
    """The upper bound of the bucket holding the ``q`` quantile (as Prometheus would bound it)."""
    if not buckets or buckets[-1][1] == 0:
        return "-"
    rank = q * buckets[-1][1]
    for le, count in buckets:
        if count >= rank:
            return le
    return buckets[-1][0]


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temp directory for databases, configs and logs; HOOKD_BENCH_KEEP=1 keeps it."""
    if os.environ.get("HOOKD_BENCH_KEEP"):
        path = Path(tempfile.mkdtemp(prefix=f"hookd-bench-{prefix}-"))
        print(f"  (keeping {path})", flush=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"hookd-bench-{prefix}-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    """Stop every process at exit, whatever happened."""
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.stop(timeout=10)


def commit_floor(folder: Path, commits: int = 200) -> dict[str, float]:
    """Latency of a one-row SQLite commit (WAL, ``synchronous=FULL``) in ``folder``, in ms.

    The disk's share of every ingest: a 202 waits for at least one such commit.
    """
    import sqlite3

    path = folder / "commit-floor.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
    took = []
    for i in range(commits):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (f"row {i}" * 20,))
        db.execute("COMMIT")
        took.append((time.perf_counter() - start) * 1000)
    db.close()
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(f"{path}{suffix}").unlink()
    return {"p50": percentile(took, 50), "p99": percentile(took, 99)}


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


# --------------------------------------------------------------------------- results


@dataclass
class Check:
    """A target: ``figure`` compared with ``limit`` (``>=`` or ``<=``)."""

    name: str
    figure: float
    op: str
    limit: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.figure >= self.limit if self.op == ">=" else self.figure <= self.limit

    def margin(self) -> str:
        """How far from the limit, as a percentage of it (positive = headroom)."""
        if not self.limit:
            return "-"
        if self.op == ">=":
            pct = (self.figure / self.limit - 1) * 100
        else:
            pct = (1 - self.figure / self.limit) * 100
        return f"{pct:+.0f}%"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "figure": self.figure,
            "op": self.op,
            "limit": self.limit,
            "unit": self.unit,
            "met": self.met,
            "margin": self.margin(),
        }


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


@dataclass
class Report:
    """One benchmark's output: tables, targets, notes; printed and saved as JSON."""

    name: str
    quick: bool
    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    host: dict[str, Any] = field(default_factory=lambda: machine())

    def table(self, title: str, columns: list[str]) -> Table:
        table = Table(title, columns)
        self.tables.append(table)
        return table

    def check(self, name: str, figure: float, op: str, limit: float, unit: str = "") -> Check:
        check = Check(name, figure, op, limit, unit)
        self.checks.append(check)
        return check

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quick": self.quick,
            "command": command_line(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started)),
            "duration_s": round(time.time() - self.started, 1),
            "machine": self.host,
            "at_end": {
                "loadavg": [round(x, 2) for x in os.getloadavg()],
                "cpu_pressure": cpu_pressure(),
            },
            "tables": [t.to_json() for t in self.tables],
            "checks": [c.to_json() for c in self.checks],
            "notes": self.notes,
        }

    def save(self) -> Path:
        folder = RESULTS / "quick" if self.quick else RESULTS
        if HOOKD_SRC != ROOT:  # a scratch tree's figures never replace this checkout's
            folder = RESULTS / "other-src"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    def print(self) -> None:
        print(render_text(self.to_json()), flush=True)


def command_line() -> str:
    """The command as typed, relative to the repository (``python -m bench.ingest --quick``)."""
    override = os.environ.get("HOOKD_BENCH_COMMAND")
    if override:
        return override
    argv = list(sys.argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name.removesuffix(".__main__")
        return shlex.join(["python", "-m", module, *argv[1:]])
    return shlex.join(["python", *argv])


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_pressure_at_start": cpu_pressure(),
        "hookd": hookd_version(),
    }


def hookd_version() -> str:
    """Which hookd was measured: the source directory, its git commit, and whether it is dirty."""
    where = "" if HOOKD_SRC == ROOT else f"{HOOKD_SRC} "
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HOOKD_SRC,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--", "hookd"],
            cwd=HOOKD_SRC,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{where}(not a git checkout)".strip()
    return f"{where}{sha}" + (" + uncommitted changes in hookd/" if dirty else "")


def cpu_pressure() -> float | None:
    """``/proc/pressure/cpu`` "some avg60": % of time something waited for a CPU (noise gauge)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(item.split("=") for item in line.split()[1:])
    return float(fields["avg60"])


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


def render_text(result: dict[str, Any]) -> str:
    lines = [f"== {result['name']} ({result['command']}, {result['duration_s']} s)"]
    for table in result["tables"]:
        lines.append("")
        lines.append(table["title"])
        cells = [table["columns"], *[[fmt(c) for c in row] for row in table["rows"]]]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(table["columns"]))]
        for row in cells:
            lines.append(
                "  " + "  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True))
            )
    if result["checks"]:
        lines.append("")
        lines.append("targets")
        for check in result["checks"]:
            mark = "MET   " if check["met"] else "MISSED"
            lines.append(
                f"  {mark} {check['name']}: {fmt(check['figure'])}{check['unit']} "
                f"{check['op']} {fmt(check['limit'])}{check['unit']} ({check['margin']})"
            )
    for note in result["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run in seconds")
    parser.add_argument(
        "--no-doc", action="store_true", help="do not rewrite this section of docs/benchmarks.md"
    )
    return parser


def finish(report: Report, *, write_doc: bool) -> None:
    """Print, save the JSON, and (full runs only) refresh the section in docs/benchmarks.md."""
    report.print()
    path = report.save()
    print(f"saved {path.relative_to(ROOT)}", flush=True)
    if write_doc and not report.quick and HOOKD_SRC == ROOT:
        from bench import doc

        doc.update(report.to_json())
        print(f"updated {doc.DOC.relative_to(ROOT)}", flush=True)


def uvloop_run(main: Any) -> Any:
    """Run a coroutine on uvloop when available (hookd does), else asyncio."""
    try:
        import uvloop

        return uvloop.run(main)
    except ImportError:
        import asyncio

        return asyncio.run(main)
