"""Real headless Chromium for tests of the web page: Playwright for Python driving Debian's
``chromium`` (browser downloads are not possible here, so Playwright's own browsers are never
used). Tests that need it take the ``browser`` fixture; without chromium or playwright they
skip, saying why. ``.ci/run`` installs chromium with apt-get, so CI runs them.
"""

from __future__ import annotations

import asyncio
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


REPO = Path(__file__).resolve().parents[2]
UPDATE_SCREENSHOTS = os.environ.get("HOOKD_UPDATE_SCREENSHOTS") == "1"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


async def shoot(
    page: Any, request: pytest.FixtureRequest, name: str, *, docs: bool = False
) -> Path:
    """Save a screenshot of the page as ``NAME.png`` under the test's output directory (after
    checking the page shows no unformatted value: null, undefined, NaN); with
    ``HOOKD_UPDATE_SCREENSHOTS=1``, a ``docs`` one also replaces ``docs/screenshots/NAME.png``
    (the README's pictures stay those of the page as it is)."""
    text = await page.inner_text("main")
    for line in text.splitlines():  # a value the page failed to format
        assert line.strip() not in ("null", "undefined", "NaN"), (name, text)
    for broken in ("undefined", "[object Object]"):
        assert broken not in text, (name, text)
    path = screenshot_dir(request) / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if docs and UPDATE_SCREENSHOTS:
        target = REPO / "docs" / "screenshots" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return path


class Watch:
    """Everything a page received from hookd's API, and what went wrong in it: responses to
    ``/v1/…`` (URL, status, body), console errors and uncaught exceptions."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.base = base_url
        self.responses: list[tuple[str, int, str]] = []
        self.errors: list[str] = []
        self._pending: set[Any] = set()
        page.on("response", self._response)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("console", self._console)

    def _response(self, response: Any) -> None:
        if response.url.startswith(self.base + "/v1/"):
            task = asyncio.ensure_future(self._keep(response))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _keep(self, response: Any) -> None:
        try:
            body = await response.text()
        except Exception as exc:  # a response the page navigated away from
            body = f"<unread: {exc}>"
        self.responses.append((response.url, response.status, body))

    def _console(self, message: Any) -> None:
        # a failed API call logs "Failed to load resource" (the page shows its own message)
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    async def settle(self) -> None:
        """Wait until every response body seen so far has been read."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=10)

    def urls(self) -> list[str]:
        return [url.removeprefix(self.base) for url, _, _ in self.responses]
