"""albert_ixrt.loadgen pieces without a long LoadGen run: summary parsing, the QSL, the SUT's
batching and responses, and the command."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from albert_ixrt.loadgen import (FeatureQSL, LoadgenSettings, RunnerSUT, parse_summary, result_from_logs,
                                 result_from_summary)

LOADGEN_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "loadgen"

SINGLE_STREAM = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 8482778
Result is : VALID
  Min duration satisfied : Yes
Early Stopping Result:
 * Processed at least 64 queries (138).

================================================
Additional Stats
================================================
QPS w/ loadgen overhead         : 136.48
QPS w/o loadgen overhead        : 136.72

Min latency (ns)                : 5539753
Max latency (ns)                : 15576371
Mean latency (ns)               : 7314416
50.00 percentile latency (ns)   : 7186657
90.00 percentile latency (ns)   : 8482778
"""

OFFLINE = """Scenario : Offline
Samples per second: 27.1266
Result is : INVALID
Min latency (ns)                : 251441697
"""


def test_parse_single_stream_summary():
    summary = parse_summary(SINGLE_STREAM)
    assert summary["Scenario"] == "SingleStream" and summary["Result is"] == "VALID"
    valid, rate, latency = result_from_summary(summary, "SingleStream")
    assert valid is True and rate == pytest.approx(136.72)
    assert latency == {"min": 5539753, "max": 15576371, "mean": 7314416, "50.00": 7186657, "90.00": 8482778}


def test_parse_offline_summary():
    valid, rate, latency = result_from_summary(parse_summary(OFFLINE), "Offline")
    assert valid is False and rate == pytest.approx(27.1266) and latency == {"min": 251441697}


def test_settings_validation():
    with pytest.raises(ValueError, match="scenario"):
        LoadgenSettings(scenario="Server")
    with pytest.raises(ValueError):
        LoadgenSettings(batch_size=0)


class _Sample:
    def __init__(self, index, id_):
        self.index, self.id = index, id_


class _EchoRunner:
    name, precision = "echo", "fp32"

    def __init__(self):
        self.batches = []

    def infer(self, feed):
        self.batches.append(feed["input_ids"].shape)
        ids = feed["input_ids"].astype(np.float32)
        return ids, -ids

    def describe(self):
        return {"backend": "echo"}


def test_qsl_and_sut_batch_and_answer(dev_features, monkeypatch):
    import albert_ixrt.loadgen as lgmod

    completed = []

    class FakeLG:
        @staticmethod
        def QuerySampleResponse(id_, ptr, size):
            return (id_, ptr, size)

        @staticmethod
        def QuerySamplesComplete(responses):
            completed.extend(responses)

    monkeypatch.setattr(lgmod, "_lg", lambda: FakeLG)
    qsl = FeatureQSL(dev_features[:10], seq_len=64, vocab_size=1000)
    qsl.load(range(10))
    runner = _EchoRunner()
    sut = RunnerSUT(runner, qsl, batch_size=4)
    sut.issue_queries([_Sample(i, 100 + i) for i in range(10)])
    assert runner.batches == [(4, 64), (4, 64), (2, 64)] and sut.samples_done == 10 and sut.calls == 3
    assert [c[0] for c in completed] == list(range(100, 110))
    assert all(size == 2 * 64 * 4 for _, _, size in completed)    # start + end logits, float32
    feed = qsl.batch([3])
    assert feed["input_ids"].max() < 1000 and feed["attention_mask"].sum() == min(dev_features[3].length, 64)
    qsl.unload([3])
    with pytest.raises(KeyError):
        qsl.batch([3])


def _logs(tmp_path, summary: str, detail: str | None = None) -> Path:
    """A LoadGen log folder holding fixtures/loadgen/<summary> (and a detail log)."""
    shutil.copy(LOADGEN_FIXTURES / summary, tmp_path / "mlperf_log_summary.txt")
    if detail:
        shutil.copy(LOADGEN_FIXTURES / detail, tmp_path / "mlperf_log_detail.txt")
    return tmp_path


