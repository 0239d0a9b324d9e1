"""Unit tests of albert_ixrt.compare: the one element rule (Polygraphy's, on real positions) both ways,
error location, NaN / Inf named and located, margin-aware argmax, feeds."""
from __future__ import annotations

import numpy as np
import pytest

from albert_ixrt.compare import (STAGE_PRECISION, TOLERANCES, ChainedFeeds, SquadFeeds, Tolerance,
                                 argmax_agreement, element_check, judge_output, top1_margin)
from albert_ixrt.squad.features import Feature


def feature(length: int, width: int = 12) -> Feature:
    ids = np.zeros(width, np.int64)
    ids[:length] = np.arange(length) + 5
    mask = (np.arange(width) < length).astype(np.int64)
    return Feature(0, 0, ids, mask, np.zeros(width, np.int64), length, 2, {}, {})


def test_every_stage_precision_has_a_reasoned_tolerance():
    assert set(STAGE_PRECISION.values()) <= set(TOLERANCES)
    for tol in TOLERANCES.values():
        assert tol.atol > 0 and tol.rtol > 0 and len(tol.reason) > 40
    assert TOLERANCES["fp16"].atol > TOLERANCES["fp32"].atol


def test_top1_margin_ignores_masked_positions():
    logits = np.array([[3.0, 1.0, -np.inf], [2.0, 2.0, 0.0], [5.0, -np.inf, -np.inf]])
    np.testing.assert_array_equal(top1_margin(logits), [2.0, 0.0, np.inf])


def test_argmax_agreement_counts_ties_as_undecidable():
    ref = [np.array([[0.0, 1.0, 0.99], [0.0, 5.0, 1.0]])]
    got = [np.array([[0.0, 0.99, 1.0], [0.0, 5.0, 1.0]])]  # row 0 flips on a near-tie
    mask = [np.ones((2, 3), np.int64)]
    rows, agree, decidable, decidable_agree = argmax_agreement(ref, got, mask, bound=0.02)
    assert (rows, agree, decidable, decidable_agree) == (2, 1, 1, 1)


def test_argmax_is_taken_over_real_tokens_only():
    ref = [np.array([[0.0, 1.0, 9.0]])]
    got = [np.array([[0.0, 1.0, -9.0]])]  # the padded position moves, the answer does not
    mask = [np.array([[1, 1, 0]])]
    assert argmax_agreement(ref, got, mask, bound=0.0) == (1, 1, 1, 1)


def test_the_rule_locates_the_worst_errors_across_feeds():
    tol = Tolerance(atol=0.01, rtol=0.01, reason="test")
    ref = [np.zeros((1, 4), np.float32) + 1, np.ones((2, 3), np.float32)]
    got = [ref[0].copy(), ref[1].copy()]
    got[1][1, 2] += 0.5
    masks = [np.ones((1, 4), np.int64), np.ones((2, 3), np.int64)]
    c = judge_output("fused", "fp32", "start_logits", tol, ref, got, masks)
    assert c.check.worst_abs == pytest.approx(0.5) and c.check.worst_abs_at == (1, 1, 2)
    assert c.check.worst_abs_values == (1.0, 1.5)
    assert c.check.mismatched == 1 and c.check.checked == 10
    assert c.error_bound == pytest.approx(2 * tol.atol)   # from the tolerance, not from these rows
    message = c.message()
    assert message.startswith("FAIL: stage 'fused' (fp32) output 'start_logits': 1/10 real-position values")
    assert "worst absolute error 0.5 at (feed 1, row 1, position 2)" in message
    assert not c.passed


RNG = np.random.default_rng(0)
REF = [RNG.normal(size=(4, 32)), RNG.normal(size=(4, 32))]
MASK = np.ones((4, 32), dtype=np.int64)
MASK[:, 20:] = 0
FP32, FP16 = TOLERANCES["fp32"], TOLERANCES["fp16"]


def _moved(delta: float, row=1, pos=3):
    got = [REF[0].copy(), REF[1].copy()]
    got[0][row, pos] += delta
    return got


def _check(got, tol=FP32, masks=(MASK, MASK)):
    return element_check(REF, got, list(masks), tol)


def test_within_tolerance_passes_and_one_drifting_value_fails_with_figures():
    assert _check(REF).passed and _check(_moved(0.5 * FP32.atol)).passed
    c = _check(_moved(0.2))
    assert not c.passed and c.mismatched == 1 and c.checked == 2 * 4 * 20
    assert "worst absolute error 0.2" in c.describe("x") and c.describe("x").startswith("FAIL: x: 1/160")
    assert _check(_moved(0.02), FP16).passed and not _check(_moved(1.0), FP16).passed   # each precision its own


def test_a_value_fails_only_beyond_both_atol_and_rtol():
    big = [REF[0] * 1000, REF[1] * 1000]
    moved = [big[0].copy(), big[1].copy()]
    moved[0][0, 0] += 0.5 * abs(big[0][0, 0]) * FP32.rtol + 2 * FP32.atol   # beyond atol, within rtol x |ref|
    assert element_check(big, moved, [MASK, MASK], FP32).passed
    moved[0][0, 0] = big[0][0, 0] * (1 + 3 * FP32.rtol) + 1                  # beyond both
    assert not element_check(big, moved, [MASK, MASK], FP32).passed


def test_padding_is_never_judged():
    assert _check(_moved(5.0, pos=25)).passed                     # a padded position
    assert not _check(_moved(5.0, pos=19)).passed                 # the last real one


