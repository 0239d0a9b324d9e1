"""albert_ixrt.loadgen pieces without a long LoadGen run: summary parsing, the QSL, the SUT's
batching and responses, and the command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from albert_ixrt.loadgen import FeatureQSL, LoadgenSettings, RunnerSUT, parse_summary, result_from_summary

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


def test_loadgen_command(tmp_path, squad_path, capsys):
    pytest.importorskip("mlperf_loadgen", reason="mlcommons-loadgen not installed")
    from albert_ixrt.cli import main

    code = main(["loadgen", "--model", "tiny", "--scenario", "SingleStream", "Offline", "--batch-size", "4",
                 "--seq-len", "64", "--min-query-count", "4", "--min-duration-ms", "100", "--expected-qps", "20",
                 "--examples", "8", "--squad", str(squad_path), "--out", str(tmp_path)])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["scenario"] for line in lines] == ["SingleStream", "Offline"]
    assert all(line["samples_per_second"] > 0 and line["weights"] == "random" for line in lines)
    saved = json.loads((tmp_path / "loadgen_Offline.json").read_text())
    assert saved["schema"] == "albert-ixrt/loadgen/1" and (tmp_path / "Offline" / "mlperf_log_summary.txt").is_file()
