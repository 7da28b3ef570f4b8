"""Retry policy: presets, jitter, parsing and the retry decision, all pure and seeded."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from hookd.delivery.policy import (
    PRESETS,
    Jitter,
    Outcome,
    RetryClass,
    RetryPolicy,
    backoff_delays,
    is_retryable,
    next_delay,
    parse_jitter,
    parse_retry_after,
    parse_retry_on,
)

DRAWS = 2_000
OK = Outcome(status_code=200)
HTTP_429 = Outcome(status_code=429)
HTTP_500 = Outcome(status_code=500)
TIMEOUT = Outcome(error="timeout")
NETWORK = Outcome(error="network")
REFUSED = Outcome(error="refused")


class EndsRandom(random.Random):
    """A Random whose ``uniform(a, b)`` always returns one end, to pin formulas at their bounds."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


def policy(**kwargs: Any) -> RetryPolicy:
    """A policy retrying after 10s then 20s (3 attempts), without jitter unless told."""
    fields: dict[str, Any] = {"name": "t", "delays": (10.0, 20.0), **kwargs}
    return RetryPolicy(**fields)


# --- presets ---------------------------------------------------------------------------------


def test_presets_are_exactly_the_three_built_ins() -> None:
    assert set(PRESETS) == {"standard", "taskview", "taskee"}
    assert all(p.name == name for name, p in PRESETS.items())
    with pytest.raises(TypeError):
        PRESETS["fast"] = PRESETS["standard"]  # type: ignore[index]


def test_taskview_preset_matches_spec() -> None:
    p = PRESETS["taskview"]
    assert p.timeout == 10.0
    assert p.retry_on == frozenset({"non-2xx", "timeout", "network"})
    assert p.delays == (10.0, 20.0)
    assert p.max_attempts == 3
    assert p.jitter == Jitter(kind="percent", fraction=0.1)
    assert p.honor_retry_after is True
    assert p.disable_after == 10


def test_taskee_preset_matches_spec() -> None:
    p = PRESETS["taskee"]
    assert p.timeout == 30.0
    assert p.retry_on == frozenset({429})
    assert p.delays == (600.0,) * 6
    assert p.max_attempts == 7
    assert p.jitter == Jitter(kind="range", low=5.0, high=300.0)
    assert p.honor_retry_after is True
    assert p.disable_after == 0


def test_standard_preset_matches_standard_webhooks_schedule() -> None:
    p = PRESETS["standard"]
    assert p.timeout == 15.0
    assert p.retry_on == frozenset({"non-2xx", "timeout", "network"})
    assert p.delays == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    assert p.max_attempts == 8
    assert p.jitter == Jitter(kind="percent", fraction=0.1)
    assert p.honor_retry_after is True
    assert p.disable_after == 0


@pytest.mark.parametrize(
    ("name", "failure", "bounds"),
    [
        ("taskview", HTTP_500, [(9.0, 11.0), (18.0, 22.0)]),
        ("taskee", HTTP_429, [(605.0, 900.0)] * 6),
        ("standard", HTTP_500, [(0.9 * d, 1.1 * d) for d in PRESETS["standard"].delays]),
    ],
)
def test_preset_waits_stay_within_documented_bounds_and_reach_both_ends(
    name: str, failure: Outcome, bounds: list[tuple[float, float]]
) -> None:
    """Every draw is inside the documented window; the extremes come within 1% of its ends."""
    p = PRESETS[name]
    rng = random.Random(1234)
    for attempt, (low, high) in enumerate(bounds, start=1):
        waits = [next_delay(p, attempt, failure, rng) for _ in range(DRAWS)]
        values = [w for w in waits if w is not None]
        assert len(values) == DRAWS
        assert low <= min(values)
        assert max(values) <= high
        slack = (high - low) * 0.01
        assert min(values) < low + slack
        assert max(values) > high - slack
    assert next_delay(p, len(bounds) + 1, failure, rng) is None


