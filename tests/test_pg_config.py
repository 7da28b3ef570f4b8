"""``storage.backend: postgres``: the configuration, and the one-line errors a user sees when
the extra is missing, the secret key is missing or the server cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hookd.config import parse
from hookd.errors import ConfigError

BLOCK_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None;"
    " from hookd.cli import main; sys.exit(main())"
)


def run_hookd(
    tmp_path: Path, yaml_text: str, *, prelude: str | None = None, **env: str
) -> tuple[int, str]:
    """``hookd run -c FILE`` to its end; its exit code and stderr."""
    path = tmp_path / "hookd.yaml"
    path.write_text(yaml_text)
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("HOOKD_CONFIG", "HOOKD_SECRET_KEY")
    }
    full_env.update(env)
    argv = (
        [sys.executable, "-c", prelude, "run", "-c", str(path)]
        if prelude
        else [sys.executable, "-m", "hookd", "run", "-c", str(path)]
    )
    done = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


def test_postgres_takes_a_dsn_and_sqlite_none() -> None:
    cfg = parse(
        "storage: {backend: postgres, dsn: 'host=db dbname=hookd'}\n", source="h.yaml", env={}
    )
    assert (cfg.storage.backend, cfg.storage.dsn) == ("postgres", "host=db dbname=hookd")
    assert "host=db" not in repr(cfg.storage)  # the DSN may hold a password
    assert parse("storage: {path: x.db}\n", source="h.yaml", env={}).storage.backend == "sqlite"
    dsn = parse(
        "storage: {backend: postgres, dsn: '${DSN}'}\n",
        source="h.yaml",
        env={"DSN": "postgresql://h/d"},
    )
    assert dsn.storage.dsn == "postgresql://h/d"
    assert dsn.storage.lease_slack == 30.0  # SPEC §12: timeout + 30 s
    slack = parse(
        "storage: {backend: postgres, dsn: x, lease_slack: 5s}\n", source="h.yaml", env={}
    )
    assert slack.storage.lease_slack == 5.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("storage: {backend: postgres}\n", "h.yaml:1: storage.backend: postgres needs storage.dsn"),
        ("storage: {dsn: 'host=x'}\n", "h.yaml:1: storage.dsn: only used with backend: postgres"),
        (
            "storage: {backend: mysql}\n",
            "h.yaml:1: storage.backend: expected one of sqlite, postgres",
        ),
        (
            "storage: {backend: postgres, dsn: x, lease_slack: 500ms}\n",
            "h.yaml:1: storage.lease_slack: must be at least 1s",
        ),
        (
            "storage: {backend: postgres, dsn: x, lease_slack: 2h}\n",
            "h.yaml:1: storage.lease_slack: ",
        ),
        (
            "storage: {path: x.db, lease_slack: 5s}\n",
            "h.yaml:1: storage.lease_slack: only used with backend: postgres",
        ),
        (
            "storage: {backend: postgres, dsn: x, colour: 1}\n",
            "h.yaml:1: storage.colour: unknown key (expected one of: backend, dsn, retention",
        ),
    ],
)
def test_storage_mistakes_name_their_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, source="h.yaml", env={})
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


YAML = "listen: 127.0.0.1:0\nstorage: {{backend: postgres, dsn: '{dsn}'{key}}}\n"


def test_a_missing_extra_is_one_line_naming_the_install(tmp_path: Path) -> None:
    code, err = run_hookd(
        tmp_path, YAML.format(dsn="host=nowhere", key=", secret_key: k"), prelude=BLOCK_PSYCOPG
    )
    assert code != 0
    assert err.strip().count("\n") == 0, err
    assert "pip install 'hookd[postgres]'" in err


def test_postgres_needs_a_secret_key(tmp_path: Path) -> None:
    code, err = run_hookd(tmp_path, YAML.format(dsn="host=/nonexistent", key=""))
    assert code != 0
    assert err.strip().count("\n") == 0, err
    assert "storage.secret_key" in err
    assert "HOOKD_SECRET_KEY" in err


def test_an_unreachable_server_is_one_line_with_the_reason(tmp_path: Path) -> None:
    sock = tmp_path / "no-server-here"
    sock.mkdir()
    dsn = f"host={sock} dbname=hookd user=hookd password=hunter2 connect_timeout=2"
    code, err = run_hookd(tmp_path, YAML.format(dsn=dsn, key=""), HOOKD_SECRET_KEY="k" * 32)
    assert code != 0
    assert err.strip().count("\n") == 0, err
    assert "cannot connect to PostgreSQL" in err
    assert f"host={sock}" in err
    assert "hunter2" not in err
