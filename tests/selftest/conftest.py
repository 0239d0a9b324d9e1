"""Self-tests of the suite's machinery (tiny/twin models, planted faults, stand-ins, fakes): they
run in the default suite and in CI, and never under ``-m conversion|perf|accuracy``, which select
the acceptance modules judging the subject under test (albert_ixrt/acceptance)."""
from __future__ import annotations

import os

import pytest

HERE = os.path.dirname(__file__)
ACCEPTANCE_MARKERS = ("conversion", "perf", "accuracy")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            marked = [m for m in ACCEPTANCE_MARKERS if item.get_closest_marker(m) is not None]
            if marked:
                raise pytest.UsageError(f"{item.nodeid}: a self-test must not carry the acceptance marker(s) "
                                        f"{', '.join(marked)} (they select the modules that judge the subject)")
            item.add_marker(pytest.mark.selftest)
