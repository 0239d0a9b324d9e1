"""Perf acceptance of the subject under test: pytest-benchmark timings of the runner under test at
--perf-batch-sizes (default 1 and 16) at sequence 384, and at real bucketed lengths (the padded lengths
evaluation's length bucketing gives), each with sequences/s and batches/s at its batch size and
p50/p90/p99 in extra_info beside the reference row (QPS 50.99 = batches/s at batch 16 on an MR-V100).
The outputs of the timed calls are checked against torch fp32 by the one rule: a configuration that
breaks the numerics cannot post a throughput.  Timing needs one process (-p no:xdist)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.perf


@pytest.mark.albert_check("perf", "b[0-9]*")
def test_throughput_at_384(albert_perf, benchmark, albert_item):
    albert_perf(benchmark)


@pytest.mark.albert_check("perf", "bucketed-*")
def test_throughput_at_bucketed_lengths(albert_perf, benchmark, albert_item):
    albert_perf(benchmark)
