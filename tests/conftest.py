from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import Receiver, receiver


@pytest.fixture
async def sink() -> AsyncIterator[Receiver]:
    """A recording receiver on an ephemeral 127.0.0.1 port."""
    async with receiver() as rec:
        yield rec
