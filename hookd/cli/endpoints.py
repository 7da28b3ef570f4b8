"""``hookd endpoints list / show / enable / disable / test / rotate-secret``.

The commands that change an endpoint's settings (create, update, delete) are in
:mod:`hookd.cli.endpoint_edits`; they appear after ``show`` in ``hookd endpoints --help``.
"""

from __future__ import annotations

import argparse
from typing import Any

from hookd.cli import args as argtypes
from hookd.cli import endpoint_edits
from hookd.cli.client import admin_client, client_options, delivery_ids, path_id
from hookd.cli.command import add_command
from hookd.cli.output import endpoint_state, endpoint_text, print_json, table

# name: (one-line help, description, the POST action; None for show, a GET)
SIMPLE_ACTIONS: dict[str, tuple[str, str, str | None]] = {
    "show": ("show one endpoint", "Show one endpoint's settings and state.", None),
    "enable": (
        "enable an endpoint",
        "Enable an endpoint: held deliveries resume and its failure count resets to 0.",
        "enable",
    ),
    "disable": (
        "disable an endpoint",
        "Disable an endpoint: it gets no new deliveries and its pending ones are held.",
        "disable",
    ),
    "test": (
        "send it a hookd.test event",
        "Send a hookd.test event to this endpoint alone, whatever its events filter.",
        "test",
    ),
}


def register(sub: Any) -> None:
    with_json = client_options()
    group = add_command(
        sub,
        "endpoints",
        help="list, inspect and operate endpoints",
        description=(
            "Endpoint operations: list, show, create, update, delete, enable, disable, test, "
            "rotate-secret."
        ),
        examples=[
            "hookd endpoints create https://hooks.example.com/hookd --events 'task.*'",
            "hookd endpoints list",
            "hookd endpoints disable ci",
        ],
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True

    listing = add_command(
        actions,
        "list",
        help="one line per endpoint",
        description="List every endpoint: state, URL, events, scheme, policy, failures, tenant.",
        examples=["hookd endpoints list", "hookd endpoints list --tenant acme"],
        parents=[with_json],
    )
    listing.add_argument("--tenant", help="only the endpoints of this tenant")
    listing.set_defaults(handler=cmd_endpoints_list)
    _add_simple_actions(actions, with_json)
    _add_rotate_secret(actions, with_json)


def _add_simple_actions(actions: Any, with_json: argparse.ArgumentParser) -> None:
    for name, (one_line, description, action) in SIMPLE_ACTIONS.items():
        parser = add_command(
            actions,
            name,
            help=one_line,
            description=description,
            examples=[f"hookd endpoints {name} ci"],
            parents=[with_json],
        )
        parser.add_argument("id", metavar="ID", help="the endpoint id")
        if name == "disable":
            parser.add_argument("--reason", help="why (shown in status and endpoints show)")
        parser.set_defaults(handler=cmd_endpoint_action, endpoint_action=action)
        if name == "show":  # then create, update and delete, in that order in --help
            endpoint_edits.register(actions, with_json)


def _add_rotate_secret(actions: Any, with_json: argparse.ArgumentParser) -> None:
    rotate = add_command(
        actions,
        "rotate-secret",
        help="make a new signing secret",
        description=(
            "Replace an API-created endpoint's signing secret and print the new one (shown only "
            "this once). With --grace the old secret keeps signing alongside the new one for that "
            "long; without it the old secret stops at once. YAML endpoints rotate in the YAML."
        ),
        examples=["hookd endpoints rotate-secret billing --grace 24h"],
        parents=[with_json],
    )
    rotate.add_argument("id", metavar="ID", help="the endpoint id")
    rotate.add_argument(
        "--grace", type=argtypes.duration, help="keep the old secret valid this long"
    )
    rotate.add_argument("--secret", help="use this new secret instead of a generated one")
    rotate.set_defaults(handler=cmd_rotate_secret)


# --------------------------------------------------------------------------- handlers


def cmd_endpoints_list(args: argparse.Namespace) -> int:
    client = admin_client(args)
    params = {"tenant": args.tenant} if args.tenant else {}
    items, body = client.all_pages("/v1/endpoints", params)
    if args.json:
        print_json(body)
        return 0
    if not items:
        print("no endpoints")
        return 0
    tenants = any(ep.get("tenant") for ep in items)  # a TENANT column only when it says something
    columns = ("ID", "STATE", "URL", "EVENTS", "SCHEME", "POLICY", "SOURCE", "FAILURES")
    rows = [
        (
            ep.get("id"),
            endpoint_state(ep),
            ep.get("url"),
            ",".join(ep.get("events") or []),
            (ep.get("signing") or {}).get("scheme"),
            ep.get("policy"),
            ep.get("source"),
            ep.get("consecutive_failures"),
            *((ep.get("tenant") or "-",) if tenants else ()),
        )
        for ep in items
    ]
    print(table((*columns, "TENANT") if tenants else columns, rows))
    return 0


def cmd_endpoint_action(args: argparse.Namespace) -> int:
    client = admin_client(args)
    path = f"/v1/endpoints/{path_id(args.id)}"
    action = args.endpoint_action
    if action is None:
        answer = client.get(path)
    else:
        reason = getattr(args, "reason", None)
        answer = client.post(f"{path}/{action}", {"reason": reason} if reason else None)
    if args.json:
        print_json(answer.body)
        return 0
    body = answer.body if isinstance(answer.body, dict) else {}
    if action is None:
        print(endpoint_text(body))
    elif action == "test":
        ids = delivery_ids(body)
        if ids:
            print(f"{args.id}: hookd.test queued as {', '.join(ids)}")
            print(f"follow it with: hookd deliveries show {ids[0]}")
        else:
            print(f"{args.id}: hookd.test queued")
    else:
        print(f"{args.id}: {action}d")
    return 0


def cmd_rotate_secret(args: argparse.Namespace) -> int:
    body = {} if args.grace is None else {"grace": args.grace}
    if args.secret:
        body["secret"] = args.secret
    answer = admin_client(args).post(f"/v1/endpoints/{path_id(args.id)}/rotate-secret", body)
    if args.json:
        print_json(answer.body)
        return 0
    data = answer.body if isinstance(answer.body, dict) else {}
    secret = data.get("secret") or (data.get("signing") or {}).get("secret")
    if secret:
        print(f"{args.id}: new signing secret (shown only this once):")
        print(secret)
    else:
        print(f"{args.id}: signing key rotated")
    if data.get("public_key"):
        print("public key for receivers (also at GET /v1/signing-keys):")
        print(str(data["public_key"]).strip())
    if args.grace:
        print(f"the previous key keeps signing alongside it for {args.grace}")
    else:
        print("the previous key stopped signing now")
    return 0
