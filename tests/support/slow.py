"""Keeping ``-m "not slow"`` honest: a test that starts a real ``hookd`` process must be marked.

The autouse fixture :func:`spawning_tests_are_marked_slow` (registered in conftest) records
whether the running test carries ``@pytest.mark.slow``; every helper that starts ``python -m
hookd`` calls :func:`require_slow` first, so an unmarked one fails naming the fix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_current = {"slow": True}  # outside a test (a helper used by hand) nothing is checked


@pytest.fixture(autouse=True)
def spawning_tests_are_marked_slow(request: pytest.FixtureRequest) -> Iterator[None]:
    _current["slow"] = request.node.get_closest_marker("slow") is not None
    try:
        yield
    finally:
        _current["slow"] = True


def require_slow(command: str) -> None:
    """Fail unless the running test is marked slow (it is about to start ``command``)."""
    if not _current["slow"]:
        raise AssertionError(
            f"this test starts a real hookd process ({command}): mark it @pytest.mark.slow"
        )
