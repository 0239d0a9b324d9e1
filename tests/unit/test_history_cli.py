"""``albert-ixrt history add|check|plot``: exit codes both ways, the JSON, and the picture."""
from __future__ import annotations

import json

from albert_ixrt.cli import main
from albert_ixrt.history import group_series, load_history
from albert_ixrt.history_check import judge
from albert_ixrt.history_plot import panels

from history_nights import REPORT_V2, RUN_V1, benchmark_nights, commit, quiet, report_nights


def _history(tmp_path, factors, name="history.jsonl", keep=None):
    history = tmp_path / name
    assert main(["history", "add", "--history", str(history),
                 *map(str, benchmark_nights(tmp_path / f"{name}-nights", factors, keep))]) == 0
    return history


def _slow(n=12, at=10):
    factors = quiet(n)
    factors[at:] = [f * 1.08 for f in factors[at:]]
    return factors


def test_check_exits_0_on_quiet_nights_and_1_on_a_slowdown_with_one_line_each(tmp_path, capsys):
    assert main(["history", "check", "--history", str(_history(tmp_path, quiet(12), "quiet.jsonl"))]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out and "0 regression(s) in 2 series" in out
    assert main(["history", "check", "--history", str(_history(tmp_path, _slow(), "slow.jsonl")),
                 "--json", str(tmp_path / "check.json")]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("REGRESSION ")]
    assert len(lines) == 2 and all(f"git log {commit(9)[:12]}..{commit(10)[:12]}" in line for line in lines)
    doc = json.loads((tmp_path / "check.json").read_text())
    assert doc["exit_code"] == 1 and doc["regressions"] == lines


def test_check_options_change_the_verdict(tmp_path, capsys):
    history = _history(tmp_path, _slow())
    assert main(["history", "check", "--history", str(history), "--floor", "10"]) == 0
    assert main(["history", "check", "--history", str(history), "--persist", "3"]) == 0   # two slow nights of three
    assert main(["history", "check", "--history", str(history), "--persist", "2"]) == 1
    capsys.readouterr()


def test_usage_errors_exit_2_in_one_line(tmp_path, capsys):
    history = _history(tmp_path, quiet(3))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for argv, words in ((["history", "check", "--history", str(tmp_path / "missing.jsonl")], "not found"),
                        (["history", "check", "--history", str(history), "--persist", "0"], "must be >= 1"),
                        (["history", "check", "--history", str(history), "--baseline", "2"], "at least 5"),
                        (["history", "check", "--history", str(empty)], "holds no nights"),
                        (["history", "add", "--history", str(history), str(tmp_path / "none.json")], "not found"),
                        (["history"], "required")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, (argv, err)


def test_add_takes_every_kind_of_source_in_one_call(tmp_path, capsys):
    history = tmp_path / "h.jsonl"
    bench = benchmark_nights(tmp_path / "b", [1.0])
    assert main(["history", "add", "--history", str(history), str(bench[0]), str(REPORT_V2), str(RUN_V1)]) == 0
    assert "added 6 record(s) of 6 series from 3 source(s)" in capsys.readouterr().out
    assert {r["source"]["kind"] for r in load_history(history)} == {"pytest-benchmark", "report", "report-v1"}


def test_the_plot_draws_the_flagged_nights_and_none_on_quiet_ones(tmp_path):
    slow, quiet_history = _history(tmp_path, _slow(), "slow.jsonl"), _history(tmp_path, quiet(12), "quiet.jsonl")
    drawn = panels(judge(group_series(load_history(slow))))
    assert [p.flagged for p in drawn] == [[10, 11], [10, 11]] and drawn[0].first_bad == 10
    assert drawn[0].band[0] < drawn[0].band[1] < drawn[0].band[2] and len(drawn[0].ticks) == 12
    assert drawn[0].title.startswith("tiny (random weights) | torch fp32 on cpu")
    assert [p.flagged for p in panels(judge(group_series(load_history(quiet_history))))] == [[], []]


def test_plot_writes_a_png(tmp_path, capsys):
    png = tmp_path / "nights.png"
    assert main(["history", "plot", "--history", str(_history(tmp_path, _slow(), keep=1)), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in capsys.readouterr().out


def test_the_plot_marks_an_accuracy_drop_below_the_throughput(tmp_path):
    accuracy = [None] * 7 + [{"f1": 90.0}]
    history = tmp_path / "h.jsonl"
    assert main(["history", "add", "--history", str(history),
                 *map(str, report_nights(tmp_path / "r", quiet(8), accuracy))]) == 0
    drawn = [p for p in panels(judge(group_series(load_history(history)))) if p.accuracy]
    assert len(drawn) == 1 and drawn[0].accuracy_flagged == [7] and drawn[0].flagged == []
    assert "F1 (official)" in drawn[0].accuracy and drawn[0].thresholds["F1 (ByteMLPerf-compatible)"] == 87.57
