"""`albert-ixrt run`'s report: skips and failures in words, titles from what ran, no stale verdict,
where the time went.  One tiny run (--skip bench, ~10 s) is shared by the module; the failure
cases stop after the load or features step, so they take about a second each."""
from __future__ import annotations

import json

import pytest

from albert_ixrt import steps as run_steps
from albert_ixrt.cli import main
from albert_ixrt.errors import InputFileError
from albert_ixrt.pipeline import STEPS, Step
from albert_ixrt.steps import title_for
from albert_ixrt.run_report import runner_text, time_advice

STALE_MD = "# albert-ixrt acceptance run (real)\n\n**real weights** — all steps passed\n"


def _plant_previous_run(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(STALE_MD)
    (out / "report.json").write_text(json.dumps({"passed": True, "steps": [],
                                                 "files": ["report.md", "report.json", "bench.json"]}))
    (out / "bench.json").write_text("{}")  # would otherwise feed perf_report a stale row


@pytest.fixture(scope="module")
def skip_bench_run(tmp_path_factory):
    """One tiny run with --skip bench over a folder holding a previous run's verdict."""
    out = tmp_path_factory.mktemp("run") / "results"
    _plant_previous_run(out)
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["run", "--profile", "tiny", "--out", str(out), "--skip", "bench"])
    return {"rc": rc, "out": out, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(),
            "report": json.loads((out / "report.json").read_text()), "md": (out / "report.md").read_text()}


def test_skipped_bench_is_a_row_with_its_reason_everywhere(skip_bench_run):
    r = skip_bench_run
    assert r["rc"] == 0, r["stderr"][-2000:]
    steps = {s["name"]: s for s in r["report"]["steps"]}
    assert list(steps) == list(STEPS)
    assert steps["bench"]["status"] == "skipped" and steps["bench"]["detail"]["reason"] == "asked with --skip"
    assert "| bench | skipped | 0.0 | asked with --skip |" in r["md"]
    assert "bench       skipped     0.0 s  asked with --skip" in r["stdout"]
    # the thresholds skip's reason in words on the console and in report.md, not only in report.json
    assert "| thresholds | skipped | 0.0 | random weights: accuracy is not judged |" in r["md"]
    assert "thresholds  skipped     0.0 s  random weights: accuracy is not judged" in r["stdout"]
    # every stage within tolerance: no layerwise verdict (the faulty side: tests/selftest/conversion/test_layerwise.py)
    assert steps["equivalence"]["status"] == "ok" and "first_layer_over_tolerance" not in steps["equivalence"]["detail"]
    assert "first layer over tolerance" not in r["md"]


def test_file_list_names_only_what_was_written(skip_bench_run):
    r = skip_bench_run
    written = next(line for line in r["stdout"].splitlines() if line.startswith("written: "))
    assert "bench.json" not in written and "report.md (summary)" in written and "perf_report.md" in written
    assert not (r["out"] / "bench.json").exists()          # the previous run's copy is gone
    for name in r["report"]["files"]:
        assert (r["out"] / name).is_file(), name
    perf = (r["out"] / "perf_report.md").read_text()
    assert "its bench step was skipped (asked with --skip); only the reference row is shown" in perf
    assert json.loads((r["out"] / "perf_report.json").read_text())["notes"]


def test_title_and_runner_line_say_what_ran_in_words(skip_bench_run):
    md = skip_bench_run["md"]
    assert md.startswith("# albert-ixrt acceptance run: self-test (tiny random-weight model)\n")
    assert "(real)" not in md and "{'" not in md and "'backend'" not in md
    # The run's default device is the GPU where torch sees one: the line names what ran.
    import torch
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    assert f"- runner: torch fp32 on {device}, threads " in md


def test_previous_verdict_is_replaced(skip_bench_run):
    assert skip_bench_run["md"] != STALE_MD and "all steps passed" in skip_bench_run["md"]
    assert skip_bench_run["report"]["removed_from_previous_run"] == ["bench.json"]  # replaced, or removed


def test_each_step_is_announced_with_its_time(skip_bench_run):
    err = skip_bench_run["stderr"]
    assert "albert-ixrt run: load -> features -> convert -> equivalence -> evaluate -> thresholds -> report; " \
           "skipping bench (asked with --skip)" in err
    for i, name in enumerate(STEPS, 1):
        assert f"[{i}/{len(STEPS)}] {name}: " in err, name
    assert "convert: ok in " in err


