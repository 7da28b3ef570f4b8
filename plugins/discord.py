"""Discord: events as Discord webhook messages (``body: discord``).

Point an endpoint at a Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN) and give
it ``body: discord``. Each event becomes a message with one embed: the event type as its title,
the data as a JSON code block, the event id and tenant as fields, the event time as the embed's
timestamp::

    plugins:
      - path: plugins/discord.py
        options:
          username: hookd                      # optional: the name shown
          avatar_url: https://example.com/a.png
          color: 0x5865F2                      # optional: the embed's colour
          templates:
            deploys: "**{data.service}** deployed {data.version} ({type})"
    endpoints:
      - id: discord-ops
        url: ${DISCORD_WEBHOOK_URL}
        body: discord                          # the default layout
      - id: discord-deploys
        url: ${DISCORD_WEBHOOK_URL}
        events: ["deploy.*"]
        body: "discord:deploys"                # one line of content from the template

``template`` replaces the default layout of ``body: discord`` itself. Fields are as in
:mod:`hookd.plugin_kit`. Every message carries ``allowed_mentions: {parse: []}``, so text from
event data can never ping ``@everyone``, a role or a user.

Discord answers 429 with Retry-After when rate limited, and 404 once a webhook is deleted: a
policy with ``retry_on: [429, 5xx, timeout, network]`` and ``disable_on: [404, 410]`` fits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hookd.plugin_kit import check_template, clip, render
from hookd.registry import BodyFormat, Event, Registry

OPTIONS = frozenset({"template", "templates", "username", "avatar_url", "color"})
NO_MENTIONS = {"parse": []}


def setup(registry: Registry, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
    extras: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    for key in ("username", "avatar_url"):
        if key in options:
            extras[key] = str(options[key])
    color = options.get("color", 0x5865F2)
    if not isinstance(color, int) or isinstance(color, bool) or not 0 <= color <= 0xFFFFFF:
        raise ValueError("option 'color' is an RGB integer like 0x5865F2")
    template = options.get("template")
    if template is not None:
        registry.add_format("discord", templated(check_template(template, "template"), extras))
    else:
        registry.add_format("discord", lambda event: _dumps({**layout(event, color), **extras}))
    templates = options.get("templates") or {}
    if not isinstance(templates, Mapping):
        raise ValueError("option 'templates' maps a name to a template string")
    for name, value in templates.items():
        registry.add_format(
            f"discord:{name}", templated(check_template(value, f"templates.{name}"), extras)
        )


def layout(event: Event, color: int) -> dict[str, Any]:
    data = json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True)
    fields = [{"name": "Event", "value": f"`{event.id}`", "inline": True}]
    tenant = event.tenant
    if isinstance(tenant, str):
        fields.append({"name": "Tenant", "value": clip(tenant, 1024), "inline": True})
    return {
        "embeds": [
            {
                "title": clip(event.type, 256),
                "description": "```json\n" + clip(data, 4000) + "\n```",
                "timestamp": event.timestamp,
                "color": color,
                "fields": fields,
            }
        ]
    }


def templated(template: str, extras: Mapping[str, Any]) -> BodyFormat:
    def fmt(event: Event) -> bytes:
        return _dumps({"content": clip(render(template, event), 2000), **extras})

    return fmt


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
