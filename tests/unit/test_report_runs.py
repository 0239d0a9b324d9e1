"""`albert-ixrt report PARENT` over run folders names each run (date, commit, subject) and shows the
change against the previous run of the same subject (seq/s, EM/F1), reading both record schemas;
a row's EM/F1 come only from its own run, and staging folders and the `latest` link add nothing."""
from __future__ import annotations

import json
import os

from albert_ixrt.bench import BenchReport
from albert_ixrt.report import NOT_MEASURED, collect, render_markdown, rows_for, run_summaries, write_report

from test_report import _metrics, _result, _table_rows  # noqa: E402  (tests/unit is on sys.path)

MODEL = "/models/albert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def old_record(started="2026-12-01 10:00:00 UTC", model=MODEL, backend="onnxruntime", precision="fp16"):
    """A record as f22ec55 wrote it (no schema)."""
    return {"writer": "albert-ixrt run", "started": started, "passed": True, "steps": [], "files": [], "owned": [],
            "model": {"model": model, "weights": "real"},
            "runner": {"backend": backend, "precision": precision, "device": "Fake GPU"}}


def new_record(model=MODEL, weights="real", backend="onnxruntime", precision="fp16", figures=None, commit=COMMIT):
    """A schema-2 record."""
    return {"schema": 2, "started": "2026-12-02T12:00:00+00:00", "steps": [], "files": [], "owned": [],
            "suite": {"version": "0.1.0", "commit": commit, "dirty": False},
            "subject": {"model": model, "weights": weights, "backend": backend, "precision": precision,
                        "device": "Fake GPU"},
            "verdict": {"status": "signed off"}, "figures": figures or {}}


def make_run(folder, record, results=(), metrics=None):
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(record))
    if results:
        BenchReport(list(results), {"cpu": "Fake CPU"}, {"weights": results[0].weights}).write(folder / "bench.json")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _metrics_em(em, f1, **kw):
    m = _metrics(**kw)
    m["scores"].update(bytemlperf_exact_match=em, bytemlperf_f1=f1)
    return m


def markdown(folder) -> str:
    """perf_report.md's text, without drawing the plot."""
    inputs = collect(folder)
    return render_markdown(rows_for(inputs), inputs)


def _history(tmp_path):
    """An old-schema run and a schema-2 run of one subject, and a run of another model between them."""
    out = tmp_path / "results"
    make_run(out / "2026-12-01T100000Z-albert", old_record(), [_result(batch=16, bps=40.0)], _metrics_em(80.0, 87.0))
    make_run(out / "2026-12-01T110000Z-other", old_record(model="/models/other"),
             [_result(batch=16, bps=10.0, model="/models/other")], _metrics_em(70.0, 75.0, model="/models/other"))
    make_run(out / "2026-12-02T120000Z-albert", new_record(), [_result(batch=16, bps=44.0)], _metrics_em(80.5, 86.5))
    return out


def test_each_row_names_its_run_and_its_change_against_the_previous_run_of_the_subject(tmp_path):
    out = _history(tmp_path)
    md = markdown(out)
    head, *body = _table_rows(md.split("## Runs")[0])
    assert head[-2:] == ["Run", "Change vs previous run of this subject"]
    rows = {r[-2]: r for r in body}
    assert rows["2026-12-02T120000Z-albert"][-1] == ("seq/s +64.0 (+10.0 %), EM +0.50, F1 -0.50 vs "
                                                     "2026-12-01T100000Z-albert")
    assert rows["2026-12-01T100000Z-albert"][-1] == "first run of this subject"
    assert rows["2026-12-01T110000Z-other"][-1] == "first run of this subject"   # never compared with another model
    assert rows["—"][0].startswith("**ALBERT base")                              # the reference row, in no run


def test_the_runs_table_gives_date_commit_subject_and_changes_from_both_schemas(tmp_path, monkeypatch):
    monkeypatch.setattr("albert_ixrt.report.plot_throughput", lambda rows, dest, notes=(): dest)  # test_report draws it
    out = _history(tmp_path)
    md = write_report(out)["markdown"].read_text()
    head, *body = _table_rows(md.split("## Runs")[1])
    assert head[:4] == ["Run", "Started (UTC)", "Commit", "Subject"]
    assert body[0][:9] == ["2026-12-01T100000Z-albert", "2026-12-01 10:00:00", "not recorded", MODEL, "onnxruntime",
                           "fp16", "Fake GPU", "passed", "80.00"]
    assert body[2][:4] == ["2026-12-02T120000Z-albert", "2026-12-02 12:00:00", COMMIT[:10], MODEL]
    assert body[2][-1] == "EM +0.50, F1 -0.50; seq/s +64.0 (+10.0 %) at batch 16 vs 2026-12-01T100000Z-albert"
    assert body[1][-1] == "first run of this subject"
    data = json.loads((out / "perf_report.json").read_text())
    assert [r["run"] for r in data["runs"]] == [b[0] for b in body]
    assert data["runs"][2]["previous_run"] == "2026-12-01T100000Z-albert" and data["runs"][2]["commit"] == COMMIT


