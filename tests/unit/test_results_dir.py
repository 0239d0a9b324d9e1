"""`albert-ixrt run --out DIR` keeps every run's evidence: one dated folder per run, earlier runs
byte-identical, `latest` naming the newest, a user's own files never touched, one run at a time, and
the layout before per-run folders moved into a dated folder of its own.  The folder machinery
(results_dir.py) is tested directly (no model: fast); the CLI tests run the tiny profile with steps
left out, a few seconds each.  What killed runs leave is tested in test_results_dir_crash.py."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest

from albert_ixrt.acceptance import checks
from albert_ixrt.cli import main
from albert_ixrt.fileio import HOST_TAG
from albert_ixrt.results_dir import (LOCK_NAME, STAGING_PREFIX, ResultsDir, ResultsDirError, _next_name,
                                     check_results_dir, latest_run, list_runs)
from albert_ixrt.runs import RUN_NAME_RE, parse_started, run_key, subject_slug

from rd_helpers import OLD_FILES, dead_pid, fake_run, plant_old_layout, record, snapshot  # noqa: E402


def run_folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if RUN_NAME_RE.fullmatch(p.name))


# ---------------------------------------------------------------- one folder per run

def test_a_second_run_keeps_the_first_runs_files_byte_identical(tmp_path):
    first = fake_run(tmp_path, {"bench.json": "first bench", "equivalence.json": "first eq", "report.md": "pass"})
    kept = snapshot(first)
    second = fake_run(tmp_path, {"report.md": "fail"}, subject="/models/other-albert")  # a failed run, another model
    assert snapshot(first) == kept                     # bench.json and equivalence.json of the first run stay
    assert first != second and second.parent == tmp_path
    assert sorted(p.name for p in second.iterdir()) == ["report.json", "report.md"]  # only its own files
    assert run_key(first.name) < run_key(second.name)
    assert RUN_NAME_RE.fullmatch(second.name)["slug"] == "other-albert"


def test_latest_names_the_newest_finished_run_and_an_uncommitted_one_moves_nothing(tmp_path):
    first = fake_run(tmp_path, {"report.md": "1"})
    assert os.readlink(tmp_path / "latest") == first.name                 # relative: the folder moves whole
    assert (tmp_path / "LATEST").read_text() == first.name + "\n"
    assert latest_run(tmp_path).folder == first
    with pytest.raises(KeyboardInterrupt):
        with ResultsDir(tmp_path, subject="tiny") as rd:
            (rd.staging / "report.json").write_text("{}")
            raise KeyboardInterrupt
    assert os.readlink(tmp_path / "latest") == first.name                 # planted-bad: the interrupted run
    second = fake_run(tmp_path, {"report.md": "2"})
    assert os.readlink(tmp_path / "latest") == second.name and (tmp_path / "latest" / "report.md").read_text() == "2"
    assert (tmp_path / "LATEST").read_text() == second.name + "\n"
    assert [r.name for r in list_runs(tmp_path)] == [first.name, second.name]  # newest last
    assert latest_run(tmp_path).folder == second


def test_the_destination_is_known_on_entry_and_is_where_the_files_end_up(tmp_path):
    with ResultsDir(tmp_path, subject="madlag/albert-base-v2-squad") as rd:
        dest = rd.destination
        assert dest.parent == tmp_path and RUN_NAME_RE.fullmatch(dest.name) and not dest.exists()
        assert rd.staging != dest and rd.staging.name.startswith(STAGING_PREFIX + HOST_TAG)
        assert dest.name == rd.started.strftime("%Y-%m-%dT%H%M%SZ") + "-albert-base-v2-squad"
        (rd.staging / "report.json").write_text("{}")
        assert rd.commit() == dest
    assert (dest / "report.json").is_file() and not any(p.name.startswith(STAGING_PREFIX) for p in tmp_path.iterdir())


def test_leaving_without_commit_keeps_the_folder_byte_identical(tmp_path):
    fake_run(tmp_path, {"report.md": "kept", "onnx/manifest.json": "{}"})
    before = snapshot(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with ResultsDir(tmp_path) as rd:
            (rd.staging / "report.md").write_text("half a run")
            (rd.staging / "onnx" / "model.onnx").write_text("new graph")
            raise KeyboardInterrupt
    assert snapshot(tmp_path) == before


def test_run_names_follow_the_order_runs_started_in(tmp_path):
    """Name order is start order: the second run of one second gets .1, and a clock set back does
    not make a new run sort before an older one."""
    noon = dt.datetime(2026, 12, 2, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert _next_name(tmp_path, noon, "tiny") == "2026-12-02T120000Z-tiny"
    (tmp_path / "2026-12-02T120000Z-tiny").mkdir()
    assert _next_name(tmp_path, noon, "other") == "2026-12-02T120000Z-other.1"
    assert _next_name(tmp_path, noon - dt.timedelta(hours=1), "x") == "2026-12-02T120000Z-x.1"
    assert _next_name(tmp_path, noon + dt.timedelta(seconds=1), "x") == "2026-12-02T120001Z-x"
    (tmp_path / "2026-12-02T120000Z-other.1").mkdir()
    (tmp_path / "2026-12-02T120000Z-a.2").mkdir()  # 'a' sorts first by name, but started last
    assert [r.name for r in list_runs(tmp_path)] == ["2026-12-02T120000Z-tiny", "2026-12-02T120000Z-other.1",
                                                     "2026-12-02T120000Z-a.2"]


@pytest.mark.parametrize("model, slug", [("madlag/albert-base-v2-squad", "albert-base-v2-squad"),
                                         ("/data/albert-base-v2/config.json", "albert-base-v2"),
                                         ("/models/ka.pt", "ka-pt"), ("tiny", "tiny"), (None, "run"),
                                         ("///", "run"), ("Ünïcode Model!", "n-code-model")])
def test_subject_slugs_are_short_file_name_safe_names(model, slug):
    assert subject_slug(model) == slug and RUN_NAME_RE.fullmatch(f"2026-12-02T120000Z-{slug}")


def test_started_of_both_record_schemas_reads_as_utc():
    assert parse_started("2026-12-02T12:00:00+01:00") == dt.datetime(2026, 12, 2, 11, tzinfo=dt.timezone.utc)
    assert parse_started("2026-12-01 10:00:00 UTC") == dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
    assert parse_started("2026-12-01 10:00:00 XYZT") is None   # a zone this host cannot place
    assert parse_started("yesterday") is None and parse_started(None) is None


# ---------------------------------------------------------------- a user's own files, latest and LATEST

def test_a_users_own_files_are_left_alone_and_do_not_stop_a_run(tmp_path):
    mine = {"notes.txt": "mine", "report.md": "my own report", "metrics.json": "{}", "onnx/mine.onnx": "mine"}
    for name, text in mine.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "report.json").write_text(json.dumps({"passed": True}))  # not a run's record: the user's too
    before = snapshot(tmp_path)
    check_results_dir(tmp_path)
    run = fake_run(tmp_path, {"report.md": "the run's"})
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before       # every file of the user's, as it was
    assert sorted(p.name for p in run.iterdir()) == ["report.json", "report.md"]
    assert set(after) - set(before) == {LOCK_NAME, "latest", "LATEST", run.name + "/", f"{run.name}/report.md",
                                        f"{run.name}/report.json"}


@pytest.mark.parametrize("name, make, problem", [
    ("latest", lambda p: p.write_text("my notes"), "is not a link that an albert-ixrt run made"),
    ("latest", lambda p: p.mkdir(), "is not a link that an albert-ixrt run made"),
    ("latest", lambda p: os.symlink("../elsewhere", p), "links to ../elsewhere, not to a run folder beside it"),
    ("LATEST", lambda p: p.write_text("read me first\n"),
     "holds something other than the one-line run name albert-ixrt writes there"),
])
def test_latest_or_LATEST_that_no_run_wrote_is_refused_and_kept(name, make, problem, tmp_path):
    make(tmp_path / name)
    before = snapshot(tmp_path)
    with pytest.raises(ResultsDirError) as info:
        check_results_dir(tmp_path)
    assert str(info.value) == (f"--out {tmp_path}: {tmp_path / name} {problem}; a run never replaces a file it "
                               "did not write: rename it or give another folder")
    with pytest.raises(ResultsDirError, match=problem):
        with ResultsDir(tmp_path):
            pass
    assert {k: v for k, v in snapshot(tmp_path).items() if k != LOCK_NAME} == before


def test_a_runs_own_latest_and_LATEST_are_accepted(tmp_path):
    fake_run(tmp_path, {"report.md": "1"})
    check_results_dir(tmp_path)                          # the known-good side of the test above
    fake_run(tmp_path, {"report.md": "2"})


# ---------------------------------------------------------------- the layout before per-run folders

def test_an_old_layout_run_moves_into_a_dated_folder_and_a_users_file_stays(tmp_path):
    files = plant_old_layout(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "onnx" / "mine.onnx").write_text("mine too")
    with ResultsDir(tmp_path, subject="tiny") as rd:
        old = tmp_path / "2026-12-01T100000Z-tiny"
        assert rd.recovered == [f"moved the previous run's files (the layout before per-run folders) into {old.name}/"]
        assert {rel: (old / rel).read_text() for rel in files} == files      # byte for byte
        assert os.readlink(tmp_path / "latest") == old.name
        assert rd.previous_run.folder == old and rd.previous_run.verdict == "failed"
        (rd.staging / "report.json").write_text("{}")
        new = rd.commit()
    assert sorted(_files(old)) == sorted(files)                              # its own files, nothing else
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "onnx" / "mine.onnx").read_text() == "mine too"
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "report.md").exists()
    assert os.readlink(tmp_path / "latest") == new.name
    assert [r.folder for r in list_runs(tmp_path)] == [old, new]


def test_an_older_versions_record_moves_with_its_whole_onnx_folder(tmp_path):
    """3c0c7cb's report.json lists its files without 'owned'; onnx/ goes with its manifest."""
    for name in ("report.md", "bench.json", "onnx/manifest.json", "onnx/model.onnx"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "report.json").write_text(json.dumps({"steps": [], "started": "2026-11-30 09:00:00 UTC",
                                                      "files": ["onnx/manifest.json", "bench.json", "report.json",
                                                                "report.md"]}))
    with ResultsDir(tmp_path):
        pass
    assert _files(tmp_path / "2026-11-30T090000Z-run") == ["bench.json", "onnx/manifest.json", "onnx/model.onnx",
                                                           "report.json", "report.md"]


