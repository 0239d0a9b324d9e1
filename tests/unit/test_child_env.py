"""A process a test starts sees none of pytest's or pytest-xdist's PYTEST_* variables (a child pytest that
inherits PYTEST_XDIST_WORKER takes itself for an xdist worker), and keeps the rest of the environment."""
from __future__ import annotations

import subprocess
import sys

from child_env import child_env

XDIST = {"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2", "PYTEST_XDIST_TESTRUNUID": "abc"}


def test_a_child_env_drops_the_xdist_worker_variables_and_keeps_the_rest(monkeypatch):
    for key, value in {**XDIST, "PYTEST_ADDOPTS": "-x", "ALBERT_IXRT_CACHE": "/c", "KEEP_ME": "1"}.items():
        monkeypatch.setenv(key, value)
    env = child_env(HF_HUB_OFFLINE="1", KEEP_ME=None)
    assert not [k for k in env if k.startswith("PYTEST_")]
    assert env["ALBERT_IXRT_CACHE"] == "/c" and env["HF_HUB_OFFLINE"] == "1" and "KEEP_ME" not in env


def test_a_started_process_sees_no_pytest_variable(monkeypatch):
    """PYTEST_CURRENT_TEST is set while any test runs, the xdist ones under -n: the child sees neither."""
    for key, value in XDIST.items():
        monkeypatch.setenv(key, value)
    probe = "import os; print(sorted(k for k in os.environ if k.startswith('PYTEST_')))"
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=child_env())
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr
