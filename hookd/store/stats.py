"""Attempt statistics (SPEC §14), the parts every backend shares: windows, latency buckets and
percentiles, as data and pure functions.

Stats are read from *rollups* that the store keeps in the transaction that records each
attempt: per endpoint, per minute and per hour, the attempts that succeeded and failed with
the latest time of each; per endpoint, per 10 minutes and per hour, a latency histogram. A
window then costs a few thousand rollup rows however many attempts it holds.

- **Windows.** Up to 24 h a window has minute resolution: it covers every minute that overlaps
  the last ``window`` (from the start of the minute ``window`` ago to now), and ``by_minute``
  lists each of those minutes, oldest first. Longer windows (up to 30 d) have hour resolution:
  every hour that overlaps it. Rollups finer than an hour are kept 25 h, hour rollups 31 d.
- **Latency.** Each attempt's latency lands in a log bucket: bucket ``i`` holds latencies in
  ``(G^(i-1), G^i]`` ms with G = :data:`GAMMA` = 1.02, shown as the value within 1 % of
  every latency in it ((G-1)/(G+1), DDSketch's bound). Percentiles are nearest-rank (the
  smallest latency with at least p % of the attempts at or below it). When a window holds at most
  :data:`EXACT_LIMIT` attempts they are computed from the attempts themselves, exactly;
  beyond that, from the histograms of the 10-minute periods and hours that cover the window
  (which may take in up to 9 minutes before its start), within 1 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
MIN_LATENCY_MS = 0.001  # a latency of 0 (a clock that did not move) counts as 1 µs
EXACT_LIMIT = 10_000  # up to this many attempts in a window, percentiles are exact

MINUTE, TEN_MINUTES, HOUR = 60, 600, 3600
COUNT_SPANS = (MINUTE, HOUR)  # the rollup periods of attempt counts
LATENCY_SPANS = (TEN_MINUTES, HOUR)  # and of latency histograms (hundreds of buckets each)
BY_MINUTE_UP_TO = 86_400.0  # windows up to 24 h have minute resolution and by_minute
MIN_WINDOW, MAX_WINDOW = 60.0, 30 * 86_400.0
KEEP_FINE_S = 25 * 3600.0  # rollups finer than an hour older than this are no longer read
KEEP_HOURS_S = 31 * 86_400.0


def bucket(latency_ms: float) -> int:
    """The histogram bucket of a latency: ``i`` with ``G^(i-1) < latency <= G^i``."""
    return math.ceil(math.log(max(latency_ms, MIN_LATENCY_MS)) / _LOG_GAMMA - 1e-9)


def bucket_value(index: int) -> float:
    """The latency a bucket stands for: within (G-1)/(G+1) < 1 % of every latency in it."""
    return 2 * GAMMA**index / (GAMMA + 1)


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Part:
    """A run of rollup slots of one span: slots ``first..last`` (inclusive) of ``span``
    seconds each (slot = unix time // span)."""

    span: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Window:
    """What a stats request covers: ``start`` (aligned to its resolution) to ``end`` (now)."""

    seconds: float
    start: float
    end: float
    parts: tuple[Part, ...]  # the count rollups that add up to the window, without overlap
    latency_parts: tuple[Part, ...]  # the latency rollups that cover it

    @property
    def by_minute(self) -> bool:
        return self.seconds <= BY_MINUTE_UP_TO

    @property
    def minutes(self) -> range:
        """Every minute slot of the window (for ``by_minute``)."""
        return range(int(self.start // MINUTE), int(self.end // MINUTE) + 1)


def window(seconds: float, now: float) -> Window:
    """The window of ``seconds`` ending ``now``; see the module docstring for its resolution.

    Up to 24 h, the whole hours of the window come from hour rollups (the current hour's is
    complete so far) and only the time before the first whole hour from finer ones: minutes
    for counts, 10-minute periods for latency (so a latency histogram may take in up to 9
    minutes before the window's start).
    """
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise ValueError("a window is 1m to 30d")
    if seconds > BY_MINUTE_UP_TO:
        first_hour = int((now - seconds) // HOUR)
        hours = (Part(HOUR, first_hour, int(now // HOUR)),)
        return Window(seconds, first_hour * HOUR, now, hours, hours)
    start = (now - seconds) // MINUTE * MINUTE
    return Window(seconds, start, now, _split(start, now, MINUTE), _split(start, now, TEN_MINUTES))


def _split(start: float, now: float, fine: int) -> tuple[Part, ...]:
    """Slots of ``fine`` seconds up to the first whole hour from ``start``, then hours."""
    first, last = int(start // fine), int(now // fine)
    per = HOUR // fine
    last_hour = int(now // HOUR)
    whole_hour = -(-first // per)  # the first hour that starts at or after ``start``
    if whole_hour > last_hour:
        return (Part(fine, first, last),)
    if whole_hour * per == first:
        return (Part(HOUR, whole_hour, last_hour),)
    return (Part(fine, first, whole_hour * per - 1), Part(HOUR, whole_hour, last_hour))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True, slots=True)
class Tally:
    """Attempts in a window (of one endpoint, or of several together)."""

    succeeded: int = 0
    failed: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    p50: float | None = None  # latency in ms, None without attempts
    p99: float | None = None

    @property
    def attempts(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return None if self.attempts == 0 else self.succeeded / self.attempts


@dataclass(frozen=True, kw_only=True, slots=True)
class Minute:
    minute: int  # unix time // 60
    succeeded: int
    failed: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptStats:
    """Stats of a window: all the endpoints asked for together, each of them, and by minute
    (None for windows over 24 h)."""

    window: Window
    total: Tally
    endpoints: dict[str, Tally] = field(default_factory=dict)
    by_minute: list[Minute] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Counts:
    """One endpoint's summed rollups: what a backend reads before :func:`summarize`."""

    succeeded: int
    failed: int
    last_success_at: float | None
    last_failure_at: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Ranked:
    """Exact percentiles of the attempts on record in a window (how many there are, and the
    nearest-rank p50 and p99 of their latencies): a backend ranks them itself (see
    :func:`rank`)."""

    count: int
    p50: float
    p99: float


def rank(p: int, count: int) -> int:
    """The 1-based nearest rank of the p-th percentile among ``count`` values (integers only,
    so a backend's SQL can say the same: ``(p * count + 99) / 100``)."""
    return (p * count + 99) // 100


def nearest_rank(sorted_values: Sequence[float], p: int) -> float | None:
    """The p-th percentile (0 < p <= 100) of sorted values, nearest-rank; None when empty."""
    if not sorted_values:
        return None
    return sorted_values[rank(p, len(sorted_values)) - 1]


def histogram_rank(histogram: Mapping[int, int], p: int) -> float | None:
    """The p-th percentile from ``{bucket: count}``: the value of the bucket holding the
    nearest-rank attempt."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = rank(p, total)
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= wanted:
            return bucket_value(index)
    raise AssertionError("unreachable: the ranks add up to the total")  # pragma: no cover


def _percentiles(
    histogram: Mapping[int, int], exact: Ranked | None, attempts: int
) -> tuple[float | None, float | None]:
    if attempts == 0:
        return None, None
    p50: float | None
    p99: float | None
    if exact is not None and exact.count == attempts:  # every attempt is still on record
        p50, p99 = exact.p50, exact.p99
    else:
        p50, p99 = histogram_rank(histogram, 50), histogram_rank(histogram, 99)
    return (
        None if p50 is None else round(p50, 3),
        None if p99 is None else round(p99, 3),
    )


def _latest(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarize(
    win: Window,
    counts: Mapping[str, Counts],
    histograms: Mapping[str, Mapping[int, int]],
    *,
    exact: Mapping[str, Ranked] | None = None,
    exact_total: Ranked | None = None,
    minutes: Mapping[int, tuple[int, int]] | None = None,
) -> AttemptStats:
    """Stats from what a backend read: per endpoint the summed rollups (``counts``) and the
    latency ``histograms``; when the window holds few enough attempts, their exact percentiles
    per endpoint and together (``exact``, ``exact_total``); and the per-minute (succeeded,
    failed) of all of them together (``minutes``, for ``by_minute``)."""
    tallies: dict[str, Tally] = {}
    merged: dict[int, int] = {}
    for endpoint, c in counts.items():
        histogram = histograms.get(endpoint, {})
        for index, n in histogram.items():
            merged[index] = merged.get(index, 0) + n
        ranked = exact.get(endpoint) if exact is not None else None
        p50, p99 = _percentiles(histogram, ranked, c.succeeded + c.failed)
        tallies[endpoint] = Tally(
            succeeded=c.succeeded,
            failed=c.failed,
            last_success_at=c.last_success_at,
            last_failure_at=c.last_failure_at,
            p50=p50,
            p99=p99,
        )
    p50, p99 = _percentiles(merged, exact_total, sum(t.attempts for t in tallies.values()))
    total = Tally(
        succeeded=sum(t.succeeded for t in tallies.values()),
        failed=sum(t.failed for t in tallies.values()),
        last_success_at=_latest(t.last_success_at for t in tallies.values()),
        last_failure_at=_latest(t.last_failure_at for t in tallies.values()),
        p50=p50,
        p99=p99,
    )
    series = None
    if win.by_minute:
        got = minutes or {}
        series = [
            Minute(minute=m, succeeded=got.get(m, (0, 0))[0], failed=got.get(m, (0, 0))[1])
            for m in win.minutes
        ]
    return AttemptStats(window=win, total=total, endpoints=tallies, by_minute=series)
