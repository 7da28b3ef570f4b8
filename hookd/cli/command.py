"""How a command declares itself: the argparse parser and help formatter all commands share.

Each command module has a ``register(sub)`` that calls :func:`add_command` on the subparsers
:mod:`hookd.cli.parser` hands it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from hookd.cli.errors import EXIT_USAGE


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"hookd: {message} (see {self.prog} --help)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps description and example line breaks; room for long command names."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures subcommand names without their extra indent, then wraps them.
        subactions: list[argparse.Action] = getattr(action, "_choices_actions", [])
        for sub in subactions:
            width = len(self._format_action_invocation(sub)) + self._current_indent + 2
            self._action_max_length = max(self._action_max_length, width)


def add_command(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> Parser:
    """A subcommand with a one-line ``help``, a description and an ``example:`` epilog."""
    label = "example" if len(examples) == 1 else "examples"
    parser: Parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"{label}:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=Formatter,
        parents=list(parents),
    )
    return parser
