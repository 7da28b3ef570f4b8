"""The web page's files: everything they load is in the package (and in the wheel), nothing
comes from elsewhere, and every text colour keeps a 4.5:1 contrast in light and dark mode."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

UI = resources.files("hookd.ui")
FILES = sorted(item.name for item in UI.iterdir() if item.is_file())
SCRIPTS = [name for name in FILES if name.endswith(".js")]
ROOT = Path(__file__).resolve().parents[1]


def test_every_module_the_page_imports_is_in_the_package() -> None:
    page = (UI / "index.html").read_text()
    assert re.findall(r'"/ui/static/\{\{assets\}\}/([^"]+)"', page) == ["app.css", "app.js"]
    for name in SCRIPTS:
        text = (UI / name).read_text()
        for imported in re.findall(r'from "\./([^"]+)"', text):
            assert imported in FILES, f"{name} imports {imported}"
        # no eval (the CSP forbids it), no HTML from strings, no inline style
        for banned in ("eval(", "innerHTML", "outerHTML", ".style.", 'setAttribute("style"'):
            assert banned not in text, (name, banned)


def _palette(css: str) -> tuple[dict[str, str], dict[str, str]]:
    light = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-f]{6})", css.split("@media")[0]))
    dark_block = css.split("@media (prefers-color-scheme: dark)")[1].split("}\n}")[0]
    return light, {**light, **dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-f]{6})", dark_block))}


def _luminance(colour: str) -> float:
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


PAIRS = [  # (text, background) as the stylesheet uses them
    *[(fg, "--bg") for fg in ("--fg", "--muted", "--link", "--ok", "--bad", "--warn")],
    *[(fg, "--panel") for fg in ("--fg", "--muted", "--link", "--ok", "--bad")],
    ("--ok", "--badge-ok-bg"),
    ("--bad", "--badge-bad-bg"),
    ("--warn", "--badge-wait-bg"),
    ("--fg", "--badge-bad-bg"),  # the error banner
    ("--bg", "--link"),  # a primary button
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_keeps_a_contrast_of_at_least_4_5(scheme: str, text: str, background: str) -> None:
    light, dark = _palette((UI / "app.css").read_text())
    colours = light if scheme == "light" else dark
    ratio = contrast(colours[text], colours[background])
    assert ratio >= 4.5, f"{scheme}: {text} on {background} is {ratio:.2f}:1"


@pytest.mark.slow
def test_the_wheel_ships_the_page(tmp_path: Path) -> None:
    """``pip install .`` gets the page: the wheel hatch builds holds every file of hookd/ui."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("hookd-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(n).name for n in archive.namelist() if n.startswith("hookd/ui/")}
    assert set(FILES) <= shipped
