"""PyYAML's parse events, followed before a document is composed: the key path each event is
at, and the limits a config document keeps.

PyYAML composes aliases as shared nodes, and reading them back expands every alias in place, so
a few hundred bytes of nested aliases ("billion laughs") are billions of values. Its composer
recurses once per nesting level, and its constructor knows tags (``!!python/name:…``) a config
has no use for. :func:`check_limits` walks the events (PyYAML's parser is iterative) and stops
at the first of: a collection nested deeper than :data:`MAX_DEPTH`, aliases that expand the
document past :data:`MAX_VALUES` values, an alias inside its own anchor, a tag that is not a
plain YAML type. Only then is the document composed.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from hookd.config.paths import join

MAX_DEPTH = 64
MAX_VALUES = 100_000
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset({"!", *(_CORE + t for t in ("str", "int", "float", "bool", "null"))})
_MAPPING_TAGS = frozenset({_CORE + "map"})
_SEQUENCE_TAGS = frozenset({_CORE + "seq"})


class YamlLimit(Exception):
    """A document goes past a limit at ``line`` (1-based), under key ``path``."""

    def __init__(self, line: int, path: str, message: str) -> None:
        self.line = line
        self.path = path
        super().__init__(message)


def show_tag(tag: str) -> str:
    """A tag as it is written: ``!!int`` for the core schema's, others as they are."""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def check_limits(text: str) -> None:
    """Raise YamlLimit at the first event past a limit; yaml.YAMLError if it is not YAML."""
    limits = _Limits()
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        limits.feed(event)


class _Limits:
    """Depth, tags and the size aliases expand to, counted event by event."""

    def __init__(self) -> None:
        self.tracker = PathTracker()
        self.sizes: dict[str, int] = {}  # values an anchor's node expands to
        self.open: list[tuple[str | None, int]] = []  # open collections: (anchor, values so far)
        self.total = 0

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.NodeEvent):
            path = self.tracker.node_path()
            line = event.start_mark.line + 1 if event.start_mark else 1
            if isinstance(event, yaml.AliasEvent):
                self._alias(event.anchor, line, path)
            else:
                self._node(event, line, path)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, count = self.open.pop()
            self.total += 1  # the collection itself; its values were counted as they came
            if self.open:
                parent, so_far = self.open[-1]
                self.open[-1] = (parent, so_far + count + 1)
            if anchor is not None:
                self.sizes[anchor] = count + 1
        self.tracker.feed(event)

    def _node(self, event: yaml.NodeEvent, line: int, path: str) -> None:
        tag = getattr(event, "tag", None)
        allowed = (
            _MAPPING_TAGS
            if isinstance(event, yaml.MappingStartEvent)
            else _SEQUENCE_TAGS
            if isinstance(event, yaml.SequenceStartEvent)
            else _SCALAR_TAGS
        )
        if tag is not None and tag not in allowed:
            raise YamlLimit(line, path, f"unsupported YAML tag {show_tag(tag)!r}")
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self.open) >= MAX_DEPTH:
                top = re.split(r"[.\[]", path, maxsplit=1)[0]  # the whole path is too long
                raise YamlLimit(line, top, f"nested deeper than {MAX_DEPTH} levels")
            self.open.append((event.anchor, 0))
            return
        self._add(1)
        if event.anchor is not None:
            self.sizes[event.anchor] = 1

    def _alias(self, anchor: Any, line: int, path: str) -> None:
        if any(name == anchor for name, _ in self.open):
            raise YamlLimit(line, path, f"recursive YAML alias *{anchor}")
        self._add(self.sizes.get(anchor, 0))  # an undefined alias: the composer says so
        if self.total > MAX_VALUES:
            raise YamlLimit(line, path, f"YAML aliases expand to more than {MAX_VALUES} values")

    def _add(self, count: int) -> None:
        self.total += count
        if self.open:
            anchor, so_far = self.open[-1]
            self.open[-1] = (anchor, so_far + count)


class PathTracker:
    """Follows PyYAML's parse events to know the key path of the node being read."""

    def __init__(self) -> None:
        # One frame per open collection: [path, key or index, True while a mapping awaits a key,
        # True when the collection is itself a mapping's key].
        self.frames: list[list[Any]] = []

    def path(self, *, failed: bool = False) -> str:
        """The path of the innermost collection's current child."""
        if not self.frames:
            return ""
        path, key, awaiting_key, _ = self.frames[-1]
        if isinstance(key, int):  # a sequence: its item, or the sequence when the error is
            return path if failed else join(path, key)  # between items
        return path if awaiting_key or key is None else join(path, key)

    def node_path(self) -> str:
        """The path of the node the next event starts (a mapping key: its mapping's path)."""
        if not self.frames:
            return ""
        path, key, awaiting_key, _ = self.frames[-1]
        if isinstance(key, int):
            return join(path, key + 1)
        return path if awaiting_key else join(path, key)

    def feed(self, event: yaml.Event) -> None:
        as_key = False
        if isinstance(event, yaml.NodeEvent) and self.frames and self._took_key(event):
            if not isinstance(event, yaml.CollectionStartEvent):
                return
            as_key = True  # a collection as a mapping key (``{}: x``, ``? [a]``): a frame too
        if isinstance(event, yaml.MappingStartEvent):
            self.frames.append([self.path(), None, True, as_key])
        elif isinstance(event, yaml.SequenceStartEvent):
            self.frames.append([self.path(), -1, None, as_key])
        elif isinstance(event, yaml.CollectionEndEvent):
            if self.frames and not self.frames.pop()[3]:  # a key's end leaves its value to come
                self._node_done()
        elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            self._node_done()

    def _took_key(self, event: yaml.NodeEvent) -> bool:
        """Move the innermost collection on to this node; True when the node is a mapping key."""
        top = self.frames[-1]
        if isinstance(top[1], int):
            top[1] += 1  # the next item of a sequence
            return False
        if top[2]:  # a mapping key
            top[1] = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
            top[2] = False
            return True
        return False

    def _node_done(self) -> None:
        frames = self.frames
        if frames and isinstance(frames[-1][1], str | type(None)) and frames[-1][2] is False:
            frames[-1][2] = True  # a mapping's value ended: the next node is a key
