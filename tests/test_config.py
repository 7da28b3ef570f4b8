"""The YAML configuration: every error as ``FILE:LINE: key.path: message``, all at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hookd import config as configuration
from hookd.config import find_config_path, load, parse
from hookd.delivery import policy
from hookd.errors import ConfigError
from tests.support import SECRET, Result, clean_env, run_hookd

ROOT = Path(__file__).resolve().parent.parent


def problems_of(
    text: str, *, env: dict[str, str] | None = None, source: str = "h.yaml"
) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, source=source, env=env or {})
    return caught.value.problems


def check(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    """``hookd check ARGS`` run in ``cwd``, with ``env`` added to a clean environment."""
    return run_hookd("check", *args, cwd=cwd, env=clean_env(**(env or {})))


# The line numbers below are this text's: every kind of mistake, once.
MANY_MISTAKES = f"""\
listen: 0.0.0.0:8080
shutdown_timeout: 30 seconds
storage:
  path: ./hookd.db
  colour: blue
policies:
  slow:
    delays: [1m, 1 hour]
endpoints:
  - id: ci
    url: https://ci.example.com/hooks
    policy: fast
    signing: {{secret: "${{CI_SECRET}}"}}
  - id: ci
    url: https://other.example.com/hooks
    signing: {{secret_file: missing.secret}}
  - id: ok
    url: https://ok.example.com/
    signing: {{secret: {SECRET}}}
"""


def test_every_problem_is_reported_at_once_with_file_line_and_key_path() -> None:
    """Seven different mistakes give seven messages, in line order, each naming line and path."""
    assert problems_of(MANY_MISTAKES) == [
        "h.yaml:1: listen: 0.0.0.0:8080 is not a loopback address; set auth.ingest_tokens or "
        "auth.admin_tokens before listening beyond this machine",
        "h.yaml:2: shutdown_timeout: expected a duration like 250ms, 10s, 10m, 1h or 7d, "
        "got '30 seconds'",
        "h.yaml:5: storage.colour: unknown key (expected one of: path, synchronous, retention, "
        "secret_key, secret_key_file)",
        "h.yaml:8: policies.slow.delays: expected a duration like 250ms, 10s, 10m, 1h or 7d, "
        "got '1 hour'",
        "h.yaml:12: endpoints[0].policy: no policy named 'fast' "
        "(known: slow, standard, taskee, taskview)",
        "h.yaml:13: endpoints[0].signing.secret: environment variable CI_SECRET is not set",
        "h.yaml:14: endpoints[1].id: duplicate endpoint id 'ci'",
        "h.yaml:16: endpoints[1].signing.secret_file: cannot read missing.secret: "
        "No such file or directory",
    ]


EP = "endpoints:\n  - id: a\n    url: https://x/\n"  # an endpoint's first three lines
SIGN = f"    signing: {{secret: {SECRET}}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limits: {max_body: 1MiB, max_items: 3}\n", "h.yaml:1: limits.max_items: unknown key"),
        (
            "delivery:\n  concurrency: 0\n",
            "h.yaml:2: delivery.concurrency: expected a whole number >= 1, got 0",
        ),
        (
            "storage: {synchronous: sometimes}\n",
            "h.yaml:1: storage.synchronous: expected one of off, normal, full, extra",
        ),
        (
            "auth:\n  admin_tokens: [short]\n",
            "h.yaml:2: auth.admin_tokens: every token needs at least 16 characters",
        ),
        (
            EP.replace("https://x/", "ftp://x/") + SIGN,
            "h.yaml:3: endpoints[0].url: expected an http:// or https:// URL",
        ),
        ("endpoints:\n  - url: https://x/\n" + SIGN, "h.yaml:2: endpoints[0].id: required"),
        (EP, "h.yaml:2: endpoints[0].signing: standard-webhooks needs secret or secret_file"),
        (
            EP + "    rate_limit: lots\n" + SIGN,
            "h.yaml:4: endpoints[0].rate_limit: expected a rate like 50/s",
        ),
        (
            EP + "    signing: {secret: 'not base64!'}\n",
            "h.yaml:4: endpoints[0].signing.secret: a standard-webhooks secret must be 'whsec_",
        ),
        (
            EP + "    signing: {scheme: hmac-sha512, secret: s}\n",
            "h.yaml:4: endpoints[0].signing.scheme: no signing scheme named 'hmac-sha512'",
        ),
        (
            EP + "    signing: {scheme: hmac-sha256, secret: s, options: {a: 1}}\n",
            "h.yaml:4: endpoints[0].signing.options: hmac-sha256 takes no options",
        ),
        (EP + "    body: xml\n" + SIGN, "h.yaml:4: endpoints[0].body: no body format named 'xml'"),
        (EP + "    filter: vip\n" + SIGN, "h.yaml:4: endpoints[0].filter: no filter named 'vip'"),
        (
            "policies:\n  p:\n    jitter: lots\n",
            "h.yaml:3: policies.p.jitter: jitter must be none, full, equal",
        ),
        (
            "policies:\n  p:\n    retry_on: [600]\n",
            "h.yaml:3: policies.p.retry_on: retry_on: 600 is neither an HTTP status code",
        ),
        (
            "policies:\n  p:\n    delays: [1s]\n    backoff: {initial: 1s, attempts: 3}\n",
            "h.yaml:4: policies.p.backoff: give either delays or backoff, not both",
        ),
        ("plugins:\n  - {path: a.py, module: b}\n", "h.yaml:2: plugins[0]: give exactly one of"),
        ("listen: 8080\nlisten: 8081\n", "h.yaml:2: listen: duplicate key"),
        ("- 1\n- 2\n", "h.yaml:1: expected a mapping, got a list"),
    ],
)
def test_each_mistake_names_its_line_and_path(text: str, expected: str) -> None:
    """One mistake per config; its message starts with FILE:LINE: key.path."""
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "listen: 127.0.0.1:8080\nendpoints:\n  - id: a\n    url: https://x/\n"
            "    events: [a, b\npolicies: {}\n",
            "h.yaml:6: endpoints[0].events: YAML syntax error: expected ',' or ']', but got ':'",
        ),
        (
            "storage:\n  path: ./x.db\n   retention: 7d\n",
            "h.yaml:3: storage: YAML syntax error: mapping values are not allowed here",
        ),
        ("a: b\n\tc: d\n", "h.yaml:2: YAML syntax error: found character '\\t'"),
    ],
)
def test_yaml_syntax_errors_name_the_line_and_the_key_being_read(text: str, expected: str) -> None:
    """A file PyYAML cannot parse still gets FILE:LINE: key.path: (the key it was inside)."""
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_env_vars_expand_inside_strings_and_type_whole_values() -> None:
    """``${VAR}`` expands anywhere in a string; a value that is only ``${VAR}`` may be a number
    or boolean where the key wants one, and stays a string where it wants a string."""
    cfg = parse(
        """