# --- jitter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jitter", "low", "high"),
    [
        (Jitter(), 100.0, 100.0),
        (Jitter(kind="full"), 0.0, 100.0),
        (Jitter(kind="equal"), 50.0, 100.0),
        (Jitter(kind="percent", fraction=0.1), 90.0, 110.0),
        (Jitter(kind="percent", fraction=1.0), 0.0, 200.0),
        (Jitter(kind="range", low=5.0, high=300.0), 105.0, 400.0),
        (Jitter(kind="range", low=0.0, high=0.0), 100.0, 100.0),
    ],
)
def test_jitter_bounds_for_a_100s_delay(jitter: Jitter, low: float, high: float) -> None:
    """The formula's ends are exact and every seeded draw lies between them."""
    assert jitter.apply(100.0, EndsRandom("low")) == pytest.approx(low)
    assert jitter.apply(100.0, EndsRandom("high")) == pytest.approx(high)
    rng = random.Random(42)
    draws = [jitter.apply(100.0, rng) for _ in range(DRAWS)]
    assert all(low <= d <= high for d in draws)
    if high > low:
        slack = (high - low) * 0.01
        assert min(draws) < low + slack
        assert max(draws) > high - slack


@pytest.mark.parametrize(
    ("jitter", "formula"),
    [
        (Jitter(), lambda d, r: d),
        (Jitter(kind="full"), lambda d, r: r.uniform(0, d)),
        (Jitter(kind="equal"), lambda d, r: d / 2 + r.uniform(0, d / 2)),
        (Jitter(kind="percent", fraction=0.25), lambda d, r: r.uniform(d * 0.75, d * 1.25)),
        (Jitter(kind="range", low=5.0, high=300.0), lambda d, r: d + r.uniform(5, 300)),
    ],
)
def test_jitter_follows_the_spec_formula_draw_for_draw(
    jitter: Jitter, formula: Callable[[float, random.Random], float]
) -> None:
    """Same seed, same draws: apply() is exactly the SPEC §7 formula."""
    ours, theirs = random.Random(7), random.Random(7)
    for delay in (0.0, 1.0, 10.0, 600.0):
        assert jitter.apply(delay, ours) == pytest.approx(formula(delay, theirs))


@pytest.mark.parametrize(
    "jitter",
    [Jitter(kind="full"), Jitter(kind="equal"), Jitter(kind="percent", fraction=1.0), Jitter()],
)
def test_jitter_is_never_negative(jitter: Jitter) -> None:
    assert jitter.apply(-5.0, EndsRandom("low")) == 0.0
    assert jitter.apply(0.0, EndsRandom("low")) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "gaussian"}, "gaussian"),
        ({"kind": "percent", "fraction": 1.5}, "150%"),
        ({"kind": "percent", "fraction": -0.1}, "-10%"),
        ({"kind": "range", "low": 10.0, "high": 5.0}, "10.0..5.0"),
        ({"kind": "range", "low": -1.0, "high": 5.0}, "-1.0..5.0"),
    ],
)
def test_jitter_rejects_impossible_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Jitter(**kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", Jitter()),
        ("full", Jitter(kind="full")),
        ("equal", Jitter(kind="equal")),
        (" Full ", Jitter(kind="full")),
        ("10%", Jitter(kind="percent", fraction=0.1)),
        ("2.5 %", Jitter(kind="percent", fraction=0.025)),
        ("0%", Jitter(kind="percent", fraction=0.0)),
        ("100%", Jitter(kind="percent", fraction=1.0)),
        ("0s..5m", Jitter(kind="range", low=0.0, high=300.0)),
        ("5s..5m", Jitter(kind="range", low=5.0, high=300.0)),
        ("250ms..1s", Jitter(kind="range", low=0.25, high=1.0)),
        ("0..10s", Jitter(kind="range", low=0.0, high=10.0)),
    ],
)
def test_parse_jitter_accepts_every_spelling(text: str, expected: Jitter) -> None:
    assert parse_jitter(text) == expected


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("gaussian", "'gaussian'"),
        ("", "''"),
        ("10", "'10'"),
        ("150%", "'150%'"),
        ("-10%", "'-10%'"),
        ("5m..5s", "'5m..5s'"),
        ("5s..", "'5s..'"),
        ("5 apples..6 pears", "'5 apples..6 pears'"),
        (0.1, "0.1"),
        (None, "None"),
        (["full"], r"\['full'\]"),
    ],
)
def test_parse_jitter_rejects_bad_values_naming_them(value: object, named: str) -> None:
    with pytest.raises(ValueError, match=f"got {named}"):
        parse_jitter(value)