def test_nan_and_inf_fail_named_counted_and_located():
    got = _moved(np.nan, row=2, pos=4)
    got[1][0, 7] = np.inf
    c = _check(got)
    assert not c.passed and (c.nan, c.inf) == (1, 1) and c.first_nonfinite_at == (0, 2, 4)
    text = c.describe("stage 'fp16'", "fp16")
    assert "holds NaN in 1 and Inf in 1 value(s) (first at feed 0, row 2, position 4)" in text, text
    assert "worst absolute error NaN/Inf" in text
    everything = [np.full_like(REF[0], np.nan), np.full_like(REF[1], np.nan)]
    assert _check(everything).mismatched == 160 and "NaN in 160" in _check(everything).describe("x")
    assert _check(_moved(np.nan, pos=25)).passed                 # NaN on padding is not judged


def test_a_check_over_no_value_fails():
    empty = np.zeros_like(MASK)
    c = _check(REF, masks=(empty, empty))
    assert c.checked == 0 and not c.passed and "nothing compared" in c.describe("timed outputs")


def test_the_rule_is_polygraphys_element_rule_on_the_real_values():
    """Polygraphy's own SimpleCompareFunc (elemwise), fed the real positions, agrees with element_check:
    both ways, NaN included."""
    from polygraphy.comparator import SimpleCompareFunc
    from polygraphy.comparator.struct import IterationResult
    from polygraphy.logger import G_LOGGER

    real = MASK > 0
    compare = SimpleCompareFunc(atol=FP32.atol, rtol=FP32.rtol, check_error_stat="elemwise")
    for got in (REF, _moved(0.5 * FP32.atol), _moved(0.2), _moved(np.nan), _moved(5.0, pos=25)):
        mine = _check(got).passed
        ours = IterationResult({"x": got[0][real], "y": got[1][real]}, runner_name="candidate")
        ref = IterationResult({"x": REF[0][real], "y": REF[1][real]}, runner_name="reference")
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
            theirs = all(bool(v) for v in compare(ours, ref).values())
        assert mine == theirs


def test_squad_feeds_pad_to_longest_full_or_fixed():
    feats = [feature(5), feature(9), feature(3)]
    longest = list(SquadFeeds(feats, batch_size=2))
    assert [f["input_ids"].shape for f in longest] == [(2, 9), (1, 3)]
    assert all(f[k].dtype == np.int64 for f in longest for k in f)
    assert [f["input_ids"].shape for f in SquadFeeds(feats, 3, pad_to="full")] == [(3, 12)]
    assert [f["input_ids"].shape for f in SquadFeeds(feats, 3, pad_to=7)] == [(3, 7)]
    folded = next(iter(SquadFeeds(feats, 3, vocab_size=7)))
    assert folded["input_ids"].max() < 7
    assert len(ChainedFeeds(SquadFeeds(feats, 1), SquadFeeds(feats, 3))) == 4
    with pytest.raises(ValueError):
        SquadFeeds(feats, 0)


def test_an_argmax_flip_on_a_decidable_row_fails_even_within_rtol():
    """Element-wise within tolerance (thanks to rtol), yet the answer position moves on a row whose
    fp32 margin (1.0) is far above 2 x atol: the comparison must fail."""
    tol = Tolerance(atol=0.01, rtol=0.2, reason="test")
    ref = [np.array([[10.0, 9.0, 0.0]], np.float32)]
    got = [np.array([[9.5, 10.2, 0.0]], np.float32)]
    c = judge_output("fp16", "fp16", "start_logits", tol, ref, got, [np.ones((1, 3), np.int64)])
    assert c.check.mismatched == 0 and c.check.passed
    assert (c.decidable_rows, c.decidable_agree) == (1, 0)
    assert not c.passed


def test_calibrated_agreement_counts_only_decidable_rows_and_can_fail():
    """The bound comes from the first half of the feeds (worst error 0.02 -> bound 0.04); on the second half
    a flip on a flat row is a tie (not eligible), a flip on a sharp row is a disagreement."""
    from albert_ixrt.compare import calibrated_agreement

    sharp = np.array([[0.0, 0.0, 1.0, 0.0]])
    flat = np.array([[0.0, 0.01, 0.02, 0.0]])
    mask = np.ones((1, 4), np.int64)
    noisy = sharp + np.array([[0.0, 0.02, 0.0, 0.0]])
    ref = [[sharp, sharp, flat, sharp], [sharp] * 4]
    good = [[noisy, noisy, np.array([[0.0, 0.03, 0.02, 0.0]]), sharp], [sharp] * 4]
    a = calibrated_agreement(ref, good, [mask] * 4, "fp16")
    assert a["error_bound"] == pytest.approx(0.04) and a["rows"] == 4 and a["raw"] == pytest.approx(0.75)
    assert a["eligible"] == 3 and a["margin_aware"] == 1.0
    wrong = [[sharp, sharp, sharp, np.array([[0.0, 2.0, 1.0, 0.0]])], [sharp] * 4]
    b = calibrated_agreement([[sharp] * 4, [sharp] * 4], wrong, [mask] * 4, "fp16")
    assert b["margin_aware"] == pytest.approx(0.75) and b["max_abs_error"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="calibration and evaluation"):
        calibrated_agreement([[sharp]], [[sharp]], [mask], "fp16")
