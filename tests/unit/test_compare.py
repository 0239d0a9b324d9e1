"""Unit tests of albert_ixrt.compare's arithmetic: error location, margin-aware argmax, feeds."""
from __future__ import annotations

import numpy as np
import pytest

from albert_ixrt.compare import (STAGE_PRECISION, TOLERANCES, ChainedFeeds, SquadFeeds, Tolerance,
                                 argmax_agreement, measure, top1_margin)
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


def test_measure_locates_the_worst_errors_across_feeds():
    tol = Tolerance(atol=0.01, rtol=0.01, reason="test")
    ref = [np.zeros((1, 4), np.float32) + 1, np.ones((2, 3), np.float32)]
    got = [ref[0].copy(), ref[1].copy()]
    got[1][1, 2] += 0.5
    feeds = [{"attention_mask": np.ones((1, 4), np.int64)}, {"attention_mask": np.ones((2, 3), np.int64)}]
    c = measure("fused", "fp32", "start_logits", tol, ref, got, feeds, passed_elementwise=False)
    assert c.worst_abs == pytest.approx(0.5) and c.worst_abs_at == (1, 1, 2)
    assert c.worst_abs_values == (1.0, 1.5)
    assert c.mismatched_elements == 1 and c.elements == 10
    assert c.error_bound == pytest.approx(2 * tol.atol)   # from the tolerance, not from these rows
    message = c.failure_message()
    assert "stage 'fused' (fp32) output 'start_logits'" in message
    assert "worst absolute error 0.5 at (feed 1, batch 1, position 2)" in message
    assert not c.passed


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
    feeds = [{"attention_mask": np.ones((1, 3), np.int64)}]
    c = measure("fp16", "fp16", "start_logits", tol, ref, got, feeds, passed_elementwise=True)
    assert c.mismatched_elements == 0
    assert (c.decidable_rows, c.decidable_agree) == (1, 0)
    assert not c.passed
