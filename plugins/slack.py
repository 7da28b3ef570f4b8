"""Slack: events as Slack incoming-webhook messages (``body: slack``).

Point an endpoint at a Slack incoming webhook URL (https://hooks.slack.com/services/...) and give
it ``body: slack``. Each event becomes a message with a readable default layout: the event type
as the header, its id, time and tenant as small print, and its data as a JSON code block::

    plugins:
      - path: plugins/slack.py
        options:
          username: hookd                      # optional: the name shown (legacy webhooks)
          icon_emoji: ":bell:"                 # optional
          templates:                           # optional: more formats, "slack:<name>"
            tasks: "*{data.task.title}* was {type} by {data.user.name}"
    endpoints:
      - id: slack-ops
        url: ${SLACK_WEBHOOK_URL}
        events: ["hookd.*", "task.*"]
        body: slack                            # the default layout
      - id: slack-tasks
        url: ${SLACK_TASKS_WEBHOOK_URL}
        events: ["task.*"]
        body: "slack:tasks"                    # one line from the template

``template`` (one string) replaces the default layout of ``body: slack`` itself. Template fields
are ``{type}``, ``{id}``, ``{timestamp}``, ``{tenant}``, ``{data}`` and dotted paths into the data
(``{data.items.0.sku}``); see :mod:`hookd.plugin_kit`. Inserted values are escaped for Slack
(``&``, ``<``, ``>``), so event data cannot ping ``<!channel>`` or forge links.

Slack ignores the signature headers hookd adds; Slack's retry advice (it answers 429 with
Retry-After when rate limited) fits the ``taskee`` policy or a policy retrying ``[429, 5xx]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hookd.plugin_kit import check_template, clip, render, text
from hookd.registry import BodyFormat, Event, Registry

OPTIONS = frozenset({"template", "templates", "username", "icon_emoji"})
SECTION_LIMIT = 2900  # Slack allows 3,000 characters in a section's text


def setup(registry: Registry, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
    extras = {key: str(options[key]) for key in ("username", "icon_emoji") if key in options}
    template = options.get("template")
    if template is not None:
        registry.add_format("slack", templated(check_template(template, "template"), extras))
    else:
        registry.add_format("slack", lambda event: _dumps({**layout(event), **extras}))
    templates = options.get("templates") or {}
    if not isinstance(templates, Mapping):
        raise ValueError("option 'templates' maps a name to a template string")
    for name, value in templates.items():
        checked = check_template(value, f"templates.{name}")
        registry.add_format(f"slack:{name}", templated(checked, extras))


def escape(value: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def layout(event: Event) -> dict[str, Any]:
    """The default message: header, context line, data as a code block; ``text`` as fallback."""
    data = json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True)
    tenant = event.tenant
    context = f"`{escape(event.id)}` · {escape(event.timestamp)}"
    if isinstance(tenant, str):
        context += f" · tenant {escape(tenant)}"
    return {
        "text": clip(f"{event.type}: {text(event.data)}", 300),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(event.type, 150)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "```" + clip(escape(data), SECTION_LIMIT) + "```",
                },
            },
        ],
    }


def templated(template: str, extras: Mapping[str, str]) -> BodyFormat:
    def fmt(event: Event) -> bytes:
        return _dumps({"text": clip(render(template, event, escape), 3000), **extras})

    return fmt


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
