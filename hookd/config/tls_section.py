"""``endpoints[].tls`` in the YAML: the files it names, read within limits and checked at load.

``ca_file`` (a PEM CA or bundle that verifies the receiver), ``client_cert_file`` and
``client_key_file`` (a client certificate for mutual TLS), relative to the YAML file. A file that
cannot be read, is not PEM, a key that is not the certificate's, one of the pair without the
other, or ``tls`` on an ``http://`` URL are problems at their key's line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hookd.config import files
from hookd.config.paths import join
from hookd.config.yamlread import YamlReader
from hookd.delivery.tls import PARTS, TLSConfig, TLSProblem, check

KEYS = ("ca_file", "client_cert_file", "client_key_file")
_LIMITS = {"ca": files.MAX_CA_BYTES, "client_cert": files.MAX_KEY_BYTES}


def read_tls(doc: YamlReader, value: Any, path: str, *, base: Path, url: Any) -> TLSConfig | None:
    """The endpoint's TLS material, or None (no ``tls``, or a problem recorded in ``doc``)."""
    data = doc.mapping(value, path, KEYS)
    if not data:
        return None
    before = len(doc.problems)
    pems: dict[str, str] = {}
    for part in PARTS:
        key = f"{part}_file"
        if key in data:
            text = _read(doc, data[key], join(path, key), base, _LIMITS.get(part))
            if text is not None:
                pems[f"{part}_pem"] = text
    if len(doc.problems) > before:
        return None
    tls = TLSConfig(**pems)
    try:
        check(tls)
    except TLSProblem as exc:
        doc.error(join(path, f"{exc.part}_file"), str(exc))
        return None
    if isinstance(url, str) and not url.startswith("https://"):
        doc.error(path, "tls applies to https:// URLs; this endpoint's url is not one")
        return None
    return tls


def _read(doc: YamlReader, value: Any, path: str, base: Path, limit: int | None) -> str | None:
    if not isinstance(value, str) or not value:
        doc.error(path, "expected a file path")
        return None
    try:
        return files.read_text(base / value, limit or files.MAX_KEY_BYTES)
    except (OSError, ValueError) as exc:  # FileTooLarge and UnicodeDecodeError included
        doc.error(path, f"cannot read {value}: {files.reason(exc)}")
        return None
