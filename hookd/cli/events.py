"""``hookd send``: post one event to a running daemon's ingest API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hookd.cli.client import client_options, ingest_client
from hookd.cli.command import add_command
from hookd.cli.errors import UsageError
from hookd.cli.output import plural, print_json, table


def register(sub: Any) -> None:
    send = add_command(
        sub,
        "send",
        help="post one event to a running daemon",
        description=(
            "Post one event to the daemon's ingest API (POST /v1/events) and print its id and "
            "deliveries. Uses $HOOKD_INGEST_TOKEN, else $HOOKD_ADMIN_TOKEN."
        ),
        examples=[
            "hookd send order.created --data '{\"order_id\": 42}' --id order-42-created",
            "hookd send task.updated --data @event.json",
            "hookd send invoice.paid --tenant acme --data '{\"invoice\": 7}'",
        ],
        parents=[client_options()],
    )
    send.add_argument("type", metavar="TYPE", help="the event type, e.g. task.updated")
    send.add_argument(
        "--data",
        default="{}",
        help="the event's data as JSON, @FILE to read a file, or - for stdin (default {})",
    )
    send.add_argument("--id", help="the event id (repeating an id is deduplicated)")
    send.add_argument(
        "--tenant", help="the tenant (customer) the event belongs to: only its endpoints get it"
    )
    send.set_defaults(handler=cmd_send)


def cmd_send(args: argparse.Namespace) -> int:
    event: dict[str, Any] = {"type": args.type, "data": read_data(args.data)}
    if args.id is not None:
        event["id"] = args.id
    if args.tenant is not None:
        event["tenant"] = args.tenant
    answer = ingest_client(args).post("/v1/events", event)
    if args.json:
        print_json(answer.body)
        return 0
    body = answer.body if isinstance(answer.body, dict) else {}
    deliveries = body.get("deliveries") or []
    if answer.status == 200:
        print(f"{body.get('id')}: already accepted (same id); nothing new was queued")
    elif not deliveries:
        print(f"{body.get('id')}: accepted; no enabled endpoint subscribes to {args.type}")
    else:
        print(f"{body.get('id')}: accepted, {plural(len(deliveries), 'delivery')} queued")
    if deliveries:
        print(
            table(("DELIVERY", "ENDPOINT"), ((d.get("id"), d.get("endpoint")) for d in deliveries))
        )
    return 0


def read_data(text: str) -> Any:
    """``--data``: JSON text, ``@FILE``'s content or ``-`` for stdin, decoded."""
    where = "--data"
    if text == "-":
        text, where = sys.stdin.read(), "--data - (stdin)"
    elif text.startswith("@"):
        name = text[1:]
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise UsageError(f"--data: cannot read {name}: {reason}") from exc
        where = f"--data @{name}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
