"""albert_ixrt.report: the reference table, accuracy only from real weights, the plot, the command."""
from __future__ import annotations

import json

import pytest

from albert_ixrt.bench import BenchReport, BenchResult, LatencyStats
from albert_ixrt.report import NO_ACCURACY, NOT_MEASURED, REPORT_MD, collect, rows_for, write_report


def _result(backend="onnxruntime", precision="fp16", batch=16, bps=40.0, weights="real", model="/models/albert",
            transfer="with_copies"):
    lat = LatencyStats(1e3 / bps, 1e3 / bps, 1.1e3 / bps, 1.2e3 / bps, 0.9e3 / bps, 1.3e3 / bps, 1.0)
    return BenchResult(backend=backend, precision=precision, device="Fake GPU", batch_size=batch, seq_len=384,
                       transfer=transfer, iterations=10, seconds=10 / bps, batches_per_s=bps,
                       sequences_per_s=batch * bps, latency=lat, throughput_method="x", stopped_by="count",
                       weights=weights, model=model)


def _metrics(backend="onnxruntime", precision="fp16", weights="real", model="/models/albert"):
    return {"scores": {"exact_match": 83.11, "f1": 90.22, "bytemlperf_exact_match": 80.01, "bytemlperf_f1": 87.02},
            "runner": {"backend": backend, "precision": precision}, "model": {"weights": weights, "model": model}}


def _write(folder, results, metrics=None, name="bench.json"):
    folder.mkdir(parents=True, exist_ok=True)
    BenchReport(results, {"cpu": "Fake CPU"}, {"weights": results[0].weights}).write(folder / name)
    if metrics is not None:
        (folder / "eval").mkdir(exist_ok=True)
        (folder / "eval" / "metrics.json").write_text(json.dumps(metrics))


def _table_rows(md: str) -> list[list[str]]:
    lines = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def test_real_weights_rows_get_em_f1_of_the_matching_evaluation(tmp_path):
    _write(tmp_path, [_result(batch=1, bps=200.0), _result(batch=16, bps=40.0)], _metrics())
    written = write_report(tmp_path)
    rows = _table_rows(written["markdown"].read_text())
    head, body = rows[0], rows[1:]
    assert head[:6] == ["Model", "BatchSize", "Precision", "QPS", "Exact Match", "F1 Score"]
    assert body[0][:8] == ["/models/albert", "1", "FP16", "200.00", "80.01", "87.02", "200.0", "200.00"]
    assert body[1][:8] == ["/models/albert", "16", "FP16", "40.00", "80.01", "87.02", "640.0", "40.00"]
    assert body[1][-1] == f"{40 / 50.99:.2f}x" and body[0][-1] == "n/a (batch 1; reference is batch 16)"
    ref = body[-1]
    assert "reference" in ref[0] and ref[1:7] == ["16", "FP16", "50.99", "80.18", "87.57", "815.8"]
    md = written["markdown"].read_text()
    assert "official SQuAD v1.1 EM 83.11 / F1 90.22" in md


def test_random_weights_never_show_accuracy(tmp_path):
    _write(tmp_path, [_result(weights="random", model="/data/albert-base-v2/config.json")], _metrics(weights="random"))
    md = write_report(tmp_path)["markdown"].read_text()
    row = _table_rows(md)[1]
    assert row[0] == "albert-base-v2 [random weights]"
    assert row[4] == row[5] == NO_ACCURACY
    assert "80.01" not in md and "87.02" not in md and "83.11" not in md
    assert "measure nothing about accuracy" in md


def test_real_bench_with_random_evaluation_shows_no_accuracy(tmp_path):
    _write(tmp_path, [_result()], _metrics(weights="random"))
    row = _table_rows(write_report(tmp_path)["markdown"].read_text())[1]
    assert row[4] == NO_ACCURACY


def test_unmatched_backend_has_no_accuracy_cell(tmp_path):
    _write(tmp_path, [_result(backend="tensorrt")], _metrics(backend="onnxruntime"))
    row = _table_rows(write_report(tmp_path)["markdown"].read_text())[1]
    assert row[4] == row[5] == NOT_MEASURED


@pytest.mark.parametrize("evaluated", [
    {"model": "/models/other"}, {"precision": "fp32"}, {"backend": "torch"}, {"model": None}])
def test_em_f1_only_from_an_evaluation_of_the_same_model_backend_and_precision(tmp_path, evaluated):
    """The matching evaluation gives the row its numbers (first case); one differing in model,
    precision or backend, or naming no model, gives none."""
    _write(tmp_path / "same", [_result()], _metrics())
    row = _table_rows(write_report(tmp_path / "same")["markdown"].read_text())[1]
    assert row[4:6] == ["80.01", "87.02"]
    _write(tmp_path / "other", [_result()], _metrics(**evaluated))
    row = _table_rows(write_report(tmp_path / "other")["markdown"].read_text())[1]
    assert row[4] == row[5] == NOT_MEASURED