listen: "${HOST}:${PORT}"
limits:
  max_pending: ${MAX}
delivery:
  allow_private_networks: ${PRIVATE}
auth:
  ingest_tokens: ["${TOKEN}"]
endpoints:
  - id: ci
    url: https://${DOMAIN}/hooks
    signing: {scheme: hmac-sha256, secret: "${DIGITS}"}
""",
        source="h.yaml",
        env={
            "HOST": "127.0.0.1",
            "PORT": "9123",
            "MAX": "42",
            "PRIVATE": "true",
            "TOKEN": "t" * 20,
            "DOMAIN": "ci.example.com",
            "DIGITS": "123456",
        },
    )
    assert cfg.listen[0].port == 9123
    assert cfg.limits.max_pending == 42
    assert cfg.delivery.allow_private_networks is True
    assert cfg.auth.ingest_tokens == ("t" * 20,)
    assert cfg.endpoints[0].url == "https://ci.example.com/hooks"
    assert cfg.endpoints[0].signing.secret == "123456"  # a secret of digits stays a string


def test_a_typed_env_var_with_a_bad_value_is_still_an_error() -> None:
    """``max_pending: ${MAX}`` with MAX=lots is reported at that key."""
    assert problems_of("limits:\n  max_pending: ${MAX}\n", env={"MAX": "lots"}) == [
        "h.yaml:2: limits.max_pending: expected a whole number >= 1, got 'lots'"
    ]


def test_load_reads_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an explicit env, ``${VAR}`` comes from os.environ."""
    monkeypatch.setenv("HOOKD_TEST_RETENTION", "7d")
    path = tmp_path / "hookd.yaml"
    path.write_text("storage: {retention: '${HOOKD_TEST_RETENTION}'}\n")
    assert load(path).storage.retention == 7 * 86400


