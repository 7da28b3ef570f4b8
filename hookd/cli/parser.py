"""The ``hookd`` parser: the top level, then each command module's ``register(sub)`` in the order
``hookd --help`` lists them.
"""

from __future__ import annotations

from hookd import __version__
from hookd.cli import (
    bench,
    deliveries,
    demo,
    endpoints,
    events,
    keygen,
    receive,
    run,
    status,
    tenants,
)
from hookd.cli.command import Formatter, Parser

COMMANDS = (run, events, status, endpoints, deliveries, tenants, receive, keygen, demo, bench)


def build_parser() -> Parser:
    parser = Parser(
        prog="hookd",
        description="hookd: a self-hosted webhook delivery daemon.",
        epilog=(
            "Client commands find the daemon with --url, -c FILE, $HOOKD_URL, $HOOKD_CONFIG or\n"
            "./hookd.yaml (in that order), and authenticate with $HOOKD_ADMIN_TOKEN\n"
            "(send: $HOOKD_INGEST_TOKEN, else the admin token).\n"
            "Run 'hookd COMMAND --help' for a command's options and an example."
        ),
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"hookd {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser, title="commands"
    )
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser
