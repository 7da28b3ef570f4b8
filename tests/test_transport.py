"""Endpoint transport (SPEC §13): a private CA and mutual TLS per endpoint, from the YAML and
from the API, and ``delivery.proxy`` for static egress. Real TLS receivers (trustme), a real
CONNECT/absolute-URI proxy, everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from aiohttp import web
from cryptography import x509

from hookd.config import parse
from hookd.errors import ConfigError
from tests.support import Daemon, Receiver, running_daemon, wait_for

ADMIN = "admin-token-0123456789"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# --------------------------------------------------------------------------- real parts


@dataclass
class TLSReceiver:
    """An HTTPS receiver on 127.0.0.1 with a certificate from a private CA; with ``clients``,
    it requires a client certificate from that CA (mutual TLS)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        self.requests.append({"path": request.path, "peer": peer, "body": await request.read()})
        return web.Response(text="ok")


@contextlib.asynccontextmanager
async def tls_receiver(
    ca: trustme.CA, clients: trustme.CA | None = None
) -> AsyncIterator[TLSReceiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if clients is not None:
        clients.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    rec = TLSReceiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    rec.url = f"https://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


@dataclass
class Proxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels and absolute-URI requests, each recorded."""

    url: str = ""
    lines: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
            first, *rest = head.split("\r\n")
            headers = dict(line.split(": ", 1) for line in rest if ": " in line)
            self.lines.append(first)
            self.auth.append(headers.get("Proxy-Authorization"))
            method, target, version = first.split(" ")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                url = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
                kept = [line for line in rest if line and not line.lower().startswith("proxy-")]
                up_writer.write(f"{method} {url.path} {version}\r\n".encode())
                up_writer.write(("\r\n".join(kept) + "\r\n\r\n").encode("latin-1"))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


@contextlib.asynccontextmanager
async def proxy() -> AsyncIterator[Proxy]:
    rec = Proxy()
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    rec.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield rec
    finally:
        server.close()
        for task in list(rec.tasks):
            task.cancel()
        await asyncio.gather(*rec.tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def clients() -> trustme.CA:
    return trustme.CA()


def write_pems(folder: Path, ca: trustme.CA, clients: trustme.CA) -> trustme.LeafCert:
    """ca.pem (the receiver's CA), client.pem and client.key (a client certificate)."""
    client = clients.issue_cert("hookd-client@example.com")
    (folder / "ca.pem").write_bytes(ca.cert_pem.bytes())
    (folder / "client.pem").write_bytes(client.cert_chain_pems[0].bytes())
    (folder / "client.key").write_bytes(client.private_key_pem.bytes())
    return client


def yaml_config(*endpoints: str, delivery: str = "allow_private_networks: true") -> str:
    return (
        "listen: 127.0.0.1:{port}\nstorage: {{path: {db}}}\n"
        f"auth: {{{{admin_tokens: [{ADMIN}]}}}}\n"
        f"delivery: {{{{{delivery}}}}}\n"
        "policies: {{once: {{delays: [], timeout: 5s}}}}\n"
        "endpoints:\n" + "".join(endpoints)
    )


def endpoint(name: str, url: str, tls: str | None = None) -> str:
    text = f"  - id: {name}\n    url: {url}\n    events: ['{name}.*']\n    policy: once\n"
    text += f"    signing: {{{{secret: {SECRET}}}}}\n"
    return text + (f"    tls: {{{{{tls}}}}}\n" if tls else "")


@contextlib.asynccontextmanager
async def daemon_with(tmp_path: Path, text: str) -> AsyncIterator[Daemon]:
    async with running_daemon(
        tmp_path, text, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as daemon:
        yield daemon


async def final(daemon: Daemon, kind: str) -> dict[str, Any]:
    """Post an event of ``kind``; its one delivery once it is final."""
    status, accepted = await daemon.post_event(f"{kind}.x", {"n": 1})
    assert status == 202, accepted
    [delivery] = accepted["deliveries"]

    async def done() -> dict[str, Any] | None:
        shown = await daemon.delivery(delivery["id"])
        return shown if shown["status"] != "pending" else None

    result: dict[str, Any] = await wait_for(done, timeout=20)
    return result


# --------------------------------------------------------------------------- TLS from the YAML


async def test_a_private_ca_verifies_the_receiver(tmp_path: Path, ca: trustme.CA) -> None:
    """With tls.ca_file the delivery succeeds; without it, it fails saying what to set."""
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    async with tls_receiver(ca) as rec:
        text = yaml_config(
            endpoint("trusted", rec.url, "ca_file: ca.pem"), endpoint("plain", rec.url)
        )
        async with daemon_with(tmp_path, text) as daemon:
            ok = await final(daemon, "trusted")
            assert ok["status"] == "succeeded", ok
            failed = await final(daemon, "plain")
    assert failed["status"] == "failed"
    error = failed["attempts"][0]["error"]
    assert "certificate did not verify" in error
    assert "tls.ca_file" in error
    assert len(rec.requests) == 1


async def test_mutual_tls_with_a_client_certificate(
    tmp_path: Path, ca: trustme.CA, clients: trustme.CA
) -> None:
    """A receiver that requires a client certificate: delivered with tls.client_cert_file and
    client_key_file (the receiver sees who), refused without, with an error that says so."""
    write_pems(tmp_path, ca, clients)
    pair = "ca_file: ca.pem, client_cert_file: client.pem, client_key_file: client.key"
    async with tls_receiver(ca, clients) as rec:
        text = yaml_config(
            endpoint("mtls", rec.url, pair), endpoint("bare", rec.url, "ca_file: ca.pem")
        )
        async with daemon_with(tmp_path, text) as daemon:
            ok = await final(daemon, "mtls")
            assert ok["status"] == "succeeded", ok
            _, shown = await daemon.request("GET", "/v1/endpoints/mtls")
            failed = await final(daemon, "bare")
    [request] = rec.requests
    assert request["peer"] is not None
    assert "hookd-client@example.com" in json.dumps(request["peer"])
    assert shown["tls"]["ca"] is True
    assert shown["tls"]["client_cert"] is True
    assert shown["tls"]["client_cert_expires_at"].endswith("Z")
    assert "PRIVATE KEY" not in json.dumps(shown)
    assert failed["status"] == "failed"
    assert "client certificate" in failed["attempts"][0]["error"]


def test_tls_files_are_checked_at_load(tmp_path: Path, ca: trustme.CA, clients: trustme.CA) -> None:
    other = write_pems(tmp_path, ca, clients)
    (tmp_path / "other.key").write_bytes(
        clients.issue_cert("x@example.com").private_key_pem.bytes()
    )
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    (tmp_path / "huge.pem").write_bytes(b"A" * (2 << 20))
    assert other is not None
    url = "https://example.com/h"
    cases = {
        "ca_file: missing.pem": "tls.ca_file: cannot read missing.pem: No such file or directory",
        "ca_file: junk.pem": "tls.ca_file: not a PEM certificate",
        "ca_file: huge.pem": "tls.ca_file: cannot read huge.pem: file is over 1048576 bytes",
        "client_cert_file: client.pem": "tls.client_key_file: a client certificate needs both",
        "client_cert_file: client.pem, client_key_file: other.key": (
            "tls.client_key_file: the private key does not match the client certificate"
        ),
        "client_cert_file: client.pem, client_key_file: junk.pem": (
            "tls.client_key_file: not a PEM private key"
        ),
        "cafile: ca.pem": "tls.cafile: unknown key",
    }
    for tls, message in cases.items():
        text = f"endpoints:\n  - id: a\n    url: {url}\n    signing: {{secret: {SECRET}}}\n"
        text += f"    tls: {{{tls}}}\n"
        with pytest.raises(ConfigError) as caught:
            parse(text, source=str(tmp_path / "h.yaml"), env={})
        [problem] = caught.value.problems
        assert f"h.yaml:5: endpoints[0].{message}" in problem, (tls, problem)
    text = (
        f"endpoints:\n  - id: a\n    url: http://example.com/\n    signing: {{secret: {SECRET}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text + "    tls: {ca_file: ca.pem}\n", source=str(tmp_path / "h.yaml"), env={})
    assert caught.value.problems == [
        f"{tmp_path}/h.yaml:5: endpoints[0].tls: tls applies to https:// URLs; "
        "this endpoint's url is not one"
    ]


# --------------------------------------------------------------------------- TLS from the API


async def test_api_endpoints_take_pem_text_sealed_and_never_shown(
    tmp_path: Path, ca: trustme.CA, clients: trustme.CA
) -> None:
    client = clients.issue_cert("api-client@example.com")
    pems = {
        "ca_pem": ca.cert_pem.bytes().decode(),
        "client_cert_pem": client.cert_chain_pems[0].bytes().decode(),
        "client_key_pem": client.private_key_pem.bytes().decode(),
    }
    async with tls_receiver(ca, clients) as rec, daemon_with(tmp_path, yaml_config()) as daemon:
        body = {"id": "api", "url": rec.url, "events": ["api.*"], "policy": "once", "tls": pems}
        status, created = await daemon.request("POST", "/v1/endpoints", json=body)
        assert status == 201, created
        leaf = x509.load_pem_x509_certificate(pems["client_cert_pem"].encode())
        assert created["tls"]["client_cert_subject"] == leaf.subject.rfc4514_string()
        ok = await final(daemon, "api")
        assert ok["status"] == "succeeded", ok

        wrong = clients.issue_cert("x@example.com").private_key_pem.bytes().decode()
        for tls, field_name in (
            ({"client_key_pem": wrong}, "tls.client_key_pem"),
            ({"ca_pem": "junk"}, "tls.ca_pem"),
            ({"client_key_pem": None}, "tls.client_key_pem"),
            ({"ca_pem": 5}, "tls.ca_pem"),
            ({"key": "x"}, "tls.key"),
        ):
            status, answer = await daemon.request("PATCH", "/v1/endpoints/api", json={"tls": tls})
            assert (status, answer["error"]["field"]) == (400, field_name), (tls, answer)
        http_url = rec.url.replace("https://", "http://")
        status, answer = await daemon.request("PATCH", "/v1/endpoints/api", json={"url": http_url})
        assert (status, answer["error"]["field"]) == (400, "tls"), answer

        status, patched = await daemon.request(
            "PATCH",
            "/v1/endpoints/api",
            json={"tls": {"client_cert_pem": None, "client_key_pem": None}},
        )
        assert status == 200, patched
        assert (patched["tls"]["ca"], patched["tls"]["client_cert"]) == (True, False)
        refused = await final(daemon, "api")
        assert "client certificate" in refused["attempts"][0]["error"]
        shown = json.dumps(await daemon.request("GET", "/v1/endpoints/api"))
    with sqlite3.connect(tmp_path / "hookd.db") as db:
        stored = json.dumps(db.execute("SELECT * FROM endpoints").fetchall())
    for text in (shown, stored):
        assert "BEGIN" not in text
    assert len(rec.requests) == 1


# --------------------------------------------------------------------------- the proxy


async def test_deliveries_go_through_the_proxy(
    tmp_path: Path, sink: Receiver, ca: trustme.CA
) -> None:
    """http: an absolute-URI request; https: a CONNECT tunnel with TLS to the receiver inside.
    The proxy's credentials go in Proxy-Authorization, never to the receiver."""
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    async with proxy() as egress, tls_receiver(ca) as tls_rec:
        delivery = f"allow_private_networks: true, proxy: 'http://user:pw@{egress.url[7:]}'"
        text = yaml_config(
            endpoint("plain", sink.url),
            endpoint("secure", tls_rec.url, "ca_file: ca.pem"),
            delivery=delivery,
        )
        async with daemon_with(tmp_path, text) as daemon:
            assert (await final(daemon, "plain"))["status"] == "succeeded"
            assert (await final(daemon, "secure"))["status"] == "succeeded"
    port = urlsplit(tls_rec.url).port
    assert egress.lines == [f"POST {sink.url} HTTP/1.1", f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    assert egress.auth == ["Basic dXNlcjpwdw==", "Basic dXNlcjpwdw=="]
    assert len(sink.requests) == 1
    assert "Proxy-Authorization" not in sink.requests[0].headers
    assert len(tls_rec.requests) == 1


async def test_with_a_proxy_hookd_still_refuses_private_destinations(
    tmp_path: Path, sink: Receiver
) -> None:
    """The SSRF guard still judges IP literals, and resolves hostnames itself, before anything
    goes to the proxy (which itself is on loopback: the operator's choice)."""
    port = urlsplit(sink.url).port
    async with proxy() as egress:
        text = yaml_config(
            endpoint("literal", sink.url),
            endpoint("named", f"http://localhost:{port}/hook"),
            delivery=f"proxy: '{egress.url}'",
        )
        async with daemon_with(tmp_path, text) as daemon:
            literal = await final(daemon, "literal")
            named = await final(daemon, "named")
    for shown in (literal, named):
        assert shown["status"] == "failed"
        assert shown["attempts"][0]["error"].startswith("refused: ")
        assert "loopback" in shown["attempts"][0]["error"]
    assert egress.lines == []
    assert sink.requests == []


async def test_a_proxy_that_is_down_is_a_network_error_naming_it(
    tmp_path: Path, sink: Receiver
) -> None:
    async with proxy() as egress:
        down = egress.url
    text = yaml_config(
        endpoint("p", sink.url), delivery=f"allow_private_networks: true, proxy: '{down}'"
    )
    async with daemon_with(tmp_path, text) as daemon:
        shown = await final(daemon, "p")
    assert shown["status"] == "failed"
    assert shown["attempts"][0]["error"].startswith("network: cannot reach the proxy")


def test_the_proxy_url_is_checked_at_load() -> None:
    for value, message in (
        ("https://proxy:3128", "http, a host and a port"),
        ("http://proxy", "http, a host and a port"),
        ("http://proxy:3128/path", "has no path"),
        ("socks5://proxy:1080", "http, a host and a port"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse(f"delivery: {{proxy: '{value}'}}\n", source="h.yaml", env={})
        [problem] = caught.value.problems
        assert problem.startswith("h.yaml:1: delivery.proxy: "), problem
        assert message in problem
