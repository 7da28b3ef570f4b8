"""``hookd endpoints create / update / delete``: the commands that change an endpoint's settings.

Only endpoints created through the API can be edited here; the daemon answers 409 for those
declared in the YAML.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any
from urllib.parse import urlsplit

from hookd.cli import args as argtypes
from hookd.cli.client import admin_client, client_options, path_id
from hookd.cli.command import add_command
from hookd.cli.errors import UsageError
from hookd.cli.output import endpoint_text, print_json
from hookd.errors import HookdError


def register(actions: Any, with_json: argparse.ArgumentParser) -> None:
    """Add ``create``, ``update`` and ``delete`` to the ``endpoints`` actions."""
    _add_create(actions, with_json)
    _add_update(actions, with_json)
    _add_delete(actions)


def _add_create(actions: Any, with_json: argparse.ArgumentParser) -> None:
    create = add_command(
        actions,
        "create",
        help="add an endpoint (prints its secret once)",
        description=(
            "Create an endpoint (POST /v1/endpoints) and print it with its signing secret, "
            "shown only this once (for rsa-sha256 and whsk_ ed25519 keys: the public key "
            "receivers verify with). Signing is Standard Webhooks unless --scheme says "
            "otherwise: receivers can verify with the standardwebhooks or svix libraries, or "
            "try it out with 'hookd receive --secret whsec_...'. Loopback and private addresses "
            "need delivery.allow_private_networks: true in the daemon's config."
        ),
        examples=[
            "hookd endpoints create https://hooks.example.com/hookd --events 'task.*,order.*'",
            "hookd endpoints create https://ci.example.com/hooks --id ci --scheme hmac-sha256",
            "hookd endpoints create https://crm.example.com/in --scheme rsa-sha256 --body taskee",
            "hookd endpoints create https://hooks.acme.example/in --tenant acme",
        ],
        parents=[with_json, settings_options(update=False)],
    )
    create.add_argument(
        "endpoint_url", metavar="URL", help="where deliveries are POSTed (http or https)"
    )
    create.add_argument("--id", help="the endpoint id (default: a generated ep_... id)")
    create.add_argument(
        "--tenant",
        help="the tenant whose events it gets ('*': every tenant's); fixed once created",
    )
    create.set_defaults(handler=cmd_endpoint_create)


def _add_update(actions: Any, with_json: argparse.ArgumentParser) -> None:
    update = add_command(
        actions,
        "update",
        help="change an endpoint's settings",
        description=(
            "Change an API-created endpoint's settings (PATCH /v1/endpoints/ID); what is not "
            "given stays as it is. A new URL comes after the id (--url is the daemon's "
            "address). --events and --header replace the whole list. --secret replaces the "
            "signing key at once (use rotate-secret --grace for a gentle switch) and is needed "
            "with --scheme. Endpoints declared in the YAML are edited there (the daemon "
            "answers 409)."
        ),
        examples=[
            "hookd endpoints update billing --events 'invoice.*,order.paid'",
            "hookd endpoints update billing https://billing.example.com/v2/hooks --rate-limit none",
        ],
        parents=[with_json, settings_options(update=True)],
    )
    update.add_argument("id", metavar="ID", help="the endpoint id")
    update.add_argument("new_url", nargs="?", metavar="URL", help="a new URL to POST deliveries to")
    update.set_defaults(handler=cmd_endpoint_update)


def _add_delete(actions: Any) -> None:
    delete = add_command(
        actions,
        "delete",
        help="remove an endpoint and its history",
        description=(
            "Delete an API-created endpoint and its whole delivery history (DELETE "
            "/v1/endpoints/ID). Asks for confirmation on a terminal; elsewhere (scripts, CI) "
            "pass --yes. Endpoints declared in the YAML are removed there (the daemon answers "
            "409)."
        ),
        examples=["hookd endpoints delete billing --yes"],
        parents=[client_options(json_output=False)],
    )
    delete.add_argument("id", metavar="ID", help="the endpoint id")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=cmd_endpoint_delete)


# --------------------------------------------------------------------------- the settings


def settings_options(*, update: bool) -> argparse.ArgumentParser:
    """The endpoint settings ``create`` and ``update`` share; on update "none" clears limits."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("endpoint settings" + (" (each optional)" if update else ""))
    _add_delivery_options(group, update=update)
    _add_signing_options(group, update=update)
    _add_header_options(group, update=update)
    _add_limit_options(group, update=update)
    return parent


def _add_delivery_options(group: argparse._ArgumentGroup, *, update: bool) -> None:
    group.add_argument(
        "--events",
        type=argtypes.patterns,
        metavar="PATTERNS",
        help="replace the event type globs, comma-separated"
        if update
        else "event type globs, comma-separated: 'task.*,order.*' (default: every event)",
    )
    group.add_argument(
        "--policy",
        metavar="NAME",
        help="retry policy: standard (default), taskview, taskee or one from the config",
    )
    group.add_argument(
        "--body",
        metavar="FORMAT",
        help="body format: standard (default), raw, taskview, taskee or a plugin's",
    )


def _add_signing_options(group: argparse._ArgumentGroup, *, update: bool) -> None:
    group.add_argument(
        "--scheme",
        metavar="S",
        help="signing scheme: standard-webhooks (default), hmac-sha256, rsa-sha256 or a plugin's"
        + (" (needs --secret too)" if update else ""),
    )
    group.add_argument(
        "--secret",
        metavar="X",
        type=argtypes.secret,
        help="a new signing secret or key, in force at once; @FILE reads a file"
        if update
        else "the signing secret or key (default: a new one, printed once): whsec_... or "
        "whsk_... (ed25519) for standard-webhooks, any text for hmac-sha256, @FILE with a PEM "
        "private key for rsa-sha256",
    )


