"""Attempts that end in the same turn of the event loop are recorded in one store call, each
getting its own answer; a failed call fails each of them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from hookd.delivery.recorder import Recorder
from hookd.errors import StoreError
from hookd.store import AttemptResult, Recorded


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def record(self, results: Sequence[AttemptResult]) -> list[Recorded]:
        self.calls.append([r.delivery_id for r in results])
        await asyncio.sleep(0)
        if self.fail:
            raise StoreError("database write failed: disk full")
        return [Recorded(delivery_id=r.delivery_id, applied=True) for r in results]


def _result(delivery_id: str) -> Any:
    class R:  # only the id matters to the recorder and this store
        pass

    r = R()
    r.delivery_id = delivery_id  # type: ignore[attr-defined]
    return r


async def test_attempts_ending_together_are_recorded_in_one_call() -> None:
    store = FakeStore()
    recorder = Recorder(store)  # type: ignore[arg-type]
    answers = await asyncio.gather(*(recorder.record(_result(f"d{i}")) for i in range(5)))
    assert store.calls == [["d0", "d1", "d2", "d3", "d4"]]
    assert [a.delivery_id for a in answers] == ["d0", "d1", "d2", "d3", "d4"]
    later = await recorder.record(_result("d5"))  # a later turn: a call of its own
    assert later.delivery_id == "d5"
    assert store.calls[-1] == ["d5"]


async def test_a_failed_call_fails_each_attempt_in_it() -> None:
    recorder = Recorder(FakeStore(fail=True))  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(recorder.record(_result(f"d{i}")) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in results)
    with pytest.raises(StoreError):
        await recorder.record(_result("d9"))
