"""Keep docs/benchmarks.md current: each benchmark's generated section sits between markers.

``<!-- bench:NAME:begin -->`` … ``<!-- bench:NAME:end -->`` is rewritten from the result JSON;
everything outside the markers (the analysis, written by people) is left alone.
``python -m bench.doc`` rebuilds every section from the saved ``bench/results/*.json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bench.common import RESULTS, ROOT, fmt

DOC = ROOT / "docs" / "benchmarks.md"
ORDER = ("ingest", "delivery", "scale", "signing", "postgres", "stats")


def _begin(name: str) -> str:
    return f"<!-- bench:{name}:begin -->"


def _end(name: str) -> str:
    return f"<!-- bench:{name}:end -->"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    end = result.get("at_end", {})
    lines = [
        f"Command: `{result['command']}` — run {result['started']}, took {result['duration_s']} s "
        f"on {m['nproc']} × {m['cpu'] or 'CPU'}, Python {m['python']}, hookd "
        f"{m.get('hookd', '?')}. Noise: load average "
        f"{_load(m.get('loadavg_at_start'))} at start, {_load(end.get('loadavg'))} at end; CPU "
        f"pressure (some, avg60) {_pct(m.get('cpu_pressure_at_start'))} at start, "
        f"{_pct(end.get('cpu_pressure'))} at end.",
        "",
    ]
    for table in result["tables"]:
        lines.append(f"**{table['title']}**")
        lines.append("")
        lines.append("| " + " | ".join(table["columns"]) + " |")
        lines.append(
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table["columns"]))) + "|"
        )
        for row in table["rows"]:
            lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
        lines.append("")
    if result["checks"]:
        lines.append("| target | measured | limit | met | margin |")
        lines.append("|---|---:|---:|:---:|---:|")
        for c in result["checks"]:
            lines.append(
                f"| {c['name']} | {fmt(c['figure'])}{c['unit']} | {c['op']} {fmt(c['limit'])}"
                f"{c['unit']} | {'✓' if c['met'] else '✗'} | {c['margin']} |"
            )
        lines.append("")
    for note in result["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def _load(values: Any) -> str:
    return " / ".join(str(x) for x in values) if values else "?"


def _pct(value: Any) -> str:
    return f"{value:.0f}%" if isinstance(value, int | float) else "?"


def summary() -> str:
    """Every target of the latest full runs saved in bench/results/, in one table."""
    lines = [
        "| benchmark | target | measured | limit | met | margin | run |",
        "|---|---|---:|---:|:---:|---:|---|",
    ]
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        for c in result["checks"]:
            lines.append(
                f"| {name} | {c['name']} | {fmt(c['figure'])}{c['unit']} | {c['op']} "
                f"{fmt(c['limit'])}{c['unit']} | {'✓' if c['met'] else '✗'} | {c['margin']} "
                f"| {result['started']} |"
            )
    return "\n".join(lines) + "\n"


def _replace(text: str, name: str, body: str) -> str:
    block = f"{_begin(name)}\n{body}{_end(name)}"
    pattern = re.compile(re.escape(_begin(name)) + r".*?" + re.escape(_end(name)), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip() + f"\n\n## {name}\n\n{block}\n"


def update(result: dict[str, Any]) -> None:
    """Rewrite this result's section and the summary of targets."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    text = _replace(text, result["name"], render(result))
    text = _replace(text, "summary", summary())
    DOC.write_text(text)


def main() -> None:
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if path.exists():
            update(json.loads(path.read_text()))
            print(f"updated section {name} from {path.relative_to(ROOT)}")
    print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