def test_a_step_that_raises_still_writes_the_report_and_exits_1(tmp_path, monkeypatch, capsys):
    """Planted bug in the evaluate step: report.md/json say which step failed and why, later steps
    'not run', the previous run's verdict untouched until the run ends, exit 1 (not a traceback on the console)."""
    seen = {}

    def broken(*a, **k):
        seen["md_while_running"] = (tmp_path / "report.md").read_text()
        raise RuntimeError("planted failure\nsecond line")

    monkeypatch.setattr(run_steps, "evaluate", broken)
    _plant_previous_run(tmp_path)
    rc = main(["run", "--profile", "tiny", "--out", str(tmp_path), "--quiet", "--skip", "convert", "bench"])
    out = capsys.readouterr()
    assert rc == 1
    assert seen["md_while_running"] == STALE_MD  # the run works in its staging folder
    report = json.loads((tmp_path / "report.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert report["passed"] is False and report["state"] == "finished"
    assert report["failure"] == {"step": "evaluate", "message": "RuntimeError: planted failure", "input": False}
    assert "Traceback" in steps["evaluate"]["detail"]["traceback"]
    assert steps["thresholds"]["status"] == steps["report"]["status"] == "not run"
    assert steps["bench"]["status"] == "skipped"
    md = (tmp_path / "report.md").read_text()
    assert "FAILED: evaluate" in md and "| evaluate | failed |" in md and "RuntimeError: planted failure" in md
    assert "| report | not run | 0.0 | the evaluate step failed |" in md
    assert "Traceback" not in out.err and "FAILED: evaluate" in out.out
    assert not (tmp_path / "bench.json").exists() and "perf_report.md" not in report["files"]


def test_bad_input_found_while_running_is_one_line_exit_2_and_a_report(tmp_path, monkeypatch, capsys):
    def bad_data(*a, **k):
        raise InputFileError("dev.json", "planted: not SQuAD v1.1")

    monkeypatch.setattr(run_steps, "prepare_data", bad_data)
    rc = main(["run", "--profile", "tiny", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr()
    assert rc == 2
    assert out.err.strip() == "albert-ixrt run: error: dev.json: planted: not SQuAD v1.1"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failure"] == {"step": "features", "message": "dev.json: planted: not SQuAD v1.1", "input": True}
    assert "| features | failed |" in (tmp_path / "report.md").read_text()


def test_time_advice_names_the_slow_steps_and_how_to_shorten_them():
    slow = [Step("load", "ok", 5.0), Step("features", "ok", 2.0), Step("equivalence", "ok", 56.0),
            Step("evaluate", "ok", 40.0), Step("bench", "ok", 99.0), Step("report", "ok", 1.0)]
    lines = time_advice(slow, bench_batch_sizes=(1, 16))
    assert [line.split()[0] for line in lines] == ["bench", "equivalence", "evaluate"]
    assert "bench took 99.0 s of 203.0 s (49 %): --skip bench saves it all, or fewer/smaller --bench-batch-sizes " \
           "(now 1 16)" in lines[0]
    assert "--skip equivalence" in lines[1] and "--limit K" in lines[2]
    assert "now --limit 50" in time_advice([Step("evaluate", "ok", 40.0, {"scores": {"questions": 50}})], limit=50)[0]
    # the other side: a quick run, or skipped steps, get no advice
    assert time_advice([Step("load", "ok", 0.5), Step("evaluate", "ok", 0.4)]) == []
    assert time_advice([Step("bench", "skipped", 0.0), Step("evaluate", "ok", 0.5)]) == []


def test_time_advice_includes_load_and_gives_the_runs_own_numbers():
    """Issue 17 item 9: before, load (40 s of a 91 s self-test under load) was left out and the tips
    were generic; now every step that took a tenth of the run is named, with its own figures."""
    steps = [Step("load", "ok", 40.4), Step("features", "ok", 0.3), Step("convert", "ok", 8.4),
             Step("equivalence", "ok", 10.6),
             Step("evaluate", "ok", 2.8, {"scores": {"questions": 12}, "features_per_second": 5.03}),
             Step("bench", "ok", 19.9, {"seconds_by_batch": {1: 4.3, 16: 11.5}}), Step("report", "ok", 8.5)]
    lines = time_advice(steps, bench_batch_sizes=(1, 16))
    assert [line.split()[0] for line in lines] == ["load", "bench", "equivalence"]
    assert lines[0].startswith("load took 40.4 s of 90.9 s (44 %): importing torch and loading the model")
    assert "(now 1 16; timed calls: batch 1 4.3 s, batch 16 11.5 s)" in lines[1]
    big = [Step("load", "ok", 20.0), Step("evaluate", "ok", 3170.0, {"scores": {"questions": 10570},
                                                                      "features_per_second": 3.43})]
    assert time_advice(big) == [
        "evaluate took 3170.0 s of 3190.0 s (99 %): 10570 questions at 0.3 s each (3.43 features/s): "
        "--limit 1000 would take about 300 s (accuracy is then not judged)"]


def test_titles_come_from_the_weights_label():
    class M:
        def __init__(self, weights, name):
            self.weights, self.name = weights, name

        @property
        def label(self):
            return "random weights" if self.weights == "random" else "real weights"

    assert title_for(M("random", "/d/config.json"), False) == "random weights, /d/config.json"
    assert title_for(M("real", "madlag/albert-base-v2-squad"), False) == "real weights, madlag/albert-base-v2-squad"
    assert title_for(M("random", "tiny"), True).startswith("self-test")


def test_runner_text_is_readable():
    text = runner_text({"backend": "onnxruntime", "precision": "int8", "device": "cpu", "threads": 2,
                        "providers": ["CPUExecutionProvider"], "int8": {"per_channel": True}})
    assert text == ("onnxruntime int8 on cpu, threads 2, providers CPUExecutionProvider, int8 (per_channel True)")
    assert "{" not in text and "[" not in text


def test_ctrl_c_leaves_the_previous_report_not_a_verdict(tmp_path, monkeypatch, capsys):
    """Ctrl-C: no verdict is written, and the previous run's report stays as it was (item 1 of issue 17;
    tests/unit/test_results_dir.py checks every byte of the folder)."""
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_steps, "evaluate", interrupted)
    _plant_previous_run(tmp_path)
    assert main(["run", "--profile", "tiny", "--out", str(tmp_path), "--quiet", "--skip", "convert"]) == 130
    assert (tmp_path / "report.md").read_text() == STALE_MD
    assert "interrupted in the evaluate step" in capsys.readouterr().err