def test_secret_files_are_read_relative_to_the_config_and_stripped(tmp_path: Path) -> None:
    """``secret_file`` and ``private_key_file`` paths are relative to the YAML file's directory,
    and a trailing newline (as editors write) is not part of the secret."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ci").write_text("s3cret-value\n")
    (tmp_path / "secrets" / "db.key").write_text("k" * 44 + "\n")
    path = tmp_path / "hookd.yaml"
    path.write_text(
        """
storage: {path: data/hookd.db, secret_key_file: secrets/db.key}
endpoints:
  - id: ci
    url: https://ci.example.com/
    signing: {scheme: hmac-sha256, secret_file: secrets/ci}
"""
    )
    cfg = load(path)
    assert cfg.endpoints[0].signing.secret == "s3cret-value"
    assert cfg.storage.secret_key == "k" * 44
    assert cfg.storage.path == tmp_path / "data" / "hookd.db"
    assert "s3cret" not in repr(cfg)  # secrets stay out of reprs (and so out of logs)


def test_units_are_read_where_the_schema_uses_them() -> None:
    """Durations, sizes and rates in their YAML spellings become seconds, bytes and per-second."""
    cfg = parse(
        f"""
shutdown_timeout: 250ms
storage: {{retention: 7d}}
limits: {{max_body: 512KiB}}
delivery: {{max_response_body: 1KiB}}
policies:
  quick: {{timeout: 2s, delays: [10s, 10m, 1h], retry_after_max: 5m}}
endpoints:
  - id: e
    url: https://e.example.com/
    policy: quick
    rate_limit: 600/m
    signing: {{secret: {SECRET}}}
""",
        source="h.yaml",
        env={},
    )
    assert cfg.shutdown_timeout == 0.25
    assert cfg.storage.retention == 7 * 86400
    assert cfg.limits.max_body == 512 * 1024
    assert cfg.delivery.max_response_body == 1024
    assert cfg.policies["quick"].timeout == 2.0
    assert cfg.policies["quick"].delays == (10.0, 600.0, 3600.0)
    assert cfg.policies["quick"].retry_after_max == 300.0
    assert cfg.endpoints[0].rate_limit == 10.0


def test_presets_are_built_in_and_a_policy_named_like_one_starts_from_it() -> None:
    """standard, taskview and taskee exist without YAML; overriding one key keeps the others."""
    cfg = parse("policies:\n  taskview: {delays: [1s]}\n", source="h.yaml", env={})
    assert set(cfg.policies) == {"standard", "taskview", "taskee"}
    assert cfg.policies["taskview"].delays == (1.0,)
    assert cfg.policies["taskview"].disable_after == 10  # kept from the preset
    assert cfg.policies["taskview"].timeout == 10.0
    assert cfg.policies["taskee"] == policy.PRESETS["taskee"]


def test_backoff_expands_into_delays() -> None:
    """``backoff: {initial, factor, max, attempts}`` gives attempts-1 delays, capped at max."""
    cfg = parse(
        "policies:\n  b: {backoff: {initial: 1s, factor: 3, max: 20s, attempts: 5}}\n",
        source="h.yaml",
        env={},
    )
    assert cfg.policies["b"].delays == (1.0, 3.0, 9.0, 20.0)


def test_listen_may_name_several_addresses_and_tokens_allow_any_of_them() -> None:
    """A list of addresses (v4, [v6], bare port) is accepted; non-loopback needs a token."""
    cfg = parse(
        "listen: [127.0.0.1:8080, '[::1]:8081', 8082, 0.0.0.0:8083]\n"
        f"auth: {{admin_tokens: [{'a' * 32}]}}\n",
        source="h.yaml",
        env={},
    )
    assert [str(a) for a in cfg.listen] == [
        "127.0.0.1:8080",
        "[::1]:8081",
        "127.0.0.1:8082",
        "0.0.0.0:8083",
    ]


def test_the_embedded_default_is_loopback_with_a_local_database_and_no_endpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No -c, no $HOOKD_CONFIG, no ./hookd.yaml: 127.0.0.1:8080, ./hookd.db, nothing else."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOOKD_CONFIG", raising=False)
    assert find_config_path(None) is None
    cfg = load(None)
    assert cfg.source == configuration.EMBEDDED_SOURCE
    assert [str(a) for a in cfg.listen] == ["127.0.0.1:8080"]
    assert cfg.storage.path == tmp_path / "hookd.db"
    assert cfg.endpoints == ()
    assert cfg.auth.open


def test_config_file_precedence_is_flag_then_env_then_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §2: -c, then $HOOKD_CONFIG, then ./hookd.yaml, then the embedded default."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hookd.yaml").write_text("listen: 127.0.0.1:1\n")
    monkeypatch.setenv("HOOKD_CONFIG", str(tmp_path / "env.yaml"))
    assert find_config_path("flag.yaml") == Path("flag.yaml")
    assert find_config_path(None) == tmp_path / "env.yaml"
    monkeypatch.delenv("HOOKD_CONFIG")
    assert find_config_path(None) == Path("hookd.yaml")


def test_an_unreadable_file_is_one_line_naming_it(tmp_path: Path) -> None:
    """A missing file or a directory: ``FILE: cannot read: reason``."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "nope.yaml")
    assert caught.value.problems == [
        f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
    ]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert caught.value.problems == [f"{tmp_path}: cannot read: Is a directory"]


