"""Key paths such as ``endpoints[2].signing.secret``, and the lines of the YAML that hold them."""

from __future__ import annotations

import re
from collections.abc import Mapping


def join(path: str, key: str | int) -> str:
    """The path of ``key`` (a mapping key, or a list position) below ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def line_for(lines: Mapping[str, int], path: str) -> int:
    """The line of ``path``, else of its closest ancestor that the file has, else line 1."""
    while path:
        if path in lines:
            return lines[path]
        parent = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
        path = "" if parent == path else parent  # a top-level key the file does not have
    return lines.get("", 1)


def by_line(problems: list[str]) -> list[str]:
    """``FILE:LINE: ...`` problems in the order of their lines (stable for one line)."""
    return sorted(problems, key=_line_of_problem)


def _line_of_problem(problem: str) -> int:
    m = re.match(r"^.*?:(\d+): ", problem)
    return int(m.group(1)) if m else 0


def shown(path: str) -> str:
    """``path`` as a problem line shows it: one printable line, whatever the keys hold (a newline
    or a terminal escape in a key is written as its Python escape, ``\\n``, ``\\x1b``); a path
    that begins or ends with white space is quoted, so the space shows (``' FZ'``)."""
    if path != path.strip():
        return repr(path)
    if path.isprintable():
        return path
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in path
    )
