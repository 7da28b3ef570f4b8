"""``hookd bench`` runs the real daemon and a receiver, and prints every figure it promises."""

from __future__ import annotations

import pytest

from tests.support import assert_one_line_error, hookd


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_bench_prints_ingest_delivery_and_latency_figures() -> None:
    result = await hookd(
        "bench", "--seconds", "1", "--deliveries", "300", "--rate", "50", within=110
    )
    assert result.code == 0, result.err
    out = result.out
    for figure in (
        "disk commit (fsync) p50",
        "ingest, single events",
        "ingest, batches of 100",
        "delivery throughput",
        "CPU per delivery",
        "of which event loop",
        "ingest→receiver p50",
    ):
        assert figure in out, out
    assert "300 signed POSTs" in out
    assert "[5/5] latency" in result.err  # the progress line reached the last step
    assert "Traceback" not in result.err


@pytest.mark.slow
async def test_bench_refuses_nonsense_sizes_in_one_line() -> None:
    result = await hookd("bench", "--deliveries", "5")
    assert_one_line_error(result, 2, "--deliveries")
