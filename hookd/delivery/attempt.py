"""One attempt: the endpoint's body format, its signature, the HTTP POST.

Knows nothing of lanes or the store: :func:`attempt` turns a claimed job into the response and
the headers that were sent; the dispatcher records them. The bytes signed are the bytes sent.
A format or signer that raises or hangs (a plugin's: those run fenced, see
:mod:`hookd.isolation`) becomes a ``refused`` outcome with its error, never an exception out of
here.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import structlog

from hookd import bodies
from hookd.delivery import client
from hookd.delivery.policy import Outcome
from hookd.endpoints import Endpoint
from hookd.isolation import call_plugin
from hookd.redact import redact_custom
from hookd.registry import Event, Message
from hookd.store import Job

log = structlog.get_logger("hookd.delivery")


async def attempt(
    job: Job,
    ep: Endpoint,
    *,
    session: aiohttp.ClientSession,
    max_response_body: int,
    allow_private_networks: bool,
    now: float,
) -> tuple[dict[str, str], client.Response]:
    """POST the job to the endpoint; the headers sent (with signatures) as operators may see
    them (the endpoint's own header values hidden), and what came back."""
    headers = dict(ep.headers)
    try:
        body = await render_job(ep, job)
        message = Message(event_id=job.event_id, delivery_id=job.id, timestamp=int(now), body=body)
        headers.update(await _sign(ep, message, now))
    except Exception as exc:  # a plugin's format or signer failed: record it, don't crash
        log.warning("delivery.prepare_failed", delivery=job.id, endpoint=ep.id, error=str(exc))
        return redact_custom(headers, ep.config.headers), client.Response(
            outcome=Outcome(error="refused"),
            latency_ms=0.0,
            body=None,
            detail=f"refused: cannot build the request: {type(exc).__name__}: {exc}",
        )
    response = await client.post(
        session,
        ep.config.url,
        body,
        headers,
        timeout=ep.policy.timeout,
        max_response_body=max_response_body,
        allow_private_networks=allow_private_networks,
        now=now,
        ssl=ep.ssl,
        client_cert=ep.config.tls is not None and ep.config.tls.client_cert_pem is not None,
    )
    return redact_custom(headers, ep.config.headers), response


async def render_job(ep: Endpoint, job: Job) -> bytes:
    """The job's body in the endpoint's format: a built-in format is written around the stored
    data text (:func:`hookd.bodies.splice_for`), any other gets the event with parsed data."""
    if "format" not in ep.plugins:
        splice = bodies.splice_for(ep.body, job.data)
        if splice is not None:
            return splice(job.event_id, job.event_type, job.event_timestamp, job.data)
    return await render(ep, _event(job))


async def render(ep: Endpoint, event: Event) -> bytes:
    """The body in the endpoint's format (a plugin's runs fenced: :mod:`hookd.isolation`)."""
    owner = ep.plugins.get("format")
    if owner is None:
        return ep.body(event)
    return await call_plugin(owner, f"body format {ep.config.body!r}", ep.body, event)


async def _sign(ep: Endpoint, message: Message, now: float) -> dict[str, str]:
    owner = ep.plugins.get("signer")
    if owner is not None:
        scheme = ep.config.signing.scheme
        return await call_plugin(owner, f"signing scheme {scheme!r}", ep.signer.sign, message, now)
    if ep.signer.blocking:  # RSA: off the event loop
        return await asyncio.to_thread(ep.signer.sign, message, now)
    return ep.signer.sign(message, now)


def _event(job: Job) -> Event:
    return Event(
        id=job.event_id,
        type=job.event_type,
        timestamp=job.event_timestamp,
        data=json.loads(job.data),
        tenant=job.tenant,
    )