def test_a_report_json_that_is_no_runs_record_moves_nothing(tmp_path):
    for name in OLD_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "report.json").write_text(json.dumps({"passed": True, "files": ["bench.json"]}))  # no "steps"
    before = snapshot(tmp_path)
    with ResultsDir(tmp_path) as rd:
        assert rd.recovered == [] and rd.previous_run is None
    assert {k: v for k, v in snapshot(tmp_path).items() if k != LOCK_NAME} == before


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- the conversion cache lent from run to run

def _manifest(*files: str) -> str:
    return json.dumps({"schema": 1, "stages": {f"s{i}": {"file": f} for i, f in enumerate(files)}})


def test_lent_graphs_stay_only_where_the_new_run_reused_them(tmp_path):
    first = fake_run(tmp_path, {"onnx/manifest.json": _manifest("model.onnx", "model.fp16.onnx"),
                                "onnx/model.onnx": "graph", "onnx/model.fp16.onnx": "fp16 graph"})
    kept = snapshot(first)
    with ResultsDir(tmp_path, subject="tiny") as rd:
        assert (rd.staging / "onnx" / "model.onnx").stat().st_ino == (first / "onnx" / "model.onnx").stat().st_ino
        (rd.staging / "onnx" / "manifest.json").unlink()            # convert rewrites the manifest (a rename) ...
        (rd.staging / "onnx" / "manifest.json").write_text(_manifest("model.onnx"))  # ... reusing model.onnx only
        (rd.staging / "report.json").write_text("{}")
        assert rd.staged_files() == ["onnx/manifest.json", "onnx/model.onnx", "report.json"]
        second = rd.commit()
    assert _files(second) == ["onnx/manifest.json", "onnx/model.onnx", "report.json"]
    assert snapshot(first) == kept