# --- retry_on --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["non-2xx", "timeout", "network"], {"non-2xx", "timeout", "network"}),
        ([429], {429}),
        (["5xx", 408], {"5xx", 408}),
        (["4xx", "5XX"], {"4xx", "5xx"}),
        (["429", " 503 "], {429, 503}),
        ((100, 599), {100, 599}),
        ([429, "429"], {429}),
        ([], set()),
    ],
)
def test_parse_retry_on_accepts_classes_and_codes(items: object, expected: set[RetryClass]) -> None:
    assert parse_retry_on(items) == frozenset(expected)


@pytest.mark.parametrize(
    ("items", "named"),
    [
        (["5xx", "6xx"], "'6xx'"),
        ([99], "99"),
        ([600], "600"),
        (["4290"], "'4290'"),
        (["http-error"], "'http-error'"),
        ([True], "True"),
        ([4.29], "4.29"),
        ([None], "None"),
        ("5xx", "'5xx'"),
        (429, "429"),
        ({"5xx": 1}, r"\{'5xx': 1\}"),
    ],
)
def test_parse_retry_on_rejects_bad_items_naming_them(items: object, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_retry_on(items)


def test_policy_rejects_retry_classes_that_were_not_parsed() -> None:
    with pytest.raises(ValueError, match="'5XX'"):
        policy(retry_on=frozenset({"5XX"}))


# --- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"initial": 1.0, "factor": 2.0, "max": 60.0, "attempts": 1}, ()),
        ({"initial": 1.0, "factor": 2.0, "max": 60.0, "attempts": 2}, (1.0,)),
        (
            {"initial": 1.0, "factor": 2.0, "max": 10.0, "attempts": 7},
            (1.0, 2.0, 4.0, 8.0, 10.0, 10.0),
        ),
        ({"initial": 5.0, "factor": 1.0, "max": 5.0, "attempts": 4}, (5.0, 5.0, 5.0)),
        ({"initial": 30.0, "factor": 3.0, "max": 3600.0, "attempts": 4}, (30.0, 90.0, 270.0)),
        ({"initial": 0.0, "factor": 2.0, "max": 1.0, "attempts": 3}, (0.0, 0.0)),
    ],
)
def test_backoff_delays(kwargs: dict[str, Any], expected: tuple[float, ...]) -> None:
    """backoff(initial, factor, max, attempts) lists attempts-1 delays, each factor times the last,
    capped at max."""
    assert backoff_delays(**kwargs) == expected


def test_backoff_caps_long_schedules_without_overflow() -> None:
    """A thousand attempts at factor 10 stay capped at max instead of overflowing."""
    delays = backoff_delays(initial=1.0, factor=10.0, max=86400.0, attempts=1000)
    assert len(delays) == 999
    assert delays[-1] == 86400.0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"initial": 1.0, "factor": 2.0, "max": 60.0, "attempts": 0}, "attempts"),
        ({"initial": 1.0, "factor": 2.0, "max": 60.0, "attempts": True}, "attempts"),
        ({"initial": -1.0, "factor": 2.0, "max": 60.0, "attempts": 3}, "initial"),
        ({"initial": 1.0, "factor": 0.5, "max": 60.0, "attempts": 3}, "factor"),
        ({"initial": 10.0, "factor": 2.0, "max": 5.0, "attempts": 3}, "max"),
    ],
)
def test_backoff_rejects_nonsense(kwargs: dict[str, Any], named: str) -> None:
    """Zero attempts, a negative start, a shrinking factor or a max below the start are refused."""
    with pytest.raises(ValueError, match=named):
        backoff_delays(**kwargs)


