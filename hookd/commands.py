"""Client commands: ``send``, ``status``, ``endpoints …``, ``deliveries …`` and ``replay``.

Each one is a few HTTP calls to a running daemon (SPEC §3) through :class:`hookd.cli.Client`,
printed as plain text or, with ``--json``, as the API's own JSON answer.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hookd.cli import (
    Client,
    UsageError,
    add_command,
    admin_client,
    cell,
    client_options,
    ingest_client,
    path_id,
    print_json,
    table,
)
from hookd.errors import HookdError
from hookd.units import parse_duration, parse_rate

STATUSES = ("pending", "succeeded", "failed")
DEFAULT_LIMIT = 50
CLEAR = "none"  # on update, --rate-limit none / --max-in-flight none remove the limit


def register(sub: Any) -> None:
    with_json = client_options()

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
        ],
        parents=[with_json],
    )
    send.add_argument("type", metavar="TYPE", help="the event type, e.g. task.updated")
    send.add_argument(
        "--data",
        default="{}",
        help="the event's data as JSON, @FILE to read a file, or - for stdin (default {})",
    )
    send.add_argument("--id", help="the event id (repeating an id is deduplicated)")
    send.set_defaults(handler=cmd_send)

    status = add_command(
        sub,
        "status",
        help="show the daemon's queues and endpoints",
        description="Show version, uptime, deliveries by status, the retry queue, and endpoints.",
        examples=["hookd status --url http://127.0.0.1:8080"],
        parents=[with_json],
    )
    status.set_defaults(handler=cmd_status)

    _register_endpoints(sub, with_json)
    _register_deliveries(sub, with_json)

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
        type=_since,
        help="a duration back from now (1h, 30m) or an RFC 3339 time (default: the API's)",
    )
    replay.add_argument(
        "--status",
        choices=("failed", "all"),
        default="failed",
        help="failed deliveries only (default), or all of them",
    )
    replay.set_defaults(handler=cmd_replay)


def _register_endpoints(sub: Any, with_json: argparse.ArgumentParser) -> None:
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
        description="List every endpoint: state, URL, events, scheme, policy, failures.",
        examples=["hookd endpoints list"],
        parents=[with_json],
    )
    listing.set_defaults(handler=cmd_endpoints_list)

    simple = {
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
    for name, (one_line, description, action) in simple.items():
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
            _register_endpoint_edits(actions, with_json)

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
    rotate.add_argument("--grace", type=_duration, help="keep the old secret valid this long")
    rotate.add_argument("--secret", help="use this new secret instead of a generated one")
    rotate.set_defaults(handler=cmd_rotate_secret)


def _register_endpoint_edits(actions: Any, with_json: argparse.ArgumentParser) -> None:
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
        ],
        parents=[with_json, _settings_options(update=False)],
    )
    create.add_argument(
        "endpoint_url", metavar="URL", help="where deliveries are POSTed (http or https)"
    )
    create.add_argument("--id", help="the endpoint id (default: a generated ep_... id)")
    create.set_defaults(handler=cmd_endpoint_create)

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
        parents=[with_json, _settings_options(update=True)],
    )
    update.add_argument("id", metavar="ID", help="the endpoint id")
    update.add_argument("new_url", nargs="?", metavar="URL", help="a new URL to POST deliveries to")
    update.set_defaults(handler=cmd_endpoint_update)

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


def _settings_options(*, update: bool) -> argparse.ArgumentParser:
    """The endpoint settings ``create`` and ``update`` share; on update "none" clears limits."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("endpoint settings" + (" (each optional)" if update else ""))
    group.add_argument(
        "--events",
        type=_patterns,
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
    group.add_argument(
        "--scheme",
        metavar="S",
        help="signing scheme: standard-webhooks (default), hmac-sha256, rsa-sha256 or a plugin's"
        + (" (needs --secret too)" if update else ""),
    )
    group.add_argument(
        "--secret",
        metavar="X",
        type=_secret,
        help="a new signing secret or key, in force at once; @FILE reads a file"
        if update
        else "the signing secret or key (default: a new one, printed once): whsec_... or "
        "whsk_... (ed25519) for standard-webhooks, any text for hmac-sha256, @FILE with a PEM "
        "private key for rsa-sha256",
    )
    group.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_header,
        metavar="NAME:VALUE",
        help="replace the extra HTTP headers; repeat for several"
        if update
        else "an extra HTTP header on every delivery; repeat for several",
    )
    if update:
        group.add_argument(
            "--no-headers", action="store_true", help="send no extra HTTP headers any more"
        )
    group.add_argument(
        "--rate-limit",
        type=_rate_or_none if update else _rate,
        metavar="RATE",
        help="at most this many deliveries per second, minute or hour: 50/s, 600/m"
        + (", or none" if update else ""),
    )
    group.add_argument(
        "--max-in-flight",
        type=_positive_int_or_none if update else _positive_int,
        metavar="N",
        help="at most N attempts at once" + (", or none" if update else ""),
    )
    group.add_argument(
        "--ordering",
        choices=("none", "fifo"),
        help="fifo: one delivery at a time, in ingest order (default none)",
    )
    return parent