def test_a_run_that_does_not_convert_publishes_no_lent_graph(tmp_path):
    first = fake_run(tmp_path, {"onnx/manifest.json": _manifest("model.onnx"), "onnx/model.onnx": "graph"})
    second = fake_run(tmp_path, {"report.md": "convert skipped"})   # the manifest was never rewritten
    assert _files(second) == ["report.json", "report.md"]
    assert _files(first) == ["onnx/manifest.json", "onnx/model.onnx", "report.json"]


def test_graphs_are_lent_only_by_a_run_of_the_same_subject(tmp_path):
    fake_run(tmp_path, {"onnx/manifest.json": _manifest("model.onnx"), "onnx/model.onnx": "tiny graph"})
    with ResultsDir(tmp_path, subject="/models/albert-base-v2") as rd:
        assert not (rd.staging / "onnx").exists()
    with ResultsDir(tmp_path, subject="tiny") as rd:
        assert (rd.staging / "onnx" / "model.onnx").read_text() == "tiny graph"


# ---------------------------------------------------------------- the lock, killed runs, refused first runs

def test_a_second_run_into_the_same_folder_is_refused_in_one_line(tmp_path):
    with ResultsDir(tmp_path):
        with pytest.raises(ResultsDirError) as info:
            with ResultsDir(tmp_path):
                pass
        assert str(info.value) == (f"--out {tmp_path}: another albert-ixrt run is writing there now (it holds "
                                   f"{tmp_path / LOCK_NAME}); wait for it or give another --out")
    with ResultsDir(tmp_path):  # released: the next run gets it
        pass


