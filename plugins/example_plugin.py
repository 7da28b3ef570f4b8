"""An example hookd plugin: a CloudEvents body format, a data filter and a failure log.

A plugin is a Python file (or an importable module) with ``setup(registry, options)``. It adds
body formats, signing schemes, filters and attempt observers through the same registry methods
the built-ins use (``hookd/registry.py``). ``options`` is the plugin's ``options:`` mapping from
the YAML; refuse what you do not understand, so a typo fails ``hookd check`` instead of being
ignored.

Enable it in ``hookd.yaml`` (paths are relative to the YAML file)::

    plugins:
      - path: plugins/example_plugin.py
        options:
          source: https://app.example.com          # CloudEvents "source" (required)
          failures_log: /var/lib/hookd/failed.jsonl # optional: one JSON line per failed delivery

    endpoints:
      - id: analytics
        url: https://analytics.example.com/events
        body: cloudevents                 # the format this plugin adds
        filter: data_match                # the filter this plugin adds...
        options: {match: {tenant: acme}}  # ...reads the endpoint's options
        signing: {secret_file: secrets/analytics.secret}

What it adds:

``body: cloudevents``
    A CloudEvents 1.0 structured-mode JSON body::

        {"specversion":"1.0","id":"evt_1","source":"https://app.example.com",
         "type":"task.updated","time":"2024-05-01T12:00:00.000Z",
         "datacontenttype":"application/json","data":{"id":7}}

``filter: data_match``
    Delivers an event to the endpoint only when every ``options.match`` key equals the same key
    of the event's data (an object). An endpoint without ``match`` gets every event.

an observer
    With ``failures_log`` set, appends ``{"at", "delivery", "endpoint", "event_type",
    "attempts", "status_code", "error"}`` for every delivery that ends ``failed``. Observers run
    after the attempt is committed; one that raises is logged and ignored, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hookd.registry import AttemptOutcome, EndpointView, Event, Registry

OPTIONS = frozenset({"source", "failures_log"})


def setup(registry: Registry, options: Mapping[str, Any]) -> None:
    """Called once at start with the plugin's ``options``; raise to refuse the config."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
    source = options.get("source")
    if not isinstance(source, str) or not source:
        raise ValueError("option 'source' is required: a URI naming the event producer")

    def cloudevents(event: Event) -> bytes:
        body = {
            "specversion": "1.0",
            "id": event.id,
            "source": source,
            "type": event.type,
            "time": event.timestamp,
            "datacontenttype": "application/json",
            "data": event.data,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    registry.add_format("cloudevents", cloudevents)
    registry.add_filter("data_match", data_match)

    if "failures_log" in options:
        path = Path(str(options["failures_log"]))
        registry.add_observer(FailureLog(path))


def data_match(event: Event, endpoint: EndpointView) -> bool:
    """True when every ``endpoint.options["match"]`` pair is in the event's data."""
    match = endpoint.options.get("match") or {}
    if not match:
        return True
    data = event.data if isinstance(event.data, dict) else {}
    return all(key in data and data[key] == value for key, value in match.items())


class FailureLog:
    """Appends one JSON line per failed delivery; the file write runs off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __call__(self, outcome: AttemptOutcome) -> None:
        if outcome.final_status != "failed":
            return
        line = json.dumps(
            {
                "at": round(time.time(), 3),
                "delivery": outcome.delivery_id,
                "endpoint": outcome.endpoint,
                "event_type": outcome.event_type,
                "attempts": outcome.attempt,
                "status_code": outcome.status_code,
                "error": outcome.error,
            }
        )
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