def _register_deliveries(sub: Any, with_json: argparse.ArgumentParser) -> None:
    group = add_command(
        sub,
        "deliveries",
        help="delivery history and manual retry",
        description="Delivery history: list with filters, show one with its attempts, retry.",
        examples=["hookd deliveries list --status failed", "hookd deliveries show dlv_..."],
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True

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
    listing.add_argument("--event", metavar="ID", help="only this event's deliveries")
    listing.add_argument(
        "--code", metavar="CODE", help="only this last HTTP status (404) or class (5xx)"
    )
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N per page (default {DEFAULT_LIMIT})",
    )
    listing.add_argument("--cursor", help="continue a previous listing from this cursor")
    listing.add_argument("--all", action="store_true", help="follow every page to the end")
    listing.set_defaults(handler=cmd_deliveries_list)

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


# --------------------------------------------------------------------------- argument types


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _since(text: str) -> str:
    try:
        parse_duration(text)
        return text
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 1h or an RFC 3339 time like 2026-01-02T03:04:05Z, "
            f"got {text!r}"
        )
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _patterns(text: str) -> list[str]:
    patterns = [p.strip() for p in text.split(",") if p.strip()]
    if not patterns:
        raise argparse.ArgumentTypeError(
            f"expected event type globs like 'task.*,order.*', got {text!r}"
        )
    return patterns


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE like X-Team:core, got {text!r}")
    return name.strip(), value.strip()


def _rate(text: str) -> str:
    try:
        parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _rate_or_none(text: str) -> str:
    return text if text == CLEAR else _rate(text)


def _positive_int_or_none(text: str) -> int | str:
    return text if text == CLEAR else _positive_int(text)