def test_an_invalid_run_says_why(tmp_path):
    """LoadGen's own summary of a short SingleStream run: the reasons reach the result and the console."""
    r = result_from_logs(_logs(tmp_path, "single_stream_invalid_summary.txt", "single_stream_invalid_detail.txt"),
                         LoadgenSettings(min_duration_ms=100, min_query_count=4))
    assert r.valid is False
    assert r.checks == {"Min duration satisfied": "NO", "Min queries satisfied": "Yes",
                        "Early stopping satisfied": "Yes"}
    assert r.invalid_reasons[0] == "Min duration satisfied : NO: the run ended before min_duration 100 ms"
    assert r.invalid_reasons[1].startswith("LoadGen error (error_runtime): Ending early: Ran out of generated queries")
    assert r.recommendations == ["Decrease the expected latency so the loadgen pre-generates more queries."]
    assert r.early_stopping[0] == "Processed at least 64 queries (201)."
    assert r.early_stopping[-1].endswith("(would need to process at least 662 total queries).")  # wrapped bullet
    text = "\n".join(r.console_lines())
    assert "SingleStream: LoadGen says INVALID (expected of a quick run, which is too short" in text
    assert "LoadGen recommends: Decrease the expected latency" in text and str(tmp_path) in text
    assert r.log_dir == str(tmp_path) and r.as_dict()["invalid_reasons"] == r.invalid_reasons


def test_an_invalid_offline_run_and_valid_runs(tmp_path):
    r = result_from_logs(_logs(tmp_path, "offline_invalid_summary.txt"), LoadgenSettings(scenario="Offline"))
    assert r.valid is False and r.invalid_reasons == [
        "Min duration satisfied : NO: the run ended before min_duration 1000 ms"]
    assert r.recommendations == ["Increase expected QPS so the loadgen pre-generates a larger (coalesced) query."]
    for name, scenario in (("single_stream_valid_summary.txt", "SingleStream"),
                           ("offline_valid_summary.txt", "Offline")):
        r = result_from_logs(_logs(tmp_path, name), LoadgenSettings(scenario=scenario))
        assert r.valid is True and r.invalid_reasons == [] and r.recommendations == []
        assert set(r.checks.values()) == {"Yes"}
        assert "(a quick run; --mlperf-valid runs by MLPerf's rules)" in r.console_lines()[0]  # still labelled
        r = result_from_logs(_logs(tmp_path, name), LoadgenSettings.mlperf_valid(scenario))
        assert r.console_lines()[0] == f"{scenario}: LoadGen says VALID (MLPerf rules)" and r.note == ""


def test_mlperf_valid_preset_follows_the_rules():
    from albert_ixrt.config import MLPERF_MIN_DURATION_MS, MLPERF_MIN_QUERY_COUNT
    from albert_ixrt.loadgen import make_test_settings

    assert MLPERF_MIN_DURATION_MS == 600_000 and MLPERF_MIN_QUERY_COUNT == {"SingleStream": 1024, "Offline": 10833}
    single, offline = LoadgenSettings.mlperf_valid("SingleStream"), LoadgenSettings.mlperf_valid("Offline")
    assert (single.min_duration_ms, single.min_query_count, single.max_duration_ms) == (600_000, 1024, 0)
    assert (offline.min_duration_ms, offline.min_query_count, offline.max_duration_ms) == (600_000, 10833, 0)
    assert single.mode == offline.mode == "mlperf" and single.rule_violations() == []
    assert LoadgenSettings.mlperf_valid("Offline", min_duration_ms=900_000).min_duration_ms == 900_000
    with pytest.raises(ValueError, match="min_duration_ms 1000 < 600000"):
        LoadgenSettings.mlperf_valid("SingleStream", min_duration_ms=1000)
    with pytest.raises(ValueError, match="max_duration_ms 60000 stops the run"):
        LoadgenSettings.mlperf_valid("Offline", max_duration_ms=60_000)
    assert LoadgenSettings().rule_violations() != []                    # the quick defaults are not MLPerf's

    class FakeLG:                        # LoadGen's TestSettings as plain attributes
        class TestSettings:
            pass

        class TestScenario:
            SingleStream, Offline = "SS", "OFF"

        class TestMode:
            PerformanceOnly = "perf"

    ts = make_test_settings(FakeLG, offline)
    assert (ts.scenario, ts.min_duration_ms, ts.min_query_count, ts.max_duration_ms) == ("OFF", 600_000, 10833, 0)


