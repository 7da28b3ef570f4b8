"""``hookd keygen``: secrets and key pairs in the formats hookd and receivers expect."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hookd.cli.command import add_command
from hookd.cli.errors import UsageError
from hookd.errors import HookdError


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "keygen",
        help="make a signing secret or key pair",
        description=(
            "Make signing material for an endpoint's signing: block.\n"
            "  standard-webhooks  prints a whsec_ secret (HMAC, signature v1)\n"
            "  ed25519            prints a whsk_ signing key, then its whpk_ public key for\n"
            "                     receivers (standard-webhooks, signature v1a)\n"
            "  rsa                writes a PEM private key to --out and its public key to\n"
            "                     OUT.pub (rsa-sha256); without --out prints both\n"
            "  hmac               prints a random hex secret (hmac-sha256)"
        ),
        examples=[
            "hookd keygen standard-webhooks",
            "hookd keygen ed25519",
            "hookd keygen rsa --out /etc/hookd/crm.pem",
        ],
    )
    parser.add_argument(
        "kind",
        metavar="KIND",
        choices=("standard-webhooks", "ed25519", "rsa", "hmac"),
        help="standard-webhooks, ed25519, rsa or hmac",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="rsa: write the private key here and the public key to FILE.pub",
    )
    parser.add_argument(
        "--bits",
        type=int,
        default=2048,
        help="rsa key size (default 2048, the minimum)",
    )
    parser.set_defaults(handler=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    from hookd import signing  # here, not at import: --help need not load cryptography

    if args.kind != "rsa" and args.out:
        raise UsageError("--out applies to rsa keys only; the other kinds print to stdout")
    if args.kind == "standard-webhooks":
        print(signing.generate_standard_secret())
    elif args.kind == "hmac":
        print(os.urandom(32).hex())
    elif args.kind == "ed25519":
        private, public = signing.generate_ed25519()
        print(private)
        print(public)
    else:
        if args.bits < signing.MIN_RSA_BITS:
            raise UsageError(f"--bits: RSA keys need at least {signing.MIN_RSA_BITS} bits")
        private_pem, public_pem = signing.generate_rsa(args.bits)
        if args.out:
            _write_pair(Path(args.out), private_pem, public_pem)
        else:
            print(private_pem.decode(), end="")
            print(public_pem.decode(), end="")
    return 0


def _write_pair(out: Path, private_pem: bytes, public_pem: bytes) -> None:
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # also when the file already existed
            fh.write(private_pem)
        Path(f"{out}.pub").write_bytes(public_pem)
    except OSError as exc:
        raise HookdError(f"cannot write {exc.filename or out}: {exc.strerror}") from exc
    print(f"wrote {out} (private key, mode 600) and {out}.pub (public key)")
