"""``hookd tenants list / token / revoke``: the tenants (customers) and their tokens."""

from __future__ import annotations

import argparse
from typing import Any

from hookd.cli import args as argtypes
from hookd.cli.client import admin_client, client_options, path_id, resolve_url
from hookd.cli.command import add_command
from hookd.cli.output import print_json, table


def register(sub: Any) -> None:
    with_json = client_options()
    group = add_command(
        sub,
        "tenants",
        help="tenants (your customers) and their tokens",
        description=(
            "Tenants are the customers you send webhooks to: an event with a tenant goes only "
            "to that tenant's endpoints (and '*' ones). A tenant token lets a customer manage "
            "its own endpoints and read its own deliveries, through the API or the portal page."
        ),
        examples=["hookd tenants list", "hookd tenants token acme --ttl 7d"],
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    listing = add_command(
        actions,
        "list",
        help="every tenant with its endpoints and deliveries",
        description="Every tenant that has an endpoint or an event, with delivery counts.",
        examples=["hookd tenants list"],
        parents=[with_json],
    )
    listing.set_defaults(handler=cmd_tenants_list)
    token = add_command(
        actions,
        "token",
        help="mint a token and a portal link for a tenant",
        description=(
            "Mint a tenant token (POST /v1/tenants/TENANT/tokens) and print it with the portal "
            "link to hand to the customer. The token works until it expires or "
            "'hookd tenants revoke TENANT'."
        ),
        examples=["hookd tenants token acme", "hookd tenants token acme --ttl 30d"],
        parents=[with_json],
    )
    token.add_argument("tenant", metavar="TENANT", help="the tenant id")
    token.add_argument(
        "--ttl", type=argtypes.duration, help="how long it works, up to 30d (default 1h)"
    )
    token.set_defaults(handler=cmd_tenant_token)
    revoke = add_command(
        actions,
        "revoke",
        help="revoke every token of a tenant",
        description="Every token issued for the tenant so far stops working at once.",
        examples=["hookd tenants revoke acme"],
        parents=[with_json],
    )
    revoke.add_argument("tenant", metavar="TENANT", help="the tenant id")
    revoke.set_defaults(handler=cmd_tenant_revoke)


def cmd_tenants_list(args: argparse.Namespace) -> int:
    items, body = admin_client(args).all_pages("/v1/tenants", {})
    if args.json:
        print_json(body)
        return 0
    if not items:
        print("no tenants")
        return 0
    rows = []
    for item in items:
        counts = item.get("deliveries") or {}
        rows.append(
            (
                item.get("tenant"),
                item.get("endpoints"),
                counts.get("pending", 0),
                counts.get("succeeded", 0),
                counts.get("failed", 0),
            )
        )
    print(table(("TENANT", "ENDPOINTS", "PENDING", "SUCCEEDED", "FAILED"), rows))
    return 0


def cmd_tenant_token(args: argparse.Namespace) -> int:
    body = {} if args.ttl is None else {"ttl": args.ttl}
    answer = admin_client(args).post(f"/v1/tenants/{path_id(args.tenant)}/tokens", body)
    if args.json:
        print_json(answer.body)
        return 0
    data = answer.body if isinstance(answer.body, dict) else {}
    print(f"token for tenant {data.get('tenant')} (valid until {data.get('expires_at')}):")
    print(data.get("token"))
    print("\nportal link (hand it to the customer; the token is only in the #fragment):")
    print(resolve_url(args).rstrip("/") + str(data.get("portal_path", "")))
    return 0


def cmd_tenant_revoke(args: argparse.Namespace) -> int:
    answer = admin_client(args).post(f"/v1/tenants/{path_id(args.tenant)}/revoke-tokens", {})
    if args.json:
        print_json(answer.body)
        return 0
    print(f"{args.tenant}: every token issued so far is revoked")
    return 0