def test_mlperf_valid_command_uses_the_preset_and_fails_an_invalid_run(tmp_path, monkeypatch, capsys):
    """The command's wiring without a ten-minute run: LoadGen is replaced by the fixture logs."""
    from albert_ixrt.cli import main
    from albert_ixrt.commands import loadgen as cmd
    import albert_ixrt.loadgen as lgmod

    seen = {}

    def fake_run(runner, features, settings, *, log_dir, vocab_size=None):
        seen[settings.scenario] = settings
        log_dir.mkdir(parents=True, exist_ok=True)
        return result_from_logs(_logs(log_dir, fake_run.summary[settings.scenario]), settings)

    def fake_features(args, model):
        seen["examples"] = args.examples
        return [], None

    monkeypatch.setattr(lgmod, "run_loadgen", fake_run)
    monkeypatch.setattr(cmd, "features_for", fake_features)
    argv = ["loadgen", "--model", "tiny", "--mlperf-valid", "--out", str(tmp_path)]
    fake_run.summary = {"SingleStream": "single_stream_valid_summary.txt", "Offline": "offline_invalid_summary.txt"}
    assert main(argv) == 1                                             # planted bad: Offline INVALID
    out, err = capsys.readouterr()
    assert seen["SingleStream"].min_query_count == 1024 and seen["Offline"].min_query_count == 10833
    assert all(seen[s].min_duration_ms == 600_000 and seen[s].mode == "mlperf" for s in ("SingleStream", "Offline"))
    assert seen["examples"] is None                                    # the whole dev set
    assert "Offline: LoadGen says INVALID (MLPerf rules)" in out and "why: Min duration satisfied : NO" in out
    assert "LoadGen says INVALID for Offline" in err
    line = [json.loads(x) for x in out.splitlines() if x.startswith("{")][1]
    assert line["valid"] is False and line["mode"] == "mlperf" and line["invalid_reasons"]
    fake_run.summary = {"SingleStream": "single_stream_valid_summary.txt", "Offline": "offline_valid_summary.txt"}
    assert main(argv) == 0                                             # good: both VALID
    assert main(argv + ["--min-duration-ms", "1000"]) == 2            # a preset may not be weakened
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("albert-ixrt loadgen: error: loadgen SingleStream: "
                                                   "min_duration_ms 1000 < 600000")


def test_loadgen_command(tmp_path, squad_path, capsys):
    pytest.importorskip("mlperf_loadgen", reason="mlcommons-loadgen not installed")
    from albert_ixrt.cli import main

    code = main(["loadgen", "--model", "tiny", "--scenario", "SingleStream", "Offline", "--batch-size", "4",
                 "--seq-len", "64", "--min-query-count", "4", "--min-duration-ms", "100", "--expected-qps", "20",
                 "--examples", "8", "--squad", str(squad_path), "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [line["scenario"] for line in lines] == ["SingleStream", "Offline"]
    assert all(line["samples_per_second"] > 0 and line["weights"] == "random" for line in lines)
    assert all(line["mode"] == "quick" and (line["valid"] or line["invalid_reasons"]) for line in lines)
    assert "SingleStream: LoadGen says " in out and "note: quick mode: a short run, not meant to be VALID" in out
    saved = json.loads((tmp_path / "loadgen_Offline.json").read_text())
    assert saved["schema"] == "albert-ixrt/loadgen/1" and (tmp_path / "Offline" / "mlperf_log_summary.txt").is_file()
    assert saved["checks"] and saved["log_dir"] == str(tmp_path / "Offline")


def test_loadgen_keeps_its_logs_in_the_default_output_folder(tmp_path, squad_path, monkeypatch, capsys):
    pytest.importorskip("mlperf_loadgen", reason="mlcommons-loadgen not installed")
    from albert_ixrt.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["loadgen", "--model", "tiny", "--scenario", "SingleStream", "--seq-len", "64", "--min-query-count",
                 "4", "--min-duration-ms", "50", "--examples", "4", "--squad", str(squad_path)]) == 0
    out = capsys.readouterr().out
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        assert (tmp_path / "results" / "loadgen" / "SingleStream" / name).is_file()
    assert "results/loadgen/SingleStream/mlperf_log_summary.txt" in out
