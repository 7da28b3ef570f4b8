"""``hookd deliveries list / show / retry`` and ``hookd replay``: delivery history and re-queues."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from hookd.cli import args as argtypes
from hookd.cli.client import admin_client, client_options, delivery_ids, path_id
from hookd.cli.command import add_command
from hookd.cli.output import (
    cell,
    fields,
    format_age,
    format_time,
    plural,
    pretty_payload,
    print_json,
    table,
    to_datetime,
)

STATUSES = ("pending", "succeeded", "failed")
DEFAULT_LIMIT = 50


def register(sub: Any) -> None:
    with_json = client_options()
    _add_deliveries(sub, with_json)
    _add_replay(sub, with_json)


def _add_deliveries(sub: Any, with_json: argparse.ArgumentParser) -> None:
    group = add_command(
        sub,
        "deliveries",
        help="delivery history and manual retry",
        description="Delivery history: list with filters, show one with its attempts, retry.",
        examples=["hookd deliveries list --status failed", "hookd deliveries show dlv_..."],
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    _add_list(actions, with_json)

    show = add_command(
        actions,
        "show",
        help="one delivery: attempts and payload",
        description="Show one delivery: its state, every attempt, headers sent and the payload.",
        examples=["hookd deliveries show dlv_01J..."],
        parents=[with_json],
    )
    show.add_argument("id", metavar="ID", help="the delivery id")
    show.set_defaults(handler=cmd_deliveries_show)

    retry = add_command(
        actions,
        "retry",
        help="queue one more attempt now",
        description="Queue a delivery for another attempt now (typically a failed one).",
        examples=["hookd deliveries retry dlv_01J..."],
        parents=[with_json],
    )
    retry.add_argument("id", metavar="ID", help="the delivery id")
    retry.set_defaults(handler=cmd_deliveries_retry)


def _add_list(actions: Any, with_json: argparse.ArgumentParser) -> None:
    listing = add_command(
        actions,
        "list",
        help="deliveries, newest first, filtered",
        description="List deliveries, filtered by status, endpoint, event type or event id.",
        examples=[
            "hookd deliveries list --status failed --endpoint ci",
            "hookd deliveries list --type task.updated --all --json",
        ],
        parents=[with_json],
    )
    listing.add_argument("--status", choices=STATUSES, help="only deliveries in this state")
    listing.add_argument("--endpoint", metavar="ID", help="only this endpoint's deliveries")
    listing.add_argument("--type", metavar="T", help="only this event type")
    listing.add_argument("--tenant", metavar="T", help="only deliveries of this tenant's events")
    listing.add_argument("--event", metavar="ID", help="only this event's deliveries")
    listing.add_argument(
        "--code", metavar="CODE", help="only this last HTTP status (404) or class (5xx)"
    )
    listing.add_argument(
        "--limit",
        type=argtypes.positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N per page (default {DEFAULT_LIMIT})",
    )
    listing.add_argument("--cursor", help="continue a previous listing from this cursor")
    listing.add_argument("--all", action="store_true", help="follow every page to the end")
    listing.set_defaults(handler=cmd_deliveries_list)


def _add_replay(sub: Any, with_json: argparse.ArgumentParser) -> None:
    replay = add_command(
        sub,
        "replay",
        help="re-queue an endpoint's deliveries",
        description=(
            "Re-queue an endpoint's deliveries created in a window, and create deliveries for "
            "matching events it missed while disabled."
        ),
        examples=["hookd replay ci --since 2h --status failed"],
        parents=[with_json],
    )
    replay.add_argument("endpoint", metavar="ENDPOINT", help="the endpoint id")
    replay.add_argument(
        "--since",
        type=argtypes.since,
        help="a duration back from now (1h, 30m) or an RFC 3339 time (default: the API's)",
    )
    replay.add_argument(
        "--status",
        choices=("failed", "all"),
        default="failed",
        help="failed deliveries only (default), or all of them",
    )
    replay.set_defaults(handler=cmd_replay)


# --------------------------------------------------------------------------- handlers


def cmd_deliveries_list(args: argparse.Namespace) -> int:
    client = admin_client(args)
    params: dict[str, str | int] = {"limit": args.limit}
    for name in ("status", "endpoint", "type", "event", "code", "tenant", "cursor"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    if args.all:
        items, body = client.all_pages("/v1/deliveries", params)
    else:
        body = client.get("/v1/deliveries", params).body
        items = list(body.get("items") or [])
    if args.json:
        print_json(body)
        return 0
    if not items:
        print("no deliveries match")
    else:
        print(
            table(
                ("ID", "STATUS", "ENDPOINT", "TYPE", "ATTEMPTS", "CODE", "CREATED", "NEXT"),
                (
                    (
                        d.get("id"),
                        d.get("status"),
                        d.get("endpoint"),
                        d.get("event_type"),
                        d.get("attempt_count"),
                        d.get("last_status_code") or ("error" if d.get("last_error") else None),
                        format_time(d.get("created_at")),
                        _next(d),
                    )
                    for d in items
                ),
            )
        )
    if body.get("next_cursor"):
        print(f"more: add --all, or --cursor {body['next_cursor']}", file=sys.stderr)
    return 0


def cmd_deliveries_show(args: argparse.Namespace) -> int:
    body = admin_client(args).get(f"/v1/deliveries/{path_id(args.id)}").body
    if args.json:
        print_json(body)
        return 0
    attempts = body.get("attempts") or []
    print(
        fields(
            [
                ("delivery", body.get("id")),
                ("event", f"{body.get('event_id')} ({body.get('event_type')})"),
                ("endpoint", body.get("endpoint")),
                ("status", f"{body.get('status')} after {plural(len(attempts), 'attempt')}"),
                ("next attempt", _next(body)),
                ("created", format_time(body.get("created_at"))),
            ]
        )
    )
    print()
    if attempts:
        print(_attempts_table(attempts))
    else:
        print("no attempts yet")
    headers = body.get("request_headers") or {}
    if headers:
        print("\nrequest headers:")
        for name, value in headers.items():
            print(f"  {name}: {value}")
    print("\npayload:")
    print(pretty_payload(body.get("payload")))
    return 0


def cmd_deliveries_retry(args: argparse.Namespace) -> int:
    answer = admin_client(args).post(f"/v1/deliveries/{path_id(args.id)}/retry")
    if args.json:
        print_json(answer.body)
        return 0
    print(f"{args.id}: queued for another attempt now")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"status": args.status}
    if args.since:
        body["since"] = args.since
    answer = admin_client(args).post(f"/v1/endpoints/{path_id(args.endpoint)}/replay", body)
    if args.json:
        print_json(answer.body)
        return 0
    data = answer.body if isinstance(answer.body, dict) else {}
    queued = data.get("queued")
    if queued is None:
        queued = len(delivery_ids(data))
    window = f" since {args.since}" if args.since else ""
    text = f"{args.endpoint}: {plural(int(queued), 'delivery')} queued ({args.status}{window})"
    if data.get("created"):
        text += f"; {data['created']} of them for events missed while disabled"
    print(text)
    return 0


# --------------------------------------------------------------------------- formatting


def _attempts_table(attempts: list[dict[str, Any]]) -> str:
    return table(
        ("#", "STARTED", "CODE", "LATENCY", "ERROR / RESPONSE"),
        (
            (
                a.get("n"),
                format_time(a.get("started_at")),
                a.get("status_code"),
                _latency(a.get("latency_ms")),
                _clip(a.get("error") or a.get("response_body") or "", 60),
            )
            for a in attempts
        ),
    )


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _latency(ms: Any) -> str:
    return "-" if ms is None else f"{float(ms):.0f} ms"


def _next(delivery: dict[str, Any]) -> str:
    if delivery.get("status") != "pending":
        return "-"
    moment = to_datetime(delivery.get("next_attempt_at"))
    if moment is None:
        return "held" if delivery.get("next_attempt_at") is None else cell(delivery.get("next"))
    wait = moment.timestamp() - time.time()
    return "due now" if wait <= 0 else f"in {format_age(wait)}"
