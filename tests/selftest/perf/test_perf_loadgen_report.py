"""MLPerf LoadGen over a runner, and the report built from benchmark JSON (tiny model, seconds)."""
from __future__ import annotations

import json

import pytest

from albert_ixrt.bench import BenchSettings, run_benchmark
from albert_ixrt.runners import create_runner

pytestmark = pytest.mark.selftest


@pytest.fixture(scope="module")
def tiny_torch(tiny_model):
    return create_runner("torch", model=tiny_model, precision="fp32", device="cpu")


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_loadgen_scenarios(benchmark, tiny_torch, perf_features, tiny_vocab, scenario, tmp_path):
    pytest.importorskip("mlperf_loadgen", reason="mlcommons-loadgen not installed")
    from albert_ixrt.loadgen import LoadgenSettings, run_loadgen

    settings = LoadgenSettings(scenario=scenario, batch_size=8, min_query_count=16, min_duration_ms=500,
                               expected_latency_ms=10, expected_qps=40)
    result = benchmark.pedantic(run_loadgen, args=(tiny_torch, perf_features, settings),
                                kwargs={"log_dir": tmp_path, "vocab_size": tiny_vocab}, rounds=1, iterations=1)
    benchmark.extra_info.update({"scenario": scenario, "samples_per_second": result.samples_per_second})
    assert (tmp_path / "mlperf_log_summary.txt").is_file()
    assert result.summary["Scenario"] == scenario
    assert result.samples_per_second and result.samples_per_second > 0
    assert result.latency_ns["min"] <= result.latency_ns["50.00"] <= result.latency_ns["90.00"] <= \
        result.latency_ns["max"]
    if scenario == "SingleStream":
        assert result.runner_calls == result.samples_issued >= 16     # one sample per query
    else:
        assert result.samples_issued >= 16
        assert result.runner_calls == -(-result.samples_issued // 8)   # batched 8 at a time


def test_report_from_bench_json(benchmark, tiny_torch, perf_features, tiny_model, tmp_path):
    from albert_ixrt.report import NO_ACCURACY, write_report

    settings = BenchSettings(batch_sizes=(1, 16), seq_lens=(128,), warmup=1, iterations=3, max_seconds=5)
    report = run_benchmark(tiny_torch, perf_features, settings, model_info=tiny_model.describe(),
                           vocab_size=tiny_model.config["vocab_size"])
    report.write(tmp_path / "bench.json")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({
        "scores": {"exact_match": 0.4, "f1": 3.1, "bytemlperf_exact_match": 0.3, "bytemlperf_f1": 2.9},
        "runner": {"backend": "torch", "precision": "fp32"}, "model": {"weights": "random"}}))
    written = benchmark.pedantic(write_report, args=(tmp_path,), rounds=1, iterations=1)
    md = written["markdown"].read_text()
    assert "| Model | BatchSize | Precision | QPS | Exact Match | F1 Score |" in md
    assert "| 50.99 | 80.18 | 87.57 | 815.8 |" in md          # the reference row
    ours = [line for line in md.splitlines() if line.startswith("| tiny [random weights]")]
    assert len(ours) == 2
    for line, r in zip(ours, report.results):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == str(r.batch_size) and cells[2] == "FP32"
        assert float(cells[3]) == pytest.approx(r.batches_per_s, abs=0.01)
        assert cells[4] == cells[5] == NO_ACCURACY                # random weights: never an EM/F1
        assert float(cells[6]) == pytest.approx(r.sequences_per_s, abs=0.1)
    assert "2.90" not in md and "0.30" not in md
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(written["json"].read_text())["rows"]
    assert rows[-1]["reference"] is True and rows[-1]["qps"] == 50.99