def _add_header_options(group: argparse._ArgumentGroup, *, update: bool) -> None:
    group.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=argtypes.header,
        metavar="NAME:VALUE",
        help="replace the extra HTTP headers; repeat for several"
        if update
        else "an extra HTTP header on every delivery; repeat for several",
    )
    if update:
        group.add_argument(
            "--no-headers", action="store_true", help="send no extra HTTP headers any more"
        )


def _add_limit_options(group: argparse._ArgumentGroup, *, update: bool) -> None:
    group.add_argument(
        "--rate-limit",
        type=argtypes.rate_or_none if update else argtypes.rate,
        metavar="RATE",
        help="at most this many deliveries per second, minute or hour: 50/s, 600/m"
        + (", or none" if update else ""),
    )
    group.add_argument(
        "--max-in-flight",
        type=argtypes.positive_int_or_none if update else argtypes.positive_int,
        metavar="N",
        help="at most N attempts at once" + (", or none" if update else ""),
    )
    group.add_argument(
        "--ordering",
        choices=("none", "fifo"),
        help="fifo: one delivery at a time, in ingest order (default none)",
    )


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint settings given on the command line, as the admin API's JSON fields."""
    body: dict[str, Any] = {}
    for name in ("events", "policy", "body", "ordering"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    for name in ("rate_limit", "max_in_flight"):
        value = getattr(args, name)
        if value is not None:
            body[name] = None if value == argtypes.CLEAR else value
    if getattr(args, "no_headers", False):
        if args.headers is not None:
            raise UsageError("--header and --no-headers exclude each other")
        body["headers"] = {}
    elif args.headers is not None:
        body["headers"] = dict(args.headers)
    signing: dict[str, str] = {}
    if args.scheme is not None:
        signing["scheme"] = args.scheme
    if args.secret is not None:
        signing["secret"] = args.secret
    if signing:
        body["signing"] = signing
    return body


# --------------------------------------------------------------------------- handlers


def cmd_endpoint_create(args: argparse.Namespace) -> int:
    body = settings(args)
    body["url"] = args.endpoint_url
    if args.id is not None:
        body["id"] = args.id
    if args.tenant is not None:
        body["tenant"] = args.tenant
    answer = admin_client(args).post("/v1/endpoints", body)
    if args.json:
        print_json(answer.body)
        return 0
    data = dict(answer.body) if isinstance(answer.body, dict) else {}
    secret, public_key = data.pop("secret", None), data.pop("public_key", None)
    endpoint_id = data.get("id", args.id)
    print(f"created endpoint {endpoint_id}")
    print(endpoint_text(data))
    if secret:
        print("\nsigning secret:")
        print(secret)
        print("Save this secret now; hookd will not show it again.")
    if public_key:
        print("\npublic key for receivers (also at GET /v1/signing-keys):")
        print(str(public_key).strip())
        if not secret:
            print("the private key stays inside hookd")
    print(f"\nsend it a test event: hookd endpoints test {endpoint_id}")
    _private_network_note(args.endpoint_url)
    return 0


def cmd_endpoint_update(args: argparse.Namespace) -> int:
    body = settings(args)
    if args.new_url is not None:
        body["url"] = args.new_url
    if not body:
        raise UsageError(
            "nothing to change: give a new URL after the id, or a setting such as --events "
            "(--url is the daemon's address, not the endpoint's)"
        )
    answer = admin_client(args).request("PATCH", f"/v1/endpoints/{path_id(args.id)}", body=body)
    if args.json:
        print_json(answer.body)
        return 0
    data = answer.body if isinstance(answer.body, dict) else {}
    print(f"updated endpoint {args.id}")
    print(endpoint_text(data))
    if "signing" in body and "secret" in body["signing"]:
        print("\nthe new signing key is in force now; the previous one stopped signing")
    if "url" in body:
        _private_network_note(body["url"])
    return 0


def cmd_endpoint_delete(args: argparse.Namespace) -> int:
    client = admin_client(args)
    path = f"/v1/endpoints/{path_id(args.id)}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"not deleting endpoint {args.id!r} without confirmation: pass --yes "
                "(stdin is not a terminal to ask on)"
            )
        current = client.get(path).body  # a missing endpoint fails here, before the question
        owned_by_yaml = isinstance(current, dict) and current.get("source") == "config"
        if not owned_by_yaml and not _confirm(
            f"Delete endpoint {args.id} and its delivery history? [y/N] "
        ):
            raise HookdError(f"endpoint {args.id!r} not deleted")
    client.request("DELETE", path)
    print(f"deleted endpoint {args.id} and its delivery history")
    return 0


def _confirm(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):  # end of input (Ctrl-D): end the question's line
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")


def _private_network_note(url: str) -> None:
    """A hint on stderr: the daemon refuses loopback and private addresses unless told."""
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        private = host == "localhost" or host.endswith(".localhost")
    else:
        private = not address.is_global
    if private:
        print(
            f"note: {host} is a local address; the daemon delivers there only with "
            "delivery: {allow_private_networks: true} in its config",
            file=sys.stderr,
        )
