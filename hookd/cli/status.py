"""``hookd status``: the daemon's version, uptime, delivery counts, queue and endpoints."""

from __future__ import annotations

import argparse
from typing import Any

from hookd.cli.client import admin_client, client_options
from hookd.cli.command import add_command
from hookd.cli.deliveries import STATUSES
from hookd.cli.output import endpoint_state, format_age, format_bytes, print_json, table


def register(sub: Any) -> None:
    status = add_command(
        sub,
        "status",
        help="show the daemon's queues and endpoints",
        description="Show version, uptime, deliveries by status, the retry queue, and endpoints.",
        examples=["hookd status --url http://127.0.0.1:8080"],
        parents=[client_options()],
    )
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    client = admin_client(args)
    body = client.get("/v1/status").body
    if args.json:
        print_json(body)
        return 0
    counts = body.get("deliveries") or {}
    head = f"hookd {body.get('version', '?')} at {client.url}"
    head += f", up {format_age(body.get('uptime_s'))}"
    if body.get("db_bytes") is not None:
        head += f", database {format_bytes(body['db_bytes'])}"
    if body.get("draining"):
        head += " (draining: shutting down)"
    print(head)
    print("deliveries:  " + "  ".join(f"{name} {counts.get(name, 0)}" for name in STATUSES))
    print(
        f"queue:       scheduled {body.get('scheduled', 0)}  in flight {body.get('in_flight', 0)}"
    )
    nodes = body.get("nodes") or []
    if len(nodes) > 1:  # several processes share the outbox (PostgreSQL)
        hosts = sorted({str(n.get("host")) for n in nodes})
        print(f"nodes:       {len(nodes)} processes on {', '.join(hosts)}")
    endpoints = body.get("endpoints") or []
    print()
    if not endpoints:
        print("no endpoints configured")
        return 0
    print(
        table(
            ("ENDPOINT", "STATE", "FAILURES", "URL"),
            (
                (ep.get("id"), endpoint_state(ep), ep.get("consecutive_failures", 0), ep.get("url"))
                for ep in endpoints
            ),
        )
    )
    return 0
