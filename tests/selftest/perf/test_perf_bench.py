"""Throughput and latency of the CPU runners, recorded with pytest-benchmark (``--benchmark-json``)
and checked through albert_ixrt.bench: the definitions behind every number of the report."""
from __future__ import annotations

import numpy as np
import pytest

from albert_ixrt.bench import BenchSettings, real_feed, run_benchmark
from albert_ixrt.runners import create_runner

pytestmark = pytest.mark.selftest

SEQ = 384
QUICK = BenchSettings(batch_sizes=(1, 16), seq_lens=(SEQ,), warmup=1, iterations=5, max_seconds=10.0)


def _record(benchmark, runner, feed, rounds: int) -> None:
    """Time ``runner.infer`` with pytest-benchmark and attach sequences/s to its JSON."""
    batch = feed["input_ids"].shape[0]
    benchmark.extra_info.update({**runner.describe(), "batch_size": batch, "seq_len": feed["input_ids"].shape[1]})
    benchmark.pedantic(runner.infer, args=(feed,), rounds=rounds, warmup_rounds=1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        mean = benchmark.stats.stats.mean
        benchmark.extra_info["batches_per_s"] = 1.0 / mean
        benchmark.extra_info["sequences_per_s"] = batch / mean


@pytest.fixture(scope="module")
def tiny_torch(tiny_model):
    return create_runner("torch", model=tiny_model, precision="fp32", device="cpu")


@pytest.mark.parametrize("batch", [1, 16])
def test_tiny_torch_fp32(benchmark, tiny_torch, perf_features, tiny_vocab, batch):
    feed = real_feed(perf_features, batch, SEQ, vocab_size=tiny_vocab)
    _record(benchmark, tiny_torch, feed, rounds=5 if batch == 1 else 3)
    start, end = tiny_torch.infer(feed)
    assert start.shape == end.shape == (batch, SEQ)
    assert np.isfinite(start).all() and np.isfinite(end).all()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_tiny_onnxruntime(benchmark, tiny_onnx, perf_features, tiny_vocab, precision):
    runner = create_runner("onnxruntime", onnx_path=tiny_onnx["fused"], precision=precision, device="cpu")
    feed = real_feed(perf_features, 16, SEQ, vocab_size=tiny_vocab)
    _record(benchmark, runner, feed, rounds=3)
    d = runner.describe()
    assert d["intra_op_threads"] >= 1 and d["graph_optimization_level"] == "all"
    assert d["precision"] == precision


def test_twin_torch_fp32_batch1(benchmark, twin_model, perf_features):
    """albert-base shape twin, batch 1 x 384: two timed rounds only (about 1.5 s each on 2 cores)."""
    runner = create_runner("torch", model=twin_model, precision="fp32", device="cpu")
    feed = real_feed(perf_features, 1, SEQ)
    _record(benchmark, runner, feed, rounds=2)
    assert benchmark.extra_info["weights"] == "random"


@pytest.fixture(scope="module")
def tiny_report(tiny_torch, perf_features, tiny_model):
    return run_benchmark(tiny_torch, perf_features, QUICK, model_info=tiny_model.describe(),
                         vocab_size=tiny_model.config["vocab_size"])


def test_sequences_per_second_is_batch_times_batches(tiny_report):
    assert [r.batch_size for r in tiny_report.results] == [1, 16]
    for r in tiny_report.results:
        assert r.sequences_per_s == pytest.approx(r.batch_size * r.batches_per_s, rel=1e-9)
        # on the CPU, throughput is 1 / mean latency of synchronous calls
        assert r.batches_per_s == pytest.approx(1e3 / r.latency.mean_ms, rel=1e-9)
        assert r.iterations >= QUICK.min_iterations


def test_latency_percentiles_are_ordered(tiny_report):
    for r in tiny_report.results:
        lat = r.latency
        assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
        assert lat.min_ms <= lat.mean_ms <= lat.max_ms


def test_bench_feeds_real_features_not_zeros(tiny_report, perf_features, tiny_vocab):
    for r in tiny_report.results:
        assert r.feed["source"].startswith("SQuAD")
        assert r.feed["nonzero_ids"] > 0.3 * r.batch_size * r.seq_len
        assert r.feed["distinct_ids"] > 20
        assert 50 < r.feed["real_tokens_mean"] < SEQ
    feed = real_feed(perf_features, 16, SEQ, vocab_size=tiny_vocab)
    for i, f in enumerate(perf_features[:16]):
        np.testing.assert_array_equal(feed["attention_mask"][i], f.attention_mask)
        assert feed["input_ids"][i, 0] == f.input_ids[0]   # [CLS] survives the folding


def test_results_carry_runner_and_weights(tiny_report):
    for r in tiny_report.results:
        assert r.backend == "torch" and r.precision == "fp32" and r.device == "cpu"
        assert r.weights == "random"
        assert r.transfer == "with_copies"   # no device-only figure on the CPU
    d = tiny_report.as_dict()
    assert "random weights" in d["warning"]
    assert d["environment"]["cpus_usable"] >= 1