def _staging(out: Path, host: str, pid: int) -> Path:
    d = out / f"{STAGING_PREFIX}{host}-{pid}-0123abcd"
    d.mkdir()
    (d / "report.json").write_text("{}")
    return d


def test_a_killed_runs_staging_folder_is_removed_and_a_live_or_other_hosts_one_left(tmp_path):
    killed = _staging(tmp_path, HOST_TAG, dead_pid())
    live = _staging(tmp_path, HOST_TAG, os.getpid())
    other_host = _staging(tmp_path, "abcdef" if HOST_TAG != "abcdef" else "fedcba", dead_pid())
    unknown = tmp_path / f"{STAGING_PREFIX}someone-elses"
    unknown.mkdir()
    kept = {d: snapshot(d) for d in (live, other_host, unknown)}
    with ResultsDir(tmp_path) as rd:
        assert f"removed the staging folder of a killed run ({killed.name})" in rd.recovered
        assert f"left {other_host.name}: another host's staging folder" in rd.recovered
    assert not killed.exists()
    assert {d: snapshot(d) for d in kept} == kept


@pytest.mark.parametrize("error, removed", [(PermissionError, False), (ProcessLookupError, True)])
def test_a_process_of_another_user_counts_as_alive(error, removed, tmp_path, monkeypatch):
    """os.kill(pid, 0) raising PermissionError: the process exists (another user's), so its staging
    folder is left; ProcessLookupError: it is gone, so the folder is removed."""
    staging = _staging(tmp_path, HOST_TAG, 424242)
    real_kill = os.kill

    def kill(pid, sig):
        if pid == 424242:
            raise error(1, "planted")
        return real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    with ResultsDir(tmp_path):
        pass
    assert staging.exists() is not removed


def test_a_pid_no_kernel_gives_is_left_alone(tmp_path):
    staging = _staging(tmp_path, HOST_TAG, 9999999999)   # os.kill would raise OverflowError
    with ResultsDir(tmp_path):
        pass
    assert staging.exists()


def test_a_refused_first_run_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError):
        with ResultsDir(out):
            raise RuntimeError("refused")
    assert list(tmp_path.iterdir()) == []


def test_list_runs_reads_both_record_schemas(tmp_path):
    plant_old_layout(tmp_path)
    old = list_runs(tmp_path)                          # read only: the old layout is listed where it is
    assert [(r.folder, r.subject, r.backend, r.verdict, r.schema) for r in old] == [
        (tmp_path, "tiny", "torch", "failed", None)]
    assert old[0].started == dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
    new = fake_run(tmp_path, {"report.md": "x"})
    (new / "report.json").write_text(json.dumps(record("m", suite={"commit": "a" * 40, "dirty": False},
                                                       verdict={"status": "signed off"})))
    (tmp_path / "2099-01-01T000000Z-empty").mkdir()    # named like a run, no record
    runs = list_runs(tmp_path)
    assert [(r.subject, r.commit, r.verdict, r.schema, r.finished) for r in runs] == [
        ("tiny", None, "failed", None, True), ("m", "a" * 40, "signed off", 2, True), (None, None, None, None, False)]
    assert latest_run(tmp_path).folder == new