# --- classification --------------------------------------------------------------------------

ANY_FAILURE: frozenset[RetryClass] = frozenset({"non-2xx", "timeout", "network"})


@pytest.mark.parametrize(
    ("retry_on", "outcome", "retryable"),
    [
        (ANY_FAILURE, Outcome(status_code=200), False),
        (ANY_FAILURE, Outcome(status_code=204), False),
        (ANY_FAILURE, Outcome(status_code=299), False),
        (ANY_FAILURE, Outcome(status_code=301), True),
        (ANY_FAILURE, Outcome(status_code=404), True),
        (ANY_FAILURE, Outcome(status_code=500), True),
        (ANY_FAILURE, Outcome(status_code=199), True),
        (ANY_FAILURE, TIMEOUT, True),
        (ANY_FAILURE, NETWORK, True),
        (ANY_FAILURE, REFUSED, False),
        (ANY_FAILURE, Outcome(status_code=200, error="timeout"), True),
        (frozenset({429}), HTTP_429, True),
        (frozenset({429}), HTTP_500, False),
        (frozenset({429}), Outcome(status_code=404), False),
        (frozenset({429}), TIMEOUT, False),
        (frozenset({429}), NETWORK, False),
        (frozenset({429}), REFUSED, False),
        (frozenset({"4xx"}), Outcome(status_code=400), True),
        (frozenset({"4xx"}), Outcome(status_code=499), True),
        (frozenset({"4xx"}), Outcome(status_code=500), False),
        (frozenset({"4xx"}), Outcome(status_code=302), False),
        (frozenset({"5xx"}), Outcome(status_code=500), True),
        (frozenset({"5xx"}), Outcome(status_code=599), True),
        (frozenset({"5xx"}), Outcome(status_code=429), False),
        (frozenset({"5xx"}), TIMEOUT, False),
        (frozenset({"5xx", 408}), Outcome(status_code=408), True),
        (frozenset({"5xx", 408}), Outcome(status_code=409), False),
        (frozenset({"timeout"}), TIMEOUT, True),
        (frozenset({"timeout"}), NETWORK, False),
        (frozenset({"timeout"}), HTTP_500, False),
        (frozenset({"network"}), NETWORK, True),
        (frozenset({"network"}), TIMEOUT, False),
        (frozenset({"non-2xx"}), TIMEOUT, False),
        (frozenset({200}), OK, False),
        (frozenset(), HTTP_500, False),
    ],
)
def test_is_retryable_table(
    retry_on: frozenset[RetryClass], outcome: Outcome, retryable: bool
) -> None:
    """A failure is retried exactly when its class or status code is in retry_on; a success
    or a refused (SSRF) destination never is."""
    assert is_retryable(policy(retry_on=retry_on), outcome) is retryable


@pytest.mark.parametrize(
    ("outcome", "succeeded"),
    [(OK, True), (Outcome(status_code=204), True), (HTTP_500, False), (TIMEOUT, False)],
)
def test_outcome_succeeded_means_2xx(outcome: Outcome, succeeded: bool) -> None:
    assert outcome.succeeded is succeeded


def test_outcome_needs_a_status_or_an_error() -> None:
    with pytest.raises(ValueError, match="status_code or an error"):
        Outcome()


# --- next_delay ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "outcome", "expected"),
    [
        (1, HTTP_500, 10.0),
        (2, HTTP_500, 20.0),
        (3, HTTP_500, None),
        (4, HTTP_500, None),
        (1, TIMEOUT, 10.0),
        (1, OK, None),
        (1, REFUSED, None),
    ],
)
def test_next_delay_walks_the_schedule_then_stops(
    attempt: int, outcome: Outcome, expected: float | None
) -> None:
    assert next_delay(policy(), attempt, outcome, random.Random(0)) == expected