def _secret(text: str) -> str:
    """``--secret``: the text itself, or ``@FILE``'s content (an RSA private key PEM)."""
    if not text.startswith("@"):
        return text
    name = text[1:]
    try:
        return Path(name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise argparse.ArgumentTypeError(f"cannot read {name}: {reason}") from exc


def _read_data(text: str) -> Any:
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


# --------------------------------------------------------------------------- send and status


def cmd_send(args: argparse.Namespace) -> int:
    event: dict[str, Any] = {"type": args.type, "data": _read_data(args.data)}
    if args.id is not None:
        event["id"] = args.id
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
        print(f"{body.get('id')}: accepted, {_plural(len(deliveries), 'delivery')} queued")
    if deliveries:
        print(
            table(("DELIVERY", "ENDPOINT"), ((d.get("id"), d.get("endpoint")) for d in deliveries))
        )
    return 0


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
    endpoints = body.get("endpoints") or []
    print()
    if not endpoints:
        print("no endpoints configured")
        return 0
    print(
        table(
            ("ENDPOINT", "STATE", "FAILURES", "URL"),
            (
                (ep.get("id"), _state(ep), ep.get("consecutive_failures", 0), ep.get("url"))
                for ep in endpoints
            ),
        )
    )
    return 0


# --------------------------------------------------------------------------- endpoints


def cmd_endpoints_list(args: argparse.Namespace) -> int:
    client = admin_client(args)
    items, body = _all_pages(client, "/v1/endpoints", {})
    if args.json:
        print_json(body)
        return 0
    if not items:
        print("no endpoints")
        return 0
    print(
        table(
            ("ID", "STATE", "URL", "EVENTS", "SCHEME", "POLICY", "SOURCE", "FAILURES"),
            (
                (
                    ep.get("id"),
                    _state(ep),
                    ep.get("url"),
                    ",".join(ep.get("events") or []),
                    (ep.get("signing") or {}).get("scheme"),
                    ep.get("policy"),
                    ep.get("source"),
                    ep.get("consecutive_failures"),
                )
                for ep in items
            ),
        )
    )
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
        print(_endpoint_text(body))
    elif action == "test":
        ids = _delivery_ids(body)
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


def cmd_endpoint_create(args: argparse.Namespace) -> int:
    body = _settings(args)
    body["url"] = args.endpoint_url
    if args.id is not None:
        body["id"] = args.id
    answer = admin_client(args).post("/v1/endpoints", body)
    if args.json:
        print_json(answer.body)
        return 0
    data = dict(answer.body) if isinstance(answer.body, dict) else {}
    secret, public_key = data.pop("secret", None), data.pop("public_key", None)
    endpoint_id = data.get("id", args.id)
    print(f"created endpoint {endpoint_id}")
    print(_endpoint_text(data))
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
    body = _settings(args)
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
    print(_endpoint_text(data))
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


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint settings given on the command line, as the admin API's JSON fields."""
    body: dict[str, Any] = {}
    for name in ("events", "policy", "body", "ordering"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    for name in ("rate_limit", "max_in_flight"):
        value = getattr(args, name)
        if value is not None:
            body[name] = None if value == CLEAR else value
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


def _state(endpoint: dict[str, Any]) -> str:
    if endpoint.get("enabled"):
        return "enabled"
    reason = endpoint.get("disabled_reason")
    return f"disabled ({reason})" if reason else "disabled"


def _endpoint_text(ep: dict[str, Any]) -> str:
    rows: list[tuple[str, object]] = [
        ("id", ep.get("id")),
        ("url", ep.get("url")),
        ("state", _state(ep)),
    ]
    rows += [
        ("failures", f"{ep.get('consecutive_failures', 0)} consecutive"),
        ("events", ", ".join(ep.get("events") or [])),
        ("signing", (ep.get("signing") or {}).get("scheme")),
        ("policy", ep.get("policy")),
        ("source", ep.get("source")),
    ]
    known = {"id", "url", "enabled", "disabled_reason", "consecutive_failures", "events"}
    known |= {"signing", "policy", "source"}
    for key, value in ep.items():
        if key not in known and value not in (None, {}, []):
            rows.append((key, json.dumps(value) if isinstance(value, dict | list) else value))
    return _fields(rows)


# --------------------------------------------------------------------------- deliveries


def cmd_deliveries_list(args: argparse.Namespace) -> int:
    client = admin_client(args)
    params: dict[str, str | int] = {"limit": args.limit}
    for name in ("status", "endpoint", "type", "event", "code", "cursor"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    if args.all:
        items, body = _all_pages(client, "/v1/deliveries", params)
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
        _fields(
            [
                ("delivery", body.get("id")),
                ("event", f"{body.get('event_id')} ({body.get('event_type')})"),
                ("endpoint", body.get("endpoint")),
                ("status", f"{body.get('status')} after {_plural(len(attempts), 'attempt')}"),
                ("next attempt", _next(body)),
                ("created", format_time(body.get("created_at"))),
            ]
        )
    )
    print()
    if attempts:
        print(
            table(
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
        )
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
        queued = len(_delivery_ids(data))
    window = f" since {args.since}" if args.since else ""
    text = f"{args.endpoint}: {_plural(int(queued), 'delivery')} queued ({args.status}{window})"
    if data.get("created"):
        text += f"; {data['created']} of them for events missed while disabled"
    print(text)
    return 0


# --------------------------------------------------------------------------- helpers


def _all_pages(
    client: Client, path: str, params: dict[str, str | int]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every item of a list route, following ``next_cursor``; the merged body for --json."""
    items: list[dict[str, Any]] = []
    params = dict(params)
    while True:
        body = client.get(path, params).body
        if isinstance(body, list):  # tolerate a bare array
            return body, {"items": body, "next_cursor": None}
        items.extend(body.get("items") or [])
        cursor = body.get("next_cursor")
        if not cursor:
            return items, {"items": items, "next_cursor": None}
        params["cursor"] = cursor


def _delivery_ids(body: dict[str, Any]) -> list[str]:
    """Delivery ids in a 202 answer, whichever shape it takes."""
    found = [str(d["id"]) for d in body.get("deliveries") or [] if isinstance(d, dict)]
    if isinstance(body.get("delivery"), dict):
        found.append(str(body["delivery"].get("id")))
    if not found and str(body.get("id", "")).startswith("dlv"):
        found.append(str(body["id"]))
    return found


def _fields(rows: list[tuple[str, object]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {cell(value)}" for name, value in rows)


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


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


def to_datetime(value: Any) -> datetime | None:
    """A timestamp the API gave (RFC 3339 text or unix seconds) as an aware datetime."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def format_time(value: Any) -> str:
    moment = to_datetime(value)
    if moment is None:
        return cell(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_age(seconds: Any) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d4h``."""
    if not isinstance(seconds, int | float):
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def format_bytes(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def pretty_payload(payload: Any) -> str:
    """JSON indented for people; a string holding JSON is decoded first."""
    if isinstance(payload, str):
        try:
            payload = json.loads(text := payload)
        except json.JSONDecodeError:
            return text
    return json.dumps(payload, indent=2, ensure_ascii=False)