def test_json_and_plot(tmp_path):
    _write(tmp_path / "a", [_result(batch=b, bps=100.0 / b) for b in (1, 2, 4, 8, 16)])
    _write(tmp_path / "b", [_result(backend="torch", precision="fp32", batch=b, bps=10.0 / b) for b in (1, 16)])
    written = write_report(tmp_path, tmp_path / "out")
    data = json.loads(written["json"].read_text())
    assert len(data["rows"]) == 8 and data["rows"][-1]["reference"] is True
    assert data["qps_definition"].startswith("batches per second")
    assert written["plot"].read_bytes()[:4] == b"\x89PNG" and written["plot"].stat().st_size > 5000
    assert (tmp_path / "out" / REPORT_MD).is_file()


def test_collect_ignores_other_json(tmp_path):
    _write(tmp_path, [_result()])
    (tmp_path / "report.json").write_text('{"profile": "tiny"}')
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "manifest.json").write_text('{"schema": 1}')
    inputs = collect(tmp_path)
    assert len(inputs.bench) == 1 and inputs.metrics == []
    assert len(rows_for(inputs)) == 2


def test_loadgen_results_are_listed(tmp_path):
    _write(tmp_path, [_result()])
    (tmp_path / "loadgen_Offline.json").write_text(json.dumps({
        "schema": "albert-ixrt/loadgen/1", "scenario": "Offline", "valid": False, "samples_per_second": 123.4,
        "latency_ns": {"90.00": 5e6}, "samples_issued": 110, "runner": {"backend": "torch", "precision": "fp32"},
        "settings": {"model": {"weights": "random"}}, "mode": "quick",
        "checks": {"Min duration satisfied": "NO", "Min queries satisfied": "Yes"}}))
    md = write_report(tmp_path)["markdown"].read_text()
    assert ("| Offline | torch | fp32 | 123.40 | 5.00 | 110 | INVALID (Min duration satisfied: NO) "
            "[quick run: too short for MLPerf's rules, as expected] | random |") in md


def test_report_command(tmp_path, capsys):
    from albert_ixrt.cli import main

    _write(tmp_path, [_result()])
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| Model | BatchSize | Precision | QPS | Exact Match | F1 Score |" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "no benchmark reports" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_malformed_inputs_name_the_file(tmp_path):
    from albert_ixrt.errors import InputFileError
    from albert_ixrt.report import write_report

    (tmp_path / "bench.json").write_text('{"schema": "albert-ixrt/bench/1", "results": [{}]}')
    with pytest.raises(InputFileError, match="bench.json: benchmark report with a malformed body"):
        write_report(tmp_path)
    (tmp_path / "bench.json").write_text('{"schema": "albert-ixrt/bench/1", "res')
    with pytest.raises(InputFileError, match="bench.json: unreadable"):
        write_report(tmp_path)
    (tmp_path / "bench.json").unlink()
    (tmp_path / "metrics.json").write_text('{"scores": {"exact_match": 1}}')
    with pytest.raises(InputFileError, match="metrics.json: metrics file lacks scores"):
        write_report(tmp_path)


def test_a_report_written_in_a_staging_folder_names_the_folder_it_ends_up_in(tmp_path):
    """A run writes its report in OUT/.albert-ixrt-staging.*/ and renames that to OUT when it succeeds:
    with ``shown_as=OUT`` the sources and evaluations are named under OUT, relative to it, and the staging
    folder (gone after the run) nowhere.  Without it the report names the folder it was given."""
    final = tmp_path / "results"
    staging = final / ".albert-ixrt-staging.k3x9a0"
    _write(staging, [_result()])
    (staging / "metrics.json").write_text(json.dumps(_metrics()))
    written = write_report(staging, shown_as=final)
    md = written["markdown"].read_text()
    assert ".albert-ixrt-staging" not in md
    assert f"In `{final}`:\n\n- `bench.json`\n- `metrics.json`\n" in md
    assert "- onnxruntime/fp16 (results): official SQuAD v1.1 EM 83.11" in md
    assert json.loads(written["json"].read_text())["sources"] == [str(final / "bench.json"),
                                                                  str(final / "metrics.json")]

    md = write_report(staging)["markdown"].read_text()                       # a direct call: its own folder
    assert f"In `{staging}`:\n\n- `bench.json`\n- `metrics.json`\n" in md
    assert f"- onnxruntime/fp16 ({staging.name}): official" in md


def test_sources_in_subfolders_are_named_relative_to_the_results_folder(tmp_path):
    _write(tmp_path / "gpu0", [_result()], _metrics())
    md = write_report(tmp_path, shown_as="/results/final")["markdown"].read_text()
    assert "In `/results/final`:\n\n- `gpu0/bench.json`\n- `gpu0/eval/metrics.json`\n" in md
    assert "- onnxruntime/fp16 (gpu0/eval): official" in md and str(tmp_path) not in md
