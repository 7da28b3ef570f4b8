"""Finding and loading hookd.yaml (SPEC §2, §5): a file, or the embedded default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hookd.config import files, sections
from hookd.config.model import EMBEDDED_SOURCE, Config
from hookd.config.paths import by_line
from hookd.config.yamlread import YamlReader, compose
from hookd.errors import ConfigError

EMBEDDED_DEFAULT = """\
listen: 127.0.0.1:8080
storage: {path: ./hookd.db}
"""


def find_config_path(explicit: str | None) -> Path | None:
    """SPEC §2: ``-c``, else ``$HOOKD_CONFIG``, else ``./hookd.yaml``, else the embedded default."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("HOOKD_CONFIG"):
        return Path(env)
    local = Path("hookd.yaml")
    return local if local.exists() else None


def load(path: Path | None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file (or the embedded default). Raises ConfigError."""
    if path is None:
        return parse(EMBEDDED_DEFAULT, source=EMBEDDED_SOURCE, env=env)
    return parse(_read(path), source=str(path), env=env)


def load_partial(
    path: Path | None, *, env: Mapping[str, str] | None = None
) -> tuple[Config | None, list[str]]:
    """Every problem of a config file (``hookd check``) and the Config of what parsed: its
    endpoints and plugins are those without problems. None when the file is not readable YAML.
    """
    try:
        if path is None:
            return _parse(EMBEDDED_DEFAULT, source=EMBEDDED_SOURCE, env=env)
        return _parse(_read(path), source=str(path), env=env)
    except ConfigError as exc:
        return None, exc.problems


def parse(text: str, *, source: str, env: Mapping[str, str] | None = None) -> Config:
    """The Config of a YAML text; ``source`` names it in messages. Raises ConfigError."""
    config, problems = _parse(text, source=source, env=env)
    if problems:
        raise ConfigError(problems)
    return config


def _read(path: Path) -> str:
    try:
        return files.read_text(path, files.MAX_CONFIG_BYTES)
    except (OSError, ValueError) as exc:  # FileTooLarge and UnicodeDecodeError are ValueErrors
        raise ConfigError([f"{path}: cannot read: {files.reason(exc)}"]) from exc


def _parse(
    text: str, *, source: str, env: Mapping[str, str] | None = None
) -> tuple[Config, list[str]]:
    """The Config of what parsed and every problem, by line. Raises ConfigError if not YAML."""
    base = Path(source).absolute().parent if source != EMBEDDED_SOURCE else Path.cwd()
    node = compose(text, source)
    doc = YamlReader(source=source, env=os.environ if env is None else env)
    raw = doc.to_python(node, "") if node is not None else {}
    config = sections.build(doc, raw, base=base)
    return config, by_line(doc.problems)
