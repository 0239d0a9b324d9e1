"""`albert-ixrt run`, the command-line door of the acceptance session: every step announced, the sign-off
record (report.json schema 2, report.md) naming the subject resolved and hashed and the suite's version,
skips and failures in words, the verdict line never PASSED alone, where the time went.  One tiny run
(--skip perf) is shared by the module; the failure cases stop early."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from albert_ixrt.acceptance import checks
from albert_ixrt.acceptance.report_md import time_advice
from albert_ixrt.cli import main
from albert_ixrt.errors import InputFileError

STALE_MD = "# albert-ixrt acceptance run (real)\n\n**real weights** — all steps passed\n"


def _plant_previous_run(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(STALE_MD)
    (out / "report.json").write_text(json.dumps({"passed": True, "steps": [],
                                                 "files": ["report.md", "report.json", "bench.json"]}))
    (out / "bench.json").write_text("{}")


def _run(*argv) -> dict:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["run", *argv])
    return {"rc": rc, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


@pytest.fixture(scope="module")
def self_test_run(tmp_path_factory):
    """The default run (no subject named: the built-in self-test), --skip perf."""
    out = tmp_path_factory.mktemp("run") / "results"
    got = _run("--out", str(out), "--skip", "perf")
    run = out / "latest"                  # the run's own dated folder
    got.update(out=run, report=json.loads((run / "report.json").read_text()), md=(run / "report.md").read_text())
    return got


def test_the_default_is_the_self_test_and_every_output_says_so(self_test_run):
    r = self_test_run
    assert r["rc"] == 0
    line = "NOT SIGNED OFF: the built-in tiny self-test model on torch fp32: self-test only"
    assert r["stdout"].splitlines()[-2].startswith(line) and "PASSED" not in r["stdout"]
    assert r["report"]["verdict"]["status"] == "NOT SIGNED OFF" and r["report"]["passed"] is False
    assert f"**{line}" in r["md"] and r["report"]["subject"]["named"] is False
    assert "no subject named" in r["report"]["verdict"]["line"]


def test_the_record_names_what_was_judged_resolved_and_hashed(self_test_run):
    rec = self_test_run["report"]
    s = rec["subject"]
    assert rec["schema"] == 2 and rec["writer"] == "albert-ixrt run"
    assert s["model"] == "tiny" and s["weights"] == "random" and len(s["weights_sha256"]) == 64
    assert len(s["tokenizer_sha256"]) == 64 and len(s["squad_sha256"]) == 64 and s["squad"].startswith("/")
    assert s["device"] == "cpu" and s["runtime"].startswith("torch ") and s["emulated"] is False
    assert rec["suite"]["version"] and rec["suite"]["commit"] and len(rec["suite"]["commit"]) == 40


def test_a_step_left_out_is_not_judged_with_its_reason_everywhere(self_test_run):
    rec = self_test_run["report"]
    steps = {s["name"]: s for s in rec["steps"]}
    assert steps["perf"]["status"] == "not judged" and steps["perf"]["reason"] == "left out with --skip"
    assert "perf b1x384, b16x384, bucketed-shortest, bucketed-median, bucketed-longest not judged: left out " \
           "with --skip" in rec["verdict"]["line"]
    assert "| perf | not judged | 0.0 | left out with --skip |" in self_test_run["md"]
    assert "bench.json" not in rec["files"] and not (self_test_run["out"] / "bench.json").exists()


def test_each_step_is_announced_with_its_time(self_test_run):
    err = self_test_run["stderr"]
    assert "albert-ixrt run: judging the built-in tiny self-test model on torch fp32 against torch fp32 on cpu" in err
    for i, name in enumerate(("load", "features", "convert", "equivalence", "evaluate", "thresholds", "perf",
                              "report"), 1):
        assert f"[{i}/8] {name}: " in err, name
    assert "[3/8] convert: passed in " in err and "[7/8] perf: not judged in 0.0 s (left out with --skip)" in err


def test_the_record_lists_what_this_run_wrote(self_test_run):
    rec, out = self_test_run["report"], self_test_run["out"]
    for name in rec["files"]:
        assert (out / name).is_file(), name
    assert {"equivalence.json", "predictions.json", "metrics.json", "onnx/manifest.json"} <= set(rec["files"])


def test_a_step_that_raises_is_recorded_with_its_traceback_and_exits_1(tmp_path, monkeypatch):
    """A planted bug in the evaluate step: the record says which step failed and why (traceback kept in
    report.json, not on the console), the verdict is FAILED, exit 1; the other steps still ran."""
    def broken(session):
        raise RuntimeError("planted failure\nsecond line")

    monkeypatch.setattr(checks, "evaluate_step", broken)
    r = _run("--out", str(tmp_path), "--quiet", "--skip", "convert", "perf")
    assert r["rc"] == 1
    rec = json.loads((tmp_path / "latest" / "report.json").read_text())
    steps = {s["name"]: s for s in rec["steps"]}
    assert steps["evaluate"]["status"] == "failed" and steps["evaluate"]["reason"] == "RuntimeError: planted failure"
    assert "Traceback" in steps["evaluate"]["detail"]["traceback"]
    assert steps["load"]["status"] == steps["features"]["status"] == "passed"      # the other steps still ran
    assert rec["verdict"]["status"] == "FAILED" and "Traceback" not in r["stderr"]


def test_bad_input_found_while_running_fails_the_step_in_one_line(tmp_path, monkeypatch):
    import albert_ixrt.loaders as loaders

    def bad_data(*a, **k):
        raise InputFileError("dev.json", "planted: not SQuAD v1.1")

    monkeypatch.setattr(loaders, "prepare_data", bad_data)
    r = _run("--out", str(tmp_path), "--quiet", "--skip", "convert", "perf")
    rec = json.loads((tmp_path / "latest" / "report.json").read_text())
    steps = {s["name"]: s for s in rec["steps"]}
    assert r["rc"] == 1 and steps["features"]["reason"] == "dev.json: planted: not SQuAD v1.1"
    assert steps["evaluate"]["reason"] == "dev.json: planted: not SQuAD v1.1"     # kept, not rebuilt


def test_a_subject_that_cannot_load_is_refused_before_the_results_folder_is_touched(tmp_path):
    _plant_previous_run(tmp_path)
    r = _run("--out", str(tmp_path), "--model", str(tmp_path / "missing.pt"))
    assert r["rc"] == 2 and "TorchScript file not found" in r["stderr"]
    assert (tmp_path / "report.md").read_text() == STALE_MD


def test_time_advice_names_the_slow_steps_with_their_own_numbers():
    steps = [{"name": "load", "seconds": 5.0}, {"name": "equivalence", "seconds": 56.0},
             {"name": "evaluate", "seconds": 3170.0, "figures": {"questions": 10570, "features_per_second": 3.43}},
             {"name": "perf", "seconds": 99.0, "items": [{"name": "b16x384", "figures": {"samples_s": [30, 31]}}]}]
    lines = time_advice(steps)
    assert [line.split()[0] for line in lines] == ["evaluate"]
    assert lines[0] == ("evaluate took 3170.0 s of 3330.0 s (95 %): 10570 questions at 0.3 s each (3.43 features/s): "
                        "--limit 1000 would take about 300 s (accuracy is then not judged)")
    quick = [{"name": "perf", "seconds": 99.0, "items": [{"name": "b16x384", "figures": {"samples_s": [30, 31]}}]},
             {"name": "load", "seconds": 40.0}]
    assert "timed calls: b16x384 61.0 s" in time_advice(quick)[0] and time_advice(quick)[1].startswith("load took")
    assert time_advice([{"name": "load", "seconds": 0.5}, {"name": "evaluate", "seconds": 0.4}]) == []


def test_ctrl_c_leaves_no_run_and_no_verdict(tmp_path, monkeypatch):
    """Ctrl-C: no run folder and no verdict (tests/unit/test_results_dir.py checks earlier runs byte for byte)."""
    def interrupted(session):
        raise KeyboardInterrupt

    monkeypatch.setattr(checks, "evaluate_step", interrupted)
    r = _run("--out", str(tmp_path / "r"), "--quiet", "--skip", "convert", "perf")
    assert r["rc"] == 130 and "interrupted in the evaluate step" in r["stderr"]
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("*/report.json"))
