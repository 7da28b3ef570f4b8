"""``hookd run`` and ``hookd check``: the daemon itself, and validating its config."""

from __future__ import annotations

import argparse
from typing import Any

from hookd.cli.command import add_command
from hookd.errors import ConfigError


def register(sub: Any) -> None:
    run = add_command(
        sub,
        "run",
        help="run the daemon",
        description="Run the hookd daemon until SIGTERM or Ctrl-C (SIGHUP reloads the config).",
        examples=["hookd run -c /etc/hookd/hookd.yaml"],
    )
    run.add_argument(
        "-c",
        "--config",
        help="YAML config (default: $HOOKD_CONFIG, else ./hookd.yaml, else a built-in default)",
    )
    run.set_defaults(handler=cmd_run)

    check = add_command(
        sub,
        "check",
        help="validate a config file",
        description="Validate a config; print every problem as FILE:LINE: key.path: message.",
        examples=["hookd check -c hookd.yaml"],
    )
    check.add_argument("-c", "--config", help="the YAML file to check")
    check.set_defaults(handler=cmd_check)


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
    # Every problem at once: the YAML's, the plugins', and those of resolving each endpoint
    # that parsed (a scheme or format no plugin registers, key material its signer refuses).
    config, problems = configuration.load_partial(path)
    if config is not None:
        registry, plugin_problems = plugins.load_plugins(config)
        problems += plugin_problems + endpoints.resolve_config(config, registry)[1]
    if problems:
        raise ConfigError(configuration.by_line(problems))
    assert config is not None
    print(config.summary())
    return 0
