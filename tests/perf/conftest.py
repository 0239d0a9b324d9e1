"""Acceptance perf fixtures, and the guard against pytest-xdist.

pytest-benchmark switches itself off when xdist distributes tests (parallel workers would time each
other), so under ``-n N`` every perf test here is skipped with a reason that says so; run them with
``-p no:xdist`` (or ``-n 0``).  Every test here must be marked ``perf``.
"""
from __future__ import annotations

import os

import pytest

from albert_ixrt.pytest_plugin import perf_items, warn_perf_distributed

#: Real SQuAD questions featurized for the perf tests: enough for several batches and length buckets.
PERF_EXAMPLES = 200


def pytest_configure(config):
    warn_perf_distributed(config, "tests/perf")


def pytest_collection_modifyitems(config, items):
    for item in perf_items(config, items, os.path.dirname(__file__)):
        if item.get_closest_marker("perf") is None:
            raise pytest.UsageError(f"{item.nodeid}: every test under tests/perf must be marked @pytest.mark.perf")


@pytest.fixture(scope="session")
def perf_features(albert_dev_examples, albert_subject_tokenizer):
    """Features of the first PERF_EXAMPLES real dev questions (file order), with the subject's tokenizer."""
    from albert_ixrt.squad.features import build_features

    return build_features(albert_dev_examples[:PERF_EXAMPLES], albert_subject_tokenizer, progress=False)
