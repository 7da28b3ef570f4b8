"""Exit codes and the usage error every command may raise.

Exit codes: 0 ok, 1 failure (unreachable daemon, API error), 2 usage (bad option or config).
"""

from __future__ import annotations

from hookd.errors import HookdError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(HookdError):
    """The command line asks for something impossible (bad --data, bad --url): exit 2."""
