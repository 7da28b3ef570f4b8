"""The ``hookd`` command line. Errors are one line on stderr and a non-zero exit.

:func:`main` is the console script (and ``python -m hookd``). The parser is assembled in
:mod:`hookd.cli.parser` from one module per command group (:mod:`~hookd.cli.run`,
:mod:`~hookd.cli.events`, :mod:`~hookd.cli.status`, :mod:`~hookd.cli.endpoints`,
:mod:`~hookd.cli.deliveries`, :mod:`~hookd.cli.receive`, :mod:`~hookd.cli.keygen`,
:mod:`~hookd.cli.demo`), each adding itself through ``register(sub)``. What they share lives in
small modules of its own: :mod:`~hookd.cli.command` (argparse), :mod:`~hookd.cli.args` (argument
types), :mod:`~hookd.cli.client` (reaching the daemon), :mod:`~hookd.cli.output` (text output),
:mod:`~hookd.cli.errors` (exit codes).

Exit codes: 0 ok, 1 failure (unreachable daemon, API error), 2 usage (bad option or config).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from hookd.cli.errors import EXIT_FAILURE, EXIT_USAGE, UsageError
from hookd.cli.parser import build_parser
from hookd.errors import ConfigError, HookdError


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HookdError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout's reader went away (``hookd deliveries list | head``): say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        if os.environ.get("HOOKD_DEBUG"):
            traceback.print_exc()
        else:
            print(
                f"hookd: unexpected error: {type(exc).__name__}: {exc} "
                "(set HOOKD_DEBUG=1 to see the traceback)",
                file=sys.stderr,
            )
        return EXIT_FAILURE


def _tolerant_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
