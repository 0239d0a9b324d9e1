"""Accuracy acceptance of the subject under test on the whole SQuAD v1.1 dev set: EM >= 80.18 and
F1 >= 87.57 (ByteMLPerf-compatible, as the reference measured them) and official F1 >= 99% of the torch
fp32 reference's (MLPerf-style), on the session's runner (no second build).  Judged on real weights or a
known-answer model (``albert-ixrt known-answer``: how the verdict is shown both ways); random weights,
the tiny self-test and --limit are not judged (the run is then NOT SIGNED OFF).  Marked slow: a plain
``pytest`` leaves it out, ``-m accuracy`` runs it (with progress and an estimate)."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.accuracy, pytest.mark.slow]


@pytest.mark.albert_check("thresholds", "bytemlperf_exact_match")
def test_bytemlperf_exact_match(albert_judge, albert_item):
    albert_judge()


@pytest.mark.albert_check("thresholds", "bytemlperf_f1")
def test_bytemlperf_f1(albert_judge, albert_item):
    albert_judge()


@pytest.mark.albert_check("thresholds", "official_f1_ratio")
def test_official_f1_within_one_percent_of_torch_fp32(albert_judge, albert_item):
    albert_judge()
