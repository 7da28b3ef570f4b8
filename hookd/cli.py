"""The ``hookd`` command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hookd import __version__
from hookd.errors import ConfigError, HookdError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"hookd: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="hookd",
        description="hookd: a self-hosted webhook delivery daemon.",
    )
    parser.add_argument("--version", action="version", version=f"hookd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    run = sub.add_parser("run", help="run the daemon", description="Run the hookd daemon.")
    run.add_argument(
        "-c",
        "--config",
        help="YAML config (default: $HOOKD_CONFIG, else ./hookd.yaml, else a built-in default)",
    )
    run.set_defaults(handler=cmd_run)

    check = sub.add_parser(
        "check",
        help="validate a config file",
        description="Validate a config; print every problem as FILE:LINE: key.path: message.",
    )
    check.add_argument("-c", "--config", help="the YAML file to check")
    check.set_defaults(handler=cmd_check)

    from hookd import commands, demo, keygen, receive

    keygen.register(sub)
    commands.register(sub)
    receive.register(sub)
    demo.register(sub)
    return parser


def load_config(path_arg: str | None) -> tuple[object, Path | None]:
    from hookd import config as configuration

    path = configuration.find_config_path(path_arg)
    return configuration.load(path), path


def cmd_run(args: argparse.Namespace) -> int:
    from hookd import config as configuration
    from hookd import daemon, logs

    path = configuration.find_config_path(args.config)
    config = configuration.load(path)
    logs.configure(config.log.level, config.log.format)
    return daemon.main(config, path)


def cmd_check(args: argparse.Namespace) -> int:
    from hookd import config as configuration
    from hookd import endpoints, plugins

    path = configuration.find_config_path(args.config)
    config = configuration.load(path)
    registry = plugins.load_registry(config)
    _, problems = endpoints.resolve_config(config, registry)
    if problems:
        raise ConfigError(problems)
    print(config.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except HookdError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
