"""``hookd keygen``: secrets and key pairs in the formats hookd and receivers expect."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hookd import signing
from hookd.errors import HookdError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "keygen",
        help="make a signing secret or key pair",
        description=(
            "Make signing material. standard-webhooks prints a whsec_ secret; ed25519 prints a "
            "whsk_ signing key then its whpk_ public key; rsa writes a PEM private key to --out "
            "(and the public key to FILE.pub), or prints both."
        ),
    )
    parser.add_argument("kind", choices=("standard-webhooks", "ed25519", "rsa", "hmac"))
    parser.add_argument(
        "--out", help="rsa: write the private key here and the public key to OUT.pub"
    )
    parser.add_argument("--bits", type=int, default=2048, help="rsa key size (default 2048)")
    parser.set_defaults(handler=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    if args.kind == "standard-webhooks":
        print(signing.generate_standard_secret())
    elif args.kind == "hmac":
        print(os.urandom(32).hex())
    elif args.kind == "ed25519":
        private, public = signing.generate_ed25519()
        print(private)
        print(public)
    else:
        try:
            private_pem, public_pem = signing.generate_rsa(args.bits)
        except ValueError as exc:
            raise HookdError(str(exc)) from exc
        if args.out:
            out = Path(args.out)
            try:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(private_pem)
                Path(f"{out}.pub").write_bytes(public_pem)
            except OSError as exc:
                raise HookdError(f"cannot write {out}: {exc.strerror}") from exc
            print(f"wrote {out} (private key, mode 600) and {out}.pub (public key)")
        else:
            print(private_pem.decode(), end="")
            print(public_pem.decode(), end="")
    return 0
