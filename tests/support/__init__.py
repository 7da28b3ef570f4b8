"""Real parts for tests, one module per concept; import them from here.

- :mod:`~tests.support.polling`: ``wait_for`` (poll with a deadline), ``free_port``
- :mod:`~tests.support.clock`: ``FakeClock``, the one clock for tests that drive time
- :mod:`~tests.support.receiver`: the recording receiver on 127.0.0.1
- :mod:`~tests.support.configs`: daemon YAML builders, the test secret and tokens
- :mod:`~tests.support.daemon`: an in-process daemon with its store and an HTTP client
- :mod:`~tests.support.process`: a real ``hookd run`` process
- :mod:`~tests.support.cli`: ``python -m hookd ...`` commands as subprocesses
- :mod:`~tests.support.store`: events, attempts and the test's store opened, for store tests
- :mod:`~tests.support.backends`: the backend the running test uses (the ``backend`` fixture)
"""

from tests.support import backends
from tests.support.cli import (
    Result,
    Running,
    assert_one_line_error,
    clean_env,
    completed,
    hookd,
    receiver_url,
    run_hookd,
    running,
    spawn,
)
from tests.support.clock import FakeClock
from tests.support.configs import (
    ADMIN,
    INGEST,
    SECRET,
    auth,
    bearer,
    capped,
    config,
    endpoint,
    escape,
    hmac_signing,
)
from tests.support.daemon import Daemon, running_daemon, write_config
from tests.support.polling import free_port, wait_for
from tests.support.process import Process, start_process, stopped_at_exit, wait_ready
from tests.support.receiver import Answer, Received, Receiver, fail_first, gaps, receiver
from tests.support.store import (
    an_hour_of_attempts,
    attempt_result,
    every_delivery,
    every_event,
    finish,
    new_event,
    opened_store,
    seed_attempts,
)

__all__ = [
    "ADMIN",
    "INGEST",
    "SECRET",
    "Answer",
    "Daemon",
    "FakeClock",
    "Process",
    "Received",
    "Receiver",
    "Result",
    "Running",
    "an_hour_of_attempts",
    "assert_one_line_error",
    "attempt_result",
    "auth",
    "backends",
    "bearer",
    "capped",
    "clean_env",
    "completed",
    "config",
    "endpoint",
    "escape",
    "every_delivery",
    "every_event",
    "fail_first",
    "finish",
    "free_port",
    "gaps",
    "hmac_signing",
    "hookd",
    "new_event",
    "opened_store",
    "receiver",
    "receiver_url",
    "run_hookd",
    "running",
    "running_daemon",
    "seed_attempts",
    "spawn",
    "start_process",
    "stopped_at_exit",
    "wait_for",
    "wait_ready",
    "write_config",
]