# --------------------------------------------------------------------------- hookd check


@pytest.mark.slow
def test_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    """``hookd check -c FILE`` (a real process) prints each problem on stderr, exit code 2."""
    (tmp_path / "bad.yaml").write_text(MANY_MISTAKES)
    result = check("-c", "bad.yaml", cwd=tmp_path)
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 8, result.err
    assert all(line.startswith("bad.yaml:") for line in lines)
    assert "bad.yaml:13: endpoints[0].signing.secret: environment variable CI_SECRET" in lines[5]
    assert "Traceback" not in result.err
    assert result.out == ""


@pytest.mark.slow
def test_check_reports_yaml_plugin_and_endpoint_problems_at_once_by_line(tmp_path: Path) -> None:
    """With plugins, scheme and body names are checked when the endpoints that parsed are
    resolved: those problems come with the YAML's and the plugins' own, in one run, sorted by
    line; an endpoint after one that failed keeps its own path and line."""
    (tmp_path / "plug.py").write_text("def setup(registry, options):\n    pass\n")
    (tmp_path / "h.yaml").write_text(
        f"""\
shutdown_timeout: soon
plugins:
  - {{path: plug.py}}
  - {{path: missing.py}}
endpoints:
  - id: bad-url
    url: ftp://nowhere
    signing: {{secret: {SECRET}}}
  - id: unknown-body
    url: https://a.example.com/
    body: nosuch
    signing: {{secret: {SECRET}}}
  - id: unknown-scheme
    url: https://b.example.com/
    signing: {{scheme: carrier-pigeon}}
log: {{level: loud}}
"""
    )
    result = check("-c", "h.yaml", cwd=tmp_path)
    assert result.code == 2
    lines = result.err.splitlines()
    assert [line.split(": ")[:2] for line in lines] == [
        ["h.yaml:1", "shutdown_timeout"],
        ["h.yaml:4", "plugins[1]"],
        ["h.yaml:7", "endpoints[0].url"],
        ["h.yaml:9", "endpoints[1]"],
        ["h.yaml:13", "endpoints[2]"],
        ["h.yaml:16", "log.level"],
    ], result.err
    assert "cannot load" in lines[1]
    assert "no body format named 'nosuch'" in lines[3]
    assert "no signing scheme named 'carrier-pigeon'" in lines[4]
    assert result.out == ""


@pytest.mark.slow
def test_check_summarises_a_good_file_and_exits_0(tmp_path: Path) -> None:
    """A valid file: ``ok: N endpoints, M policies, K plugins`` on stdout, exit 0."""
    (tmp_path / "good.yaml").write_text(
        f"""
policies:
  fast: {{delays: [1s]}}
endpoints:
  - {{id: a, url: "https://a.example.com/", signing: {{secret: {SECRET}}}}}
  - {{id: b, url: "https://b.example.com/", policy: fast, signing: {{secret: {SECRET}}}}}
"""
    )
    result = check("-c", "good.yaml", cwd=tmp_path)
    assert (result.code, result.out, result.err) == (
        0,
        "ok: 2 endpoints, 4 policies, 0 plugins\n",
        "",
    )


@pytest.mark.slow
def test_check_of_an_unreadable_file_says_cannot_read(tmp_path: Path) -> None:
    """``hookd check -c missing.yaml`` → ``missing.yaml: cannot read: ...``, exit 2."""
    result = check("-c", "missing.yaml", cwd=tmp_path)
    assert result.code == 2
    assert result.err == "missing.yaml: cannot read: No such file or directory\n"


