"""Real headless Chromium for tests of the web page: Playwright for Python driving Debian's
``chromium`` (browser downloads are not possible here, so Playwright's own browsers are never
used). Tests that need it take the ``browser`` fixture; without chromium or playwright they
skip, saying why. ``.ci/run`` installs chromium with apt-get, so CI runs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("HOOKD_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
# what the machine's closed network needs: no background traffic, no sandbox (root)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), closed after the test."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    async with async_playwright() as play:
        chromium = await play.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """Where a test saves its screenshots: under pytest's output (``--basetemp``) directory."""
    path = request.config._tmp_path_factory.getbasetemp() / "screenshots"  # type: ignore[attr-defined]
    path.mkdir(parents=True, exist_ok=True)
    return Path(path)