# ---------------------------------------------------------------- the CLI, tiny profile

def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def previous(tmp_path):
    """A results folder holding one earlier run (and the lock file every run leaves)."""
    out = tmp_path / "results"
    fake_run(out, {"report.md": "# previous verdict\n", "bench.json": '{"previous": true}\n',
                   "equivalence.json": "{}\n", "onnx/manifest.json": "{}\n"})
    return out, snapshot(out)


@pytest.mark.parametrize("model, needle", [
    ("nobody/no-such-albert", r"could not load 'nobody/no-such-albert'|not a hub id in the local Hugging Face cache"),
    ("{empty}", "no config.json in this folder"),
    ("{config_only}", "has config.json but no weights"),
])
def test_a_bad_model_is_refused_before_the_results_are_touched(model, needle, previous, tmp_path, capsys):
    out, before = previous
    (tmp_path / "empty").mkdir()
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "config.json").write_text(json.dumps({"model_type": "albert"}))
    model = model.replace("{empty}", str(tmp_path / "empty")).replace("{config_only}", str(tmp_path / "config_only"))
    assert main(["run", "--model", model, "--out", str(out), "--quiet"]) == 2
    assert re.search(needle, _one_line(capsys))
    assert snapshot(out) == before


def test_model_with_profile_tiny_is_refused(tmp_path, capsys):
    assert main(["run", "--profile", "tiny", "--model", "madlag/albert-base-v2-squad", "--out",
                 str(tmp_path / "r")]) == 2
    assert "--profile tiny is the built-in self-test; it cannot judge the model named by --model" in \
        _one_line(capsys)
    assert not (tmp_path / "r").exists()


def test_ctrl_c_in_a_step_keeps_the_folder_byte_identical(previous, monkeypatch, capsys):
    out, before = previous

    def interrupted(session):
        raise KeyboardInterrupt

    monkeypatch.setattr(checks, "evaluate_step", interrupted)
    assert main(["run", "--profile", "tiny", "--out", str(out), "--skip", "convert", "perf"]) == 130
    err = capsys.readouterr().err
    assert "interrupted in the evaluate step" in err and "evaluate: failed" not in err
    assert snapshot(out) == before


def test_a_failed_run_gets_its_own_folder_and_the_previous_run_keeps_its_evidence(previous, monkeypatch, capsys):
    """Pass or fail, a run that ends publishes a folder of its own: the earlier run's bench.json and
    equivalence.json stay byte-identical, and every file in the new folder is this run's."""
    out, before = previous
    first = latest_run(out).folder

    def broken(session):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(checks, "evaluate_step", broken)
    assert main(["run", "--profile", "tiny", "--out", str(out), "--quiet", "--skip", "perf"]) == 1
    assert {k: v for k, v in snapshot(out).items() if k.startswith(first.name + "/")} == \
        {k: v for k, v in before.items() if k.startswith(first.name + "/")}
    new = latest_run(out).folder
    assert new != first and os.readlink(out / "latest") == new.name
    report = json.loads((new / "report.json").read_text())
    assert report["verdict"]["status"] == "FAILED" and report["title"].startswith("the built-in tiny self-test")
    assert set(_files(new)) == set(report["owned"])
    assert json.loads((new / "onnx" / "manifest.json").read_text())["stages"]  # this run's conversion


def test_a_run_into_a_folder_another_run_holds_is_refused_in_one_line(previous, capsys):
    out, before = previous
    with ResultsDir(out):  # what a concurrent `albert-ixrt run --out OUT` holds while it works
        assert main(["run", "--profile", "tiny", "--out", str(out), "--quiet"]) == 2
        assert _one_line(capsys) == (f"albert-ixrt run: error: --out {out}: another albert-ixrt run is writing "
                                     f"there now (it holds {out / LOCK_NAME}); wait for it or give another --out")
    assert snapshot(out, skip_staging=True) == before
