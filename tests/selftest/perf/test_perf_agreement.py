"""Reduced-precision runners pick the same answer positions as fp32 (margin-aware, random weights).

The tiny model's logits are nearly flat (top-1 margins ~0.02), so raw argmax agreement mostly
measures ties.  ``compare_logits`` calibrates an error bound on half of the rows and counts
agreement only where the fp32 margin exceeds it; raw agreement and coverage are recorded too.
"""
from __future__ import annotations

import pytest

from albert_ixrt.config import AGREEMENT_MIN_COVERAGE as MIN_COVERAGE
from albert_ixrt.config import ARGMAX_AGREEMENT_MIN as MIN_AGREEMENT
from albert_ixrt.config import TOLERANCES
from albert_ixrt.bench import collect_logits, compare_logits, real_feed
from albert_ixrt.runners import create_runner

pytestmark = pytest.mark.selftest


N_BATCHES, BATCH, SEQ = 8, 16, 384


@pytest.fixture(scope="module")
def feeds(perf_features, tiny_vocab):
    return [real_feed(perf_features, BATCH, SEQ, start=k * BATCH, vocab_size=tiny_vocab) for k in range(N_BATCHES)]


@pytest.fixture(scope="module")
def fp32_logits(tiny_model, feeds):
    return collect_logits(create_runner("torch", model=tiny_model, precision="fp32", device="cpu"), feeds)


def _check(agreement, benchmark):
    benchmark.extra_info.update(agreement.as_dict())
    assert agreement.coverage >= MIN_COVERAGE, f"only {agreement.coverage:.0%} of rows decidable: {agreement}"
    assert agreement.margin_aware >= MIN_AGREEMENT, agreement
    assert agreement.raw >= 0.9, agreement   # ties may flip, but not most answers


def test_onnxruntime_int8_agrees_with_fp32(benchmark, tiny_onnx, feeds, fp32_logits):
    runner = create_runner("onnxruntime", onnx_path=tiny_onnx["fused"], precision="int8", device="cpu")
    logits = benchmark.pedantic(collect_logits, args=(runner, feeds), rounds=1, iterations=1)
    agreement = compare_logits(fp32_logits, logits)
    assert agreement.max_abs_error > 0   # it really is quantised
    _check(agreement, benchmark)


def test_torch_bf16_agrees_with_fp32(benchmark, tiny_model, feeds, fp32_logits):
    runner = create_runner("torch", model=tiny_model, precision="bf16", device="cpu")
    logits = benchmark.pedantic(collect_logits, args=(runner, feeds[:4]), rounds=1, iterations=1)
    agreement = compare_logits(fp32_logits[:4], logits)
    assert agreement.max_abs_error > 0
    _check(agreement, benchmark)


def test_onnxruntime_fp32_matches_torch(tiny_onnx, feeds, fp32_logits, benchmark):
    runner = create_runner("onnxruntime", onnx_path=tiny_onnx["fused"], precision="fp32", device="cpu")
    logits = benchmark.pedantic(collect_logits, args=(runner, feeds[:2]), rounds=1, iterations=1)
    agreement = compare_logits(fp32_logits[:2], logits)
    benchmark.extra_info.update(agreement.as_dict())
    assert agreement.max_abs_error < TOLERANCES["fp32"].atol
    assert agreement.raw == 1.0
