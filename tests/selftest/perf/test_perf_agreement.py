"""Reduced-precision runners pick the same answer positions as fp32 (margin-aware, random weights), judged
by the one comparator (compare.calibrated_agreement: the element rule's errors, argmax agreement over real
tokens).  The tiny model's logits are nearly flat (top-1 margins ~0.02), so raw argmax agreement mostly
measures ties, and a bound from the precision's tolerance leaves no row decidable: the bound is calibrated
on half of the feeds and agreement counted on the other half (a bound taken from the same rows would make
the figure 100 % by construction).  Raw agreement and coverage are recorded too.
"""
from __future__ import annotations

import pytest

from albert_ixrt.bench import real_feed
from albert_ixrt.compare import argmax_agreement, calibrated_agreement, element_check
from albert_ixrt.config import AGREEMENT_MIN_COVERAGE as MIN_COVERAGE
from albert_ixrt.config import ARGMAX_AGREEMENT_MIN as MIN_AGREEMENT
from albert_ixrt.config import TOLERANCES
from albert_ixrt.runners import create_runner

pytestmark = pytest.mark.selftest


N_BATCHES, BATCH, SEQ = 8, 16, 384


@pytest.fixture(scope="module")
def feeds(perf_features, tiny_vocab):
    return [real_feed(perf_features, BATCH, SEQ, start=k * BATCH, vocab_size=tiny_vocab) for k in range(N_BATCHES)]


def logits(runner, feeds):
    """Per output, the list of per-feed arrays (start logits, then end logits), and the masks."""
    out = [runner.infer(feed) for feed in feeds]
    return [[o[k] for o in out] for k in (0, 1)], [f["attention_mask"] for f in feeds]


@pytest.fixture(scope="module")
def fp32_logits(tiny_model, feeds):
    return logits(create_runner("torch", model=tiny_model, precision="fp32", device="cpu"), feeds)[0]


def _check(a: dict, benchmark):
    benchmark.extra_info.update(a)
    assert a["coverage"] >= MIN_COVERAGE, f"only {a['coverage']:.0%} of rows decidable: {a}"
    assert a["margin_aware"] >= MIN_AGREEMENT, a
    assert a["raw"] >= 0.9, a   # ties may flip, but not most answers


def test_onnxruntime_int8_agrees_with_fp32(benchmark, tiny_onnx, feeds, fp32_logits):
    runner = create_runner("onnxruntime", onnx_path=tiny_onnx["fused"], precision="int8", device="cpu")
    got, masks = benchmark.pedantic(logits, args=(runner, feeds), rounds=1, iterations=1)
    a = calibrated_agreement(fp32_logits, got, masks, "int8")
    assert a["max_abs_error"] > 0   # it really is quantised
    _check(a, benchmark)


def test_torch_bf16_agrees_with_fp32(benchmark, tiny_model, feeds, fp32_logits):
    runner = create_runner("torch", model=tiny_model, precision="bf16", device="cpu")
    got, masks = benchmark.pedantic(logits, args=(runner, feeds[:4]), rounds=1, iterations=1)
    a = calibrated_agreement([r[:4] for r in fp32_logits], got, masks, "bf16")
    assert a["max_abs_error"] > 0
    _check(a, benchmark)


def test_onnxruntime_fp32_matches_torch(tiny_onnx, feeds, fp32_logits, benchmark):
    runner = create_runner("onnxruntime", onnx_path=tiny_onnx["fused"], precision="fp32", device="cpu")
    got, masks = benchmark.pedantic(logits, args=(runner, feeds[:2]), rounds=1, iterations=1)
    check = element_check(fp32_logits[0][:2] + fp32_logits[1][:2], got[0] + got[1], masks + masks, TOLERANCES["fp32"])
    benchmark.extra_info.update(check.as_dict())
    assert check.passed and check.worst_abs < TOLERANCES["fp32"].atol, check.describe("onnxruntime fp32")
    assert argmax_agreement(fp32_logits[0][:2], got[0], masks, 0.0)[:2] == (2 * BATCH, 2 * BATCH)
