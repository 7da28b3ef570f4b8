"""Reading the files a config names, never more than a limit: the YAML itself, secret and key
files, certificates. ``secret_file: /dev/zero`` is refused after the limit, not read forever.
"""

from __future__ import annotations

from pathlib import Path

MAX_CONFIG_BYTES = 1024 * 1024  # hookd.yaml
MAX_KEY_BYTES = 64 * 1024  # a secret, a PEM private key or certificate chain
MAX_CA_BYTES = 1024 * 1024  # a CA bundle (the system one is about 200 KiB)


class FileTooLarge(ValueError):
    """A file is over its limit; the message says ``file is over N bytes``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"file is over {limit} bytes")


def read_bytes(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``. Raises FileTooLarge, OSError."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data


def read_text(path: Path, limit: int) -> str:
    """``path`` as UTF-8 text of at most ``limit`` bytes. Raises FileTooLarge, OSError,
    UnicodeDecodeError."""
    return read_bytes(path, limit).decode("utf-8")


def reason(exc: OSError | ValueError) -> str:
    """Why a read failed, in words: ``No such file or directory``, ``file is over N bytes``."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