def test_a_rows_em_f1_come_only_from_its_own_runs_evaluation(tmp_path):
    """Run B has no evaluation: its row shows none, never run A's numbers of the same model (the
    known-good side: run A's row shows its own)."""
    out = tmp_path / "results"
    make_run(out / "2026-12-01T100000Z-a", old_record(), [_result(batch=16, bps=40.0)], _metrics_em(80.0, 87.0))
    make_run(out / "2026-12-02T100000Z-b", new_record(), [_result(batch=16, bps=41.0)])
    rows = {r.run: r for r in rows_for(collect(out)) if r.run}
    assert (rows["2026-12-01T100000Z-a"].exact_match, rows["2026-12-01T100000Z-a"].f1) == (80.0, 87.0)
    assert rows["2026-12-02T100000Z-b"].exact_match == NOT_MEASURED
    assert rows["2026-12-02T100000Z-b"].change == "seq/s +16.0 (+2.5 %) vs 2026-12-01T100000Z-a"


def test_random_weights_compare_speed_only(tmp_path):
    out = tmp_path / "results"
    for name, bps in (("2026-12-01T100000Z-t", 40.0), ("2026-12-02T100000Z-t", 20.0)):
        make_run(out / name, new_record(weights="random"), [_result(batch=1, bps=bps, weights="random")],
                 _metrics_em(1.0, 2.0, weights="random"))
    inputs = collect(out)
    data = {"runs": run_summaries(inputs), "rows": [r.__dict__ for r in rows_for(inputs)]}
    assert data["runs"][1]["exact_match"] == "n/a (random weights)"
    assert data["runs"][1]["change"] == "seq/s -20.0 (-50.0 %) at batch 1 vs 2026-12-01T100000Z-t"
    assert [r["change"] for r in data["rows"] if r["run"] == "2026-12-02T100000Z-t"] == [
        "seq/s -20.0 (-50.0 %) vs 2026-12-01T100000Z-t"]


def test_schema_2_figures_serve_when_a_run_has_no_bench_or_metrics_file(tmp_path):
    out = tmp_path / "results"
    for name, em, sps in (("2026-12-01T100000Z-a", 80.0, 800.0), ("2026-12-02T100000Z-a", 81.0, 816.0)):
        make_run(out / name, new_record(figures={
            "accuracy": {"bytemlperf_exact_match": em, "bytemlperf_f1": 88.0},
            "perf": [{"batch_size": 16, "seq_len": 384, "sequences_per_s": sps}]}))
    runs = run_summaries(collect(out))
    assert runs[1]["change"] == "EM +1.00, F1 +0.00; seq/s +16.0 (+2.0 %) at batch 16 vs 2026-12-01T100000Z-a"


def test_staging_folders_and_the_latest_link_add_no_rows(tmp_path):
    out = _history(tmp_path)
    os.symlink("2026-12-02T120000Z-albert", out / "latest")
    make_run(out / ".albert-ixrt-staging.abcdef-1-0123abcd", new_record(), [_result(batch=16, bps=999.0)])
    inputs = collect(out)
    assert len(inputs.bench) == 3 and [r.name for r in inputs.runs] == [
        "2026-12-01T100000Z-albert", "2026-12-01T110000Z-other", "2026-12-02T120000Z-albert"]
    assert not any(r.sequences_per_s == 999.0 * 16 for r in rows_for(inputs))


def test_report_on_the_latest_link_names_the_run_it_points_at(tmp_path):
    out = _history(tmp_path)
    os.symlink("2026-12-02T120000Z-albert", out / "latest")
    rows = [r for r in rows_for(collect(out / "latest")) if not r.reference]
    assert [r.run for r in rows] == ["2026-12-02T120000Z-albert"] and rows[0].change == "first run of this subject"


def test_an_old_layout_folder_takes_its_date_from_started(tmp_path):
    make_run(tmp_path / "results-a", old_record(started="2026-11-30 09:15:00 UTC"), [_result()])
    make_run(tmp_path / "results-b", new_record(), [_result(bps=50.0)])
    runs = run_summaries(collect(tmp_path))
    assert [(r["run"], r["started"]) for r in runs] == [("results-a", "2026-11-30 09:15:00"),
                                                       ("results-b", "2026-12-02 12:00:00")]
    assert runs[1]["previous_run"] == "results-a"


def test_folders_without_runs_keep_the_plain_table(tmp_path):
    BenchReport([_result()], {"cpu": "Fake CPU"}, {}).write(tmp_path / "bench.json")
    md = markdown(tmp_path)
    assert _table_rows(md)[0][-1] == "vs reference (batches/s)" and "## Runs" not in md
