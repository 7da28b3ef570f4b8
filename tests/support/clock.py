"""The one fake clock for every test that drives time."""

from __future__ import annotations


class FakeClock:
    """A ``time.time``-like callable that only moves when the test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move ``seconds`` ahead; the new time."""
        self.now += seconds
        return self.now
