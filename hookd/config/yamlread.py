"""YAML with line numbers: plain values from a YAML text, every key's line, ``${VAR}`` expanded,
and problems collected (one per key) as ``FILE:LINE: key.path: message``.

What the keys mean is not known here: :mod:`hookd.config.sections` reads the schema through a
:class:`YamlReader`, converting each value with a parser of :mod:`hookd.config.values`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

from hookd.config.paths import join, line_for, shown
from hookd.config.values import kind_of
from hookd.config.yamlevents import PathTracker, YamlLimit, check_limits, show_tag
from hookd.errors import ConfigError

T = TypeVar("T")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compose(text: str, source: str) -> yaml.Node | None:
    """The YAML document as nodes (None when empty). Raises ConfigError if it is not YAML, or
    goes past a limit of :mod:`~hookd.config.yamlevents` (alias bombs, deep nesting, tags)."""
    try:
        check_limits(text)
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except YamlLimit as exc:
        path = shown(exc.path)
        where = f"{source}:{exc.line}: {path}: " if path else f"{source}:{exc.line}: "
        raise ConfigError([where + str(exc)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([syntax_problem(text, source, exc)]) from exc


def syntax_problem(text: str, source: str, exc: yaml.YAMLError) -> str:
    """``FILE:LINE: key.path: YAML syntax error: ...`` for a file PyYAML cannot parse."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    last_line = max(1, len(text.splitlines()))
    line = min(mark.line + 1, last_line) if mark is not None else 1
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML refuses
    if mark is None and isinstance(position, int):
        line = min(text.count("\n", 0, position) + 1, last_line)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and min(context_mark.line + 1, last_line) != line:
        problem += f" ({context} that starts on line {context_mark.line + 1})"
    path = shown(path_at_syntax_error(text))
    where = f"{source}:{line}: {path}: " if path else f"{source}:{line}: "
    return f"{where}YAML syntax error: {problem}"


def path_at_syntax_error(text: str) -> str:
    """The key path PyYAML was inside when it gave up, from the events it produced before."""
    tracker = PathTracker()
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            tracker.feed(event)
    except yaml.YAMLError:
        return tracker.path(failed=True)
    return ""


class YamlReader:
    """Turns a composed YAML node into plain values, remembering every path's line."""

    def __init__(self, *, source: str, env: Mapping[str, str]) -> None:
        self.source = source
        self.env = env
        self.lines: dict[str, int] = {}
        self.problems: list[str] = []
        self._failed: set[str] = set()
        self._env_failed: set[str] = set()  # keys whose ${VAR} is unset
        # A scalar that is exactly ``${VAR}`` stays a string (a secret of digits is a string),
        # but a number or boolean key accepts the variable's YAML reading: ``max_pending: ${N}``.
        self.env_typed: dict[str, Any] = {}
        self._scalars = yaml.SafeLoader("")  # constructs scalar nodes (ints, bools, strings)

    # -- YAML → python, with lines and ${VAR}

    def to_python(self, node: yaml.Node, path: str) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):  # `? [a]`, `{}: x`
                    kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                    self.lines.setdefault(join(path, "?"), key_node.start_mark.line + 1)
                    self.error(join(path, "?"), f"a key must be text, not a {kind}")
                    continue
                key = str(key_node.value)
                sub = join(path, key)
                self.lines[sub] = key_node.start_mark.line + 1
                if key in out:
                    self.error(sub, "duplicate key")
                out[key] = self.to_python(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.to_python(item, join(path, i)) for i, item in enumerate(node.value)]
        try:
            value = self._scalars.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            message = f"cannot read this value as YAML {show_tag(node.tag)}"
            reason = str(exc).splitlines()[0] if exc.args else ""
            if reason and str(node.value) not in reason:  # never echo the value (a secret?)
                message += f" ({reason})"
            self.error(path, message)
            return None
        if isinstance(value, str) and "${" in value:
            whole = _ENV.fullmatch(value) is not None
            value = self.expand(value, path)
            if whole and path not in self._failed:
                self.env_typed[path] = self._typed(value)
        return value

    def _typed(self, text: str) -> Any:
        """What ``text`` would be as a plain YAML scalar (``8080`` an int, ``true`` a bool)."""
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return value if isinstance(value, bool | int | float) else text

    def expand(self, value: str, path: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.error(path, f"environment variable {name} is not set")
                self._env_failed.add(path)
                return ""
            return self.env[name]

        return _ENV.sub(sub, value)

    # -- problems

    def error(self, path: str, message: str) -> None:
        if path in self._failed:
            return  # one problem per key: the first is the cause
        if self.env_failed_below(path):
            return  # a missing ${VAR} below this key is the cause; say only that
        self._failed.add(path)
        line = line_for(self.lines, path)
        where = f"{self.source}:{line}: {shown(path)}: " if path else f"{self.source}:{line}: "
        self.problems.append(where + message)

    def failed_under(self, path: str) -> bool:
        """Whether ``path`` or a key below it has a problem."""
        return any(p == path or p.startswith((path + ".", path + "[")) for p in self._failed)

    def env_failed_below(self, path: str) -> bool:
        """Whether a key below ``path`` names an unset ``${VAR}``."""
        return any(f.startswith((f"{path}.", f"{path}[")) for f in self._env_failed)

    # -- converting values

    def mapping(
        self, value: Any, path: str, allowed: tuple[str, ...], hint: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """``value`` as a mapping whose keys are all ``allowed``; an unknown key's message lists
        ``hint`` (the keys that apply in context) when given, else every allowed key."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {kind_of(value)}")
            return {}
        for key in value:
            if key not in allowed:
                expected = ", ".join(hint or allowed)
                self.error(join(path, key), f"unknown key (expected one of: {expected})")
        return value

    def convert(
        self, data: dict[str, Any], key: str, path: str, fn: Callable[[Any], T]
    ) -> T | None:
        if key not in data or data[key] is None:
            return None
        return self.apply(fn, data[key], join(path, key))

    def apply(self, fn: Callable[[Any], T], value: Any, path: str) -> T | None:
        """``fn(value)``, or None with the problem recorded at ``path``."""
        try:
            return fn(value)
        except ValueError as exc:
            if path in self.env_typed:
                with contextlib.suppress(ValueError):
                    return fn(self.env_typed[path])
            self.error(path, str(exc))
            return None

    def kwargs(
        self, data: dict[str, Any], path: str, **fns: Callable[[Any], Any]
    ) -> dict[str, Any]:
        out = {}
        for key, fn in fns.items():
            value = self.convert(data, key, path, fn)
            if value is not None:
                out[key] = value
        return out
