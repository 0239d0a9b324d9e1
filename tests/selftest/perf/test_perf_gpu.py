"""GPU paths: TensorRT / ixRT engines and torch on CUDA, timed with and without host<->device
copies.  They skip (with the reason) without a GPU and TensorRT, and fail under --require-gpu."""
from __future__ import annotations

import numpy as np
import pytest

from albert_ixrt.bench import BenchSettings, real_feed, run_benchmark
from albert_ixrt.errors import BackendUnavailable
from albert_ixrt.runners import create_runner
from albert_ixrt.config import TOLERANCES

pytestmark = [pytest.mark.selftest, pytest.mark.gpu]

SEQ = 384


def _engine_runner(require_backend, backend, onnx_path, tmp_path, precision="fp16"):
    from albert_ixrt.engine import ShapeProfile

    try:
        return create_runner(backend, onnx_path=onnx_path, precision=precision, cache_dir=tmp_path,
                             profile=ShapeProfile.covering((1, 16), (16, SEQ)))
    except BackendUnavailable as exc:
        require_backend(exc)


@pytest.mark.parametrize("backend", ["tensorrt", "ixrt"])
def test_engine_fp16_matches_fp32_and_is_cached(require_backend, backend, tiny_onnx, engine_onnx, perf_features,
                                                tiny_vocab,
                                                tmp_path):
    runner = _engine_runner(require_backend, backend, engine_onnx(backend, "fp16"), tmp_path)
    assert runner.describe()["engine_source"] == "built"
    feed = real_feed(perf_features, 16, SEQ, vocab_size=tiny_vocab)
    ref = create_runner("onnxruntime", onnx_path=tiny_onnx["fused"], precision="fp32", device="cpu")
    start, end = runner.infer(feed)
    ref_start, ref_end = ref.infer(feed)
    mask = feed["attention_mask"] > 0
    atol = TOLERANCES["fp16"].atol
    assert np.abs(start - ref_start)[mask].max() < atol and np.abs(end - ref_end)[mask].max() < atol
    again = _engine_runner(require_backend, backend, engine_onnx(backend, "fp16"), tmp_path)
    assert again.describe()["engine_source"] == "cache"


@pytest.mark.parametrize("backend", ["tensorrt", "ixrt"])
def test_engine_throughput_with_and_without_copies(benchmark, require_backend, backend, engine_onnx, perf_features,
                                                   tiny_vocab, tmp_path):
    runner = _engine_runner(require_backend, backend, engine_onnx(backend, "fp16"), tmp_path)
    report = run_benchmark(runner, perf_features, BenchSettings(batch_sizes=(1, 16), seq_lens=(SEQ,), warmup=5,
                                                                iterations=50, transfers="both"),
                           vocab_size=tiny_vocab)
    by = {(r.batch_size, r.transfer): r for r in report.results}
    assert set(by) == {(b, t) for b in (1, 16) for t in ("with_copies", "device_only")}
    for b in (1, 16):
        # Copies only add work: the device-only figure is never (meaningfully) slower.
        assert by[b, "device_only"].batches_per_s >= 0.9 * by[b, "with_copies"].batches_per_s
    feed = real_feed(perf_features, 16, SEQ, vocab_size=tiny_vocab)
    tensors = runner.to_device(feed)

    def step():
        runner.infer_tensors(tensors)
        runner.synchronize()
    benchmark.extra_info.update(runner.describe())
    benchmark.pedantic(step, rounds=20, warmup_rounds=5, iterations=1)


def test_torch_cuda_both_figures(require_backend, tiny_model, perf_features, tiny_vocab):
    import torch

    if not torch.cuda.is_available():
        require_backend(BackendUnavailable("torch", "no CUDA GPU visible to torch"))
    runner = create_runner("torch", model=tiny_model, precision="fp16", device="cuda")
    report = run_benchmark(runner, perf_features, BenchSettings(batch_sizes=(16,), seq_lens=(SEQ,), warmup=3,
                                                                iterations=20), vocab_size=tiny_vocab)
    assert {r.transfer for r in report.results} == {"with_copies", "device_only"}
    assert all(r.throughput_method.startswith("back-to-back") for r in report.results)
