"""The environment of a process a test starts (``python -m pytest``, ``python -m albert_ixrt.cli``, the
emulated-tensorrt wrapper): the test's own, less every ``PYTEST_*`` variable.

Under ``pytest -n N`` each worker has PYTEST_XDIST_WORKER, PYTEST_XDIST_WORKER_COUNT and
PYTEST_XDIST_TESTRUNUID set (and pytest sets PYTEST_CURRENT_TEST for the running test).  A child pytest
that inherits them believes it is an xdist worker itself: pytest-benchmark switches itself off, the suite's
plugin treats the run as distributed.  A child must behave as the command a user types, whatever ran the
test, so none of them leaks (PYTEST_ADDOPTS and the like included: the child's options are the test's).
"""
from __future__ import annotations

import os

#: Prefix of the variables a child never inherits.
DROPPED_PREFIX = "PYTEST_"


def child_env(**overrides: str | None) -> dict[str, str]:
    """``os.environ`` without ``PYTEST_*``, then ``overrides`` (a value of None removes that variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIX)}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