@pytest.mark.slow
def test_example_config_passes_check(tmp_path: Path) -> None:
    """config.example.yaml, with the env vars and key files it names, is a valid config."""
    example = ROOT / "config.example.yaml"
    work = tmp_path / "etc"
    work.mkdir()
    (work / "hookd.yaml").write_text(example.read_text())
    (work / "plugins").mkdir()
    (work / "plugins" / "example_plugin.py").write_text(
        (ROOT / "plugins" / "example_plugin.py").read_text()
    )
    secrets = work / "secrets"
    secrets.mkdir()
    (secrets / "ci.secret").write_text(SECRET + "\n")
    from hookd.signing import generate_rsa

    private_pem, _ = generate_rsa()
    (secrets / "taskee.pem").write_bytes(private_pem)
    (secrets / "hookd-secret.key").write_text("u" * 43 + "=\n")
    env = {
        "HOOKD_INGEST_TOKEN": "ingest-token-0123456789abcdef",
        "HOOKD_ADMIN_TOKEN": "admin-token-0123456789abcdef",
        "TASKVIEW_SECRET": "taskview-shared-secret",
    }
    result = check("-c", "etc/hookd.yaml", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    assert result.out.startswith("ok: ")


def test_where_names_a_line_even_for_keys_the_file_does_not_have() -> None:
    """``Config.where`` (used for problems found after loading) falls back to the closest
    ancestor's line, or line 1, for a path absent from the file (it used to loop forever)."""
    cfg = parse("listen: 127.0.0.1:1\nendpoints: []\n", source="h.yaml", env={})
    assert cfg.where("auth") == "h.yaml:1: auth"
    assert cfg.where("endpoints[4].signing") == "h.yaml:2: endpoints[4].signing"


def test_relative_paths_are_relative_to_the_config_file_including_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the working directory, a file's relative paths start at the file's directory."""
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "hookd.yaml"
    path.write_text("plugins: [{path: p.py}]\n")
    monkeypatch.chdir(tmp_path)
    cfg = load(Path("etc/hookd.yaml"))
    assert cfg.storage.path == tmp_path / "etc" / "hookd.db"
    assert cfg.plugins[0].path == tmp_path / "etc" / "p.py"


@pytest.mark.slow
def test_check_without_c_follows_the_same_precedence_as_run(tmp_path: Path) -> None:
    """``hookd check`` with no -c: $HOOKD_CONFIG, else ./hookd.yaml, else the embedded default."""
    assert check(cwd=tmp_path).out == "ok: 0 endpoints, 3 policies, 0 plugins\n"
    (tmp_path / "hookd.yaml").write_text("policies: {mine: {delays: []}}\n")
    assert check(cwd=tmp_path).out == "ok: 0 endpoints, 4 policies, 0 plugins\n"
    (tmp_path / "env.yaml").write_text("listen: nowhere\n")
    result = check(cwd=tmp_path, env={"HOOKD_CONFIG": "env.yaml"})
    assert result.code == 2
    assert result.err.startswith("env.yaml:1: listen: expected host:port")


def test_the_example_and_the_reference_cover_every_key_of_the_schema() -> None:
    """Each key hookd accepts appears in config.example.yaml (as ``key:``, maybe commented out
    where it is an alternative) and in docs/configuration.md."""
    example = (ROOT / "config.example.yaml").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for section, keys in configuration.SCHEMA.items():
        for key in keys:
            assert re.search(rf"(^|[\s{{,#-]){key}:", example, re.M), f"{section}.{key} in example"
            assert f"`{key}`" in reference or f".{key}`" in reference, f"{section}.{key} in docs"


def test_storage_synchronous_off_is_accepted_although_yaml_reads_it_as_false(
    tmp_path: Path,
) -> None:
    """`synchronous: off` (a YAML boolean) selects SQLite's OFF level."""
    cfg = configuration.parse("storage: {synchronous: off}\n", source=str(tmp_path / "h.yaml"))
    assert cfg.storage.synchronous == "off"


def test_a_missing_env_var_is_reported_once_not_again_by_the_key_that_holds_it(
    tmp_path: Path,
) -> None:
    """An unset ${VAR} in a token list gives one problem, not a second 'too short' one."""
    path = tmp_path / "hookd.yaml"
    path.write_text('auth:\n  admin_tokens: ["${HOOKD_TEST_UNSET_TOKEN}"]\n')
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert info.value.problems == [
        f"{path}:2: auth.admin_tokens[0]: environment variable HOOKD_TEST_UNSET_TOKEN is not set"
    ]
