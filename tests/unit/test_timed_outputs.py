"""The check the perf tests apply to the outputs they timed (MLPerf compliance TEST01's idea), both
ways: outputs within the stated tolerance pass; a perturbation above it on one real position, a
NaN, or a wrong shape fail; errors on padded positions do not count."""
from __future__ import annotations

import numpy as np

from albert_ixrt.config import TOLERANCES
from albert_ixrt.verdicts import outputs_match_reference

RNG = np.random.default_rng(0)
REF = (RNG.normal(size=(4, 32)).astype(np.float32), RNG.normal(size=(4, 32)).astype(np.float32))
MASK = np.ones((4, 32), dtype=np.int64)
MASK[:, 20:] = 0


def _moved(delta: float, row=1, pos=3):
    start = REF[0].copy()
    start[row, pos] += delta
    return start, REF[1].copy()


def test_clean_outputs_pass_and_noise_within_tolerance_passes():
    assert outputs_match_reference(REF, REF, MASK, "fp32").passed
    v = outputs_match_reference(REF, _moved(0.5 * TOLERANCES["fp32"].atol), MASK, "fp32")
    assert v.passed and v.detail["checked"] == 2 * 4 * 20, v.message


def test_one_drifting_logit_fails_with_figures():
    v = outputs_match_reference(REF, _moved(0.2), MASK, "fp32")
    assert not v.passed and v.detail["over"] == 1 and "worst abs error 0.2" in v.message, v.message
    # fp16's wider tolerance takes what fp32's refuses, and still refuses a broken number
    assert outputs_match_reference(REF, _moved(0.02), MASK, "fp16").passed
    assert not outputs_match_reference(REF, _moved(1.0), MASK, "fp16").passed


def test_nan_and_shape_fail_padding_is_ignored():
    assert not outputs_match_reference(REF, _moved(np.nan), MASK, "fp32").passed
    assert not outputs_match_reference(REF, (REF[0][:, :16], REF[1][:, :16]), MASK, "fp32").passed
    assert outputs_match_reference(REF, _moved(5.0, pos=25), MASK, "fp32").passed   # a padded position
