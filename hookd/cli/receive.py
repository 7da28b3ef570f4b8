"""``hookd receive``: a local test receiver that verifies and prints every delivery.

It checks each request with :func:`hookd.signing.verify` exactly as a receiver would (any built-in
scheme), prints one block per request (Valid / INVALID / unverified, the identifying headers, the
pretty JSON body) and answers with the ``--status`` sequence, whose last code repeats. The first
line says where it listens (the real port when ``--port 0``); Ctrl-C or SIGTERM stops it with a
one-line summary and exit 0. Its :class:`~hookd.cli.verifier.Verifier` is shared with
``hookd demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hookd.cli.command import add_command
from hookd.cli.errors import UsageError
from hookd.cli.verifier import Verifier, decoded
from hookd.units import parse_duration

if TYPE_CHECKING:
    from aiohttp import web

# hookd.signing (and cryptography) load only when a receiver runs, so that --help stays quick.
SCHEMES = ("standard-webhooks", "hmac-sha256", "rsa-sha256")  # config.BUILTIN_SCHEMES
STANDARD_WEBHOOKS = SCHEMES[0]
DEFAULT_PORT = 8081
MAX_BODY = 16 * 1024 * 1024
SHOWN_BODY = 8192


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "receive",
        help="run a local receiver that verifies and prints deliveries",
        description=(
            "Run a local HTTP receiver that verifies each delivery's signature (any built-in "
            "scheme), prints it, and answers with the --status sequence (the last code repeats). "
            "Without --secret or --public-key requests are printed as unverified. Point an "
            "endpoint at the printed URL; Ctrl-C stops it with a summary."
        ),
        examples=[
            "hookd receive --port 9000 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "hookd receive --port 9000 --scheme hmac-sha256 --secret s3cret --status 500,500,200",
            "hookd receive --port 9000 --scheme rsa-sha256 --public-key key.pem.pub --delay 2s",
        ],
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"0 picks a free one (default {DEFAULT_PORT})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--scheme",
        choices=SCHEMES,
        default=STANDARD_WEBHOOKS,
        help="signing scheme to verify (default standard-webhooks)",
    )
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--secret", help="the shared secret (whsec_… for standard-webhooks)")
    keys.add_argument(
        "--public-key",
        metavar="FILE",
        help="a public key file: PEM for rsa-sha256, whpk_… for ed25519 standard-webhooks "
        "(a whpk_… value may also be given directly)",
    )
    parser.add_argument("--header", help="signature header name (hmac-sha256, rsa-sha256)")
    parser.add_argument("--prefix", help="signature value prefix (hmac-sha256 default sha256=)")
    parser.add_argument(
        "--status",
        type=_statuses,
        default=(200,),
        metavar="CODES",
        help="answer codes in order, the last one repeating, e.g. 500,500,200 (default 200)",
    )
    parser.add_argument(
        "--retry-after", type=_duration, metavar="DURATION", help="send Retry-After on non-2xx"
    )
    parser.add_argument(
        "--delay", type=_duration, default=0.0, help="wait this long before answering (e.g. 2s)"
    )
    parser.add_argument(
        "--path", default="/", help="answer under this path prefix, 404 elsewhere (default /)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per request")
    parser.set_defaults(handler=cmd_receive)


def _statuses(text: str) -> tuple[int, ...]:
    try:
        codes = tuple(int(part) for part in text.split(","))
    except ValueError:
        codes = ()
    if not codes or any(not 200 <= code <= 599 for code in codes):
        raise argparse.ArgumentTypeError(f"expected HTTP codes like 500,500,200, got {text!r}")
    return codes


def _duration(text: str) -> float:
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


# --------------------------------------------------------------------------- verification


def verifier_from(args: argparse.Namespace) -> Verifier | None:
    if args.scheme == STANDARD_WEBHOOKS and (args.header or args.prefix):
        raise UsageError("--header and --prefix apply to hmac-sha256 and rsa-sha256 only")
    public_key = None
    if args.public_key:
        if args.public_key.startswith("whpk_"):
            public_key = args.public_key
        else:
            try:
                public_key = Path(args.public_key).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                raise UsageError(f"--public-key: cannot read {args.public_key}: {reason}") from exc
    if args.secret is None and public_key is None:
        return None
    verifier = Verifier(
        scheme=args.scheme,
        secret=args.secret,
        public_key=public_key,
        header=args.header,
        prefix=args.prefix,
    )
    try:
        verifier.validate()
    except ValueError as exc:
        option = "--public-key" if public_key else "--secret"
        raise UsageError(f"{option}: {exc}") from exc
    return verifier


# --------------------------------------------------------------------------- printing


@dataclass(frozen=True, kw_only=True, slots=True)
class Seen:
    """One request as the receiver saw and answered it."""

    n: int
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    valid: bool | None  # None: not verified
    reason: str
    status: int
    at: float


def verdict(seen: Seen) -> str:
    if seen.valid is None:
        return f"unverified ({seen.reason})"
    return f"Valid ({seen.reason})" if seen.valid else f"INVALID ({seen.reason})"


def describe(seen: Seen) -> str:
    """The printed block for one request."""
    clock = time.strftime("%H:%M:%S", time.localtime(seen.at))
    lines = [
        f"#{seen.n}  {clock}  {seen.method} {seen.path}  → {seen.status}",
        f"  {verdict(seen)}",
    ]
    lowered = {k.lower(): v for k, v in seen.headers.items()}
    for name in ("webhook-id", "webhook-timestamp"):
        if name in lowered:
            value = lowered[name]
            if name == "webhook-timestamp" and value.isdigit():
                value += f" ({seen.at - int(value):+.0f}s)"
            lines.append(f"  {name}: {value}")
    payload = decoded(seen.body)
    if payload is not None:
        text = json.dumps(payload, indent=2, ensure_ascii=False)
    else:
        text = seen.body[:SHOWN_BODY].decode("utf-8", "replace")
        if len(seen.body) > SHOWN_BODY:
            text += f"\n… ({len(seen.body)} bytes in all)"
    lines += ["  " + line for line in text.splitlines() or ["(empty body)"]]
    return "\n".join(lines)


def as_json(seen: Seen) -> str:
    payload = decoded(seen.body)
    return json.dumps(
        {
            "n": seen.n,
            "at": seen.at,
            "method": seen.method,
            "path": seen.path,
            "valid": seen.valid,
            "reason": seen.reason,
            "status": seen.status,
            "headers": dict(seen.headers),
            "payload": payload,
            "body": None if payload is not None else seen.body.decode("utf-8", "replace"),
        },
        ensure_ascii=False,
    )


# --------------------------------------------------------------------------- serving


@dataclass(kw_only=True)
class Receive:
    """The receiver's state: the answer sequence and what it has seen so far."""

    verifier: Verifier | None
    statuses: tuple[int, ...]
    delay: float = 0.0
    retry_after: float | None = None
    prefix: str = "/"
    json_lines: bool = False
    received: int = 0
    valid: int = 0
    invalid: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        body = await request.read()
        if not request.path.startswith(self.prefix):
            print(
                f"ignored {request.method} {request.path_qs}  → 404 (not under {self.prefix})",
                file=self.notes,
                flush=True,
            )
            return web.Response(status=404, text=f"hookd receive answers under {self.prefix}\n")
        self.received += 1
        n = self.received
        status = self.statuses[min(n, len(self.statuses)) - 1]
        if self.verifier is None:
            valid: bool | None = None
            reason = "no --secret or --public-key given"
        else:
            valid, reason = self.verifier.check(request.headers, body)
            if valid:
                self.valid += 1
            else:
                self.invalid += 1
        seen = Seen(
            n=n,
            method=request.method,
            path=request.path_qs,
            headers=request.headers,
            body=body,
            valid=valid,
            reason=reason,
            status=status,
            at=time.time(),
        )
        print(as_json(seen) if self.json_lines else describe(seen) + "\n", flush=True)
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = {}
        if self.retry_after is not None and not 200 <= status < 300:
            headers["Retry-After"] = str(math.ceil(self.retry_after))  # whole seconds
        return web.Response(status=status, text=f"{status}\n", headers=headers)

    @property
    def notes(self) -> TextIO:
        """Where lines other than request blocks go: stderr when stdout carries JSON lines."""
        return sys.stderr if self.json_lines else sys.stdout

    def summary(self) -> str:
        text = f"hookd receive: stopped; {self.received} received, {self.valid} valid"
        if self.invalid:
            text += f", {self.invalid} invalid"
        if self.verifier is None and self.received:
            text += " (unverified: no --secret or --public-key)"
        return text


async def serve(receive: Receive, host: str, port: int) -> None:
    """Listen until SIGINT/SIGTERM, printing the address first and a summary last."""
    from aiohttp import web

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", receive.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        checking = (
            f"verifying {receive.verifier.scheme}"
            if receive.verifier
            else "not verifying: no --secret or --public-key"
        )
        print(
            f"hookd receive: listening on http://{shown}:{bound}{receive.prefix} ({checking}; "
            f"answering {','.join(map(str, receive.statuses))}; Ctrl-C stops)",
            file=receive.notes,
            flush=True,
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    print(receive.summary(), file=receive.notes, flush=True)


def cmd_receive(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    prefix = args.path if args.path.startswith("/") else "/" + args.path
    receive = Receive(
        verifier=verifier_from(args),
        statuses=args.status,
        delay=args.delay,
        retry_after=args.retry_after,
        prefix=prefix,
        json_lines=args.json,
    )
    try:
        asyncio.run(serve(receive, args.host, args.port))
    except KeyboardInterrupt:  # Ctrl-C before the handlers were installed
        print(receive.summary(), file=sys.stderr)
    return 0
