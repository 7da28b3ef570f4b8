"""``hookd run`` tunes Python's cyclic garbage collector for a long-running server
(:func:`hookd.daemon.tune_gc`): what the imports made is frozen, the first generation waits for
7,000 allocations, and garbage in reference cycles is still collected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hookd import daemon
from hookd.config import Config

PROBE = """
import gc, json, weakref
from hookd.daemon import tune_gc
before = gc.get_freeze_count()
tune_gc()
frozen = gc.get_freeze_count()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: reference counting alone never frees it
gone = weakref.ref(a)
del a, b
gc.collect()
print(json.dumps({"before": before, "frozen": frozen, "threshold": gc.get_threshold(),
                  "cycle_collected": gone() is None}))
"""


def test_the_collector_is_tuned_and_still_collects_cycles() -> None:
    """In a fresh interpreter (the test process keeps its own settings): the ~40,000 objects
    the imports made are frozen, the thresholds are hookd's, and a reference cycle made
    afterwards is still collected."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    found = json.loads(out.stdout)
    assert found["before"] == 0
    assert found["frozen"] > 10_000  # hookd, aiohttp, pyreqwest and the rest, imported
    assert tuple(found["threshold"]) == daemon.GC_THRESHOLD
    assert found["threshold"][0] > 700  # rarer first-generation passes than Python's default
    assert found["cycle_collected"] is True


def test_hookd_run_tunes_the_collector_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hookd run``'s entry (:func:`hookd.daemon.main`) tunes the collector, then runs the
    daemon."""
    calls: list[str] = []

    async def fake_run(config: Config, config_path: Path | None) -> int:
        calls.append("run")
        return 0

    monkeypatch.setattr(daemon, "tune_gc", lambda: calls.append("tune_gc"))
    monkeypatch.setattr(daemon, "run", fake_run)
    assert daemon.main(Config(), None) == 0
    assert calls == ["tune_gc", "run"]
