"""Prometheus metrics, on a registry of the daemon's own (several daemons can share a process).

Counters: ``hookd_events_ingested_total``, ``hookd_deliveries_created_total``,
``hookd_attempts_total{result}``, ``hookd_deliveries_finished_total{status}``,
``hookd_retention_purged_total{kind}``. Histograms: ``hookd_attempt_duration_seconds`` and
``hookd_store_commit_batch_ops`` (operations per SQLite transaction). Gauges, read at scrape time
(:func:`hookd.api.status.gauges`): pending, scheduled and in-flight deliveries, endpoints and
disabled endpoints, timer wheel size, database bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hookd.delivery.policy import Outcome

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "hookd_events_ingested", "Events accepted (new, not repeats)", registry=r
        )
        self.deliveries_created = Counter(
            "hookd_deliveries_created", "Deliveries created by ingest, test and replay", registry=r
        )
        self.attempts = Counter(
            "hookd_attempts", "Delivery attempts by result", ["result"], registry=r
        )
        self.deliveries = Counter(
            "hookd_deliveries_finished",
            "Deliveries that reached a final state",
            ["status"],
            registry=r,
        )
        self.latency = Histogram(
            "hookd_attempt_duration_seconds",
            "Time from sending a delivery to the end of the capped response read",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.purged = Counter(
            "hookd_retention_purged", "Rows deleted by retention", ["kind"], registry=r
        )
        self.commit_batch = Histogram(
            "hookd_store_commit_batch_ops",
            "Operations folded into one SQLite transaction (group commit)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        # every series shows from the first scrape; the children are kept, since labels() costs
        # more than the inc() it leads to and runs once per attempt
        self._finished = {s: self.deliveries.labels(status=s) for s in ("succeeded", "failed")}
        self._results = {
            result: self.attempts.labels(result=result)
            for result in ("success", "http_error", "timeout", "network", "refused")
        }
        for kind in ("deliveries", "attempts", "events"):
            self.purged.labels(kind=kind)

    def attempt(self, status: str, seconds: float, outcome: Outcome) -> None:
        if outcome.succeeded:
            result = "success"
        elif outcome.error is not None:
            result = outcome.error
        else:
            result = "http_error"
        self._results[result].inc()  # every result an Outcome can have is kept
        self.latency.observe(seconds)
        finished = self._finished.get(status)
        if finished is not None:
            finished.inc()

    def gauges(self, read: Callable[[], dict[str, float]]) -> None:
        """Register gauges computed at scrape time from ``read()``."""
        self.registry.register(_Gauges(read))

    def render(self, batch_sizes: list[int]) -> bytes:
        for size in batch_sizes:
            self.commit_batch.observe(size)
        batch_sizes.clear()
        return generate_latest(self.registry)


_GAUGE_HELP = {
    "hookd_deliveries_pending": "Deliveries waiting for their first or next attempt",
    "hookd_deliveries_scheduled": "Deliveries held in the timer wheel (the near future)",
    "hookd_deliveries_in_flight": "Attempts under way",
    "hookd_endpoints": "Endpoints known",
    "hookd_endpoints_disabled": "Endpoints disabled (by an operator or automatically)",
    "hookd_wheel_size": "Entries in the timer wheel",
    "hookd_database_bytes": "Size of the SQLite file with its WAL",
}


class _Gauges(Collector):
    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self.read()
        for name, help_text in _GAUGE_HELP.items():
            yield GaugeMetricFamily(name, help_text, value=values.get(name, 0.0))

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text in _GAUGE_HELP.items():
            yield GaugeMetricFamily(name, help_text)