def test_empty_delays_mean_a_single_attempt() -> None:
    p = policy(delays=())
    assert p.max_attempts == 1
    assert next_delay(p, 1, HTTP_500, random.Random(0)) is None


def test_next_delay_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        next_delay(policy(), 0, HTTP_500, random.Random(0))


def test_next_delay_applies_the_policy_jitter() -> None:
    p = policy(jitter=Jitter(kind="full"))
    ours, theirs = random.Random(3), random.Random(3)
    assert next_delay(p, 2, HTTP_500, ours) == theirs.uniform(0, 20.0)


@pytest.mark.parametrize(
    ("kwargs", "retry_after", "expected"),
    [
        ({}, 120.0, 120.0),  # larger Retry-After wins
        ({}, 3.0, 10.0),  # smaller Retry-After does not shorten the policy delay
        ({}, 0.0, 10.0),
        ({}, 7200.0, 3600.0),  # capped by the default retry_after_max of 1h
        ({"retry_after_max": 60.0}, 120.0, 60.0),
        ({"retry_after_max": 5.0}, 120.0, 10.0),  # cap below the delay: the delay stands
        ({"honor_retry_after": False}, 120.0, 10.0),
        ({}, None, 10.0),
    ],
)
def test_retry_after_is_honoured_within_its_cap(
    kwargs: dict[str, Any], retry_after: float | None, expected: float
) -> None:
    outcome = Outcome(status_code=503, retry_after=retry_after)
    assert next_delay(policy(**kwargs), 1, outcome, random.Random(0)) == expected


def test_retry_after_compares_against_the_jittered_delay() -> None:
    p = policy(jitter=Jitter(kind="range", low=100.0, high=100.0))
    assert next_delay(p, 1, Outcome(status_code=503, retry_after=60.0), random.Random(0)) == 110.0


@pytest.mark.parametrize(
    ("retry_on", "outcome"),
    [
        (frozenset({429}), Outcome(status_code=503, retry_after=120.0)),
        (ANY_FAILURE, Outcome(status_code=200, retry_after=120.0)),
        (ANY_FAILURE, Outcome(error="refused", retry_after=120.0)),
    ],
)
def test_retry_after_is_ignored_when_the_outcome_is_not_retryable(
    retry_on: frozenset[RetryClass], outcome: Outcome
) -> None:
    assert next_delay(policy(retry_on=retry_on), 1, outcome, random.Random(0)) is None


def test_retry_after_does_not_extend_an_exhausted_schedule() -> None:
    outcome = Outcome(status_code=429, retry_after=30.0)
    assert next_delay(PRESETS["taskview"], 3, outcome, random.Random(0)) is None


# --- Retry-After parsing ---------------------------------------------------------------------

NOW = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # obsolete RFC 850
        ("Wed Oct 21 07:28:30 2015", 30.0),  # obsolete asctime
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: never negative
        ("Tue, 20 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(header: str, expected: float) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "soon",
        "-5",
        "1.5",
        "12abc",
        "١٢٠",  # Arabic-Indic digits are not delta-seconds
        "Wed, 21 Oct 2015",
        "Wed, 21 Oct 2015 25:00:00 GMT",
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Mon, 01 Jan 99999999999 00:00:00 GMT",
        "9" * 400,
    ],
)
def test_parse_retry_after_returns_none_for_garbage(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


# --- policy validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"timeout": 0.0}, "timeout"),
        ({"delays": (10.0, -1.0)}, "-1.0"),
        ({"retry_after_max": -1.0}, "retry_after_max"),
        ({"disable_after": -1}, "disable_after"),
    ],
)
def test_policy_rejects_impossible_values(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        policy(**kwargs)
