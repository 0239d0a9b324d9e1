"""`albert-ixrt run` never loses or mixes results (issue 17, items 1-3): a refused or interrupted run
leaves the previous results byte-identical, one run per folder at a time, and only this tool's own
files are ever replaced.  The folder machinery (results_dir.py) is tested directly (no model: fast);
the CLI tests run the tiny profile with steps left out, a few seconds each."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ixrt.acceptance import checks
from albert_ixrt.cli import main
from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.results_dir import (LOCK_NAME, STAGING_PREFIX, SWAP_PLAN, ResultsDir, ResultsDirError,
                                     check_results_dir, foreign_files)


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry below ``folder`` (hidden ones too) with its content hash: 'byte-identical' is this equal."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder) + "/"] = "dir"
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def plant_previous_run(out: Path, extra: dict[str, str] | None = None) -> None:
    """A previous run's folder: its report.json lists what it wrote (as this version writes it)."""
    files = {"report.md": "# previous verdict\n", "bench.json": '{"previous": true}\n',
             "onnx/manifest.json": "{}\n", **(extra or {})}
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    owned = sorted([*files, "report.json"])
    (out / "report.json").write_text(json.dumps({"writer": "albert-ixrt run", "steps": [], "files": owned,
                                                 "owned": owned}))


# ---------------------------------------------------------------- the folder machinery, no model

def test_commit_replaces_the_previous_run_and_removes_what_it_did_not_write_again(tmp_path):
    plant_previous_run(tmp_path, {"equivalence.json": "old"})
    with ResultsDir(tmp_path) as rd:
        (rd.staging / "report.md").write_text("new")
        (rd.staging / "report.json").write_text(json.dumps({"steps": [], "files": [], "owned": ["report.md"]}))
        assert (tmp_path / "report.md").read_text() == "# previous verdict\n"  # untouched while the run works
        assert (rd.staging / "onnx" / "manifest.json").read_text() == "{}\n"     # the conversion cache carried
        rd.commit()
    assert (tmp_path / "report.md").read_text() == "new"
    assert not (tmp_path / "equivalence.json").exists() and not (tmp_path / "bench.json").exists()
    assert (tmp_path / "onnx" / "manifest.json").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LOCK_NAME, "onnx", "report.json", "report.md"])


def test_leaving_without_commit_keeps_the_previous_results_byte_identical(tmp_path):
    plant_previous_run(tmp_path)
    with ResultsDir(tmp_path):
        pass  # a lock file appears with the first run; from then on it is part of the folder
    before = snapshot(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with ResultsDir(tmp_path) as rd:
            (rd.staging / "report.md").write_text("half a run")
            (rd.staging / "onnx" / "model.onnx").write_text("new graph")
            raise KeyboardInterrupt
    assert snapshot(tmp_path) == before


def test_a_folder_holding_other_files_is_refused_and_an_empty_or_previous_one_accepted(tmp_path):
    check_results_dir(tmp_path / "new")                  # missing
    check_results_dir(tmp_path)                          # empty
    plant_previous_run(tmp_path)
    check_results_dir(tmp_path)                          # a previous run's
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "onnx" / "mine.onnx").write_text("mine")
    with pytest.raises(ResultsDirError) as info:
        check_results_dir(tmp_path)
    assert str(info.value) == (f"--out {tmp_path}: holds 2 file(s) that no albert-ixrt run wrote (notes.txt, "
                               "onnx/mine.onnx); a run replaces only its own files: give an empty or new folder, "
                               "or a previous run's")


def test_a_report_of_the_older_version_counts_as_a_previous_run(tmp_path):
    """3c0c7cb's report.json lists its files without 'owned'; onnx/ goes with its manifest."""
    for name in ("report.md", "bench.json", "onnx/manifest.json", "onnx/model.onnx"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "report.json").write_text(json.dumps({"steps": [], "files": ["onnx/manifest.json", "bench.json",
                                                                             "report.json", "report.md"]}))
    assert foreign_files(tmp_path) == []
    (tmp_path / "report.json").write_text(json.dumps({"passed": True}))  # not a run's report: nothing is ours
    assert len(foreign_files(tmp_path)) == 5


def test_a_second_run_into_the_same_folder_is_refused_in_one_line(tmp_path):
    with ResultsDir(tmp_path):
        with pytest.raises(ResultsDirError) as info:
            with ResultsDir(tmp_path):
                pass
        assert str(info.value) == (f"--out {tmp_path}: another albert-ixrt run is writing there now (it holds "
                                   f"{tmp_path / LOCK_NAME}); wait for it or give another --out")
    with ResultsDir(tmp_path):  # released: the next run gets it
        pass


def test_a_killed_runs_staging_folder_is_removed_and_a_live_or_foreign_one_left(tmp_path):
    from albert_ixrt.fileio import HOST_TAG

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    killed = tmp_path / f"{STAGING_PREFIX}{HOST_TAG}-{dead_pid}-0123abcd"
    live = tmp_path / f"{STAGING_PREFIX}{HOST_TAG}-{os.getpid()}-0123abcd"
    unknown = tmp_path / f"{STAGING_PREFIX}someone-elses"
    for d in (killed, live, unknown):
        (d / "report.md").parent.mkdir(parents=True)
        (d / "report.md").write_text("x")
    with ResultsDir(tmp_path) as rd:
        assert any("removed the staging folder of a killed run" in line for line in rd.recovered)
    assert not killed.exists() and live.exists() and unknown.exists()


def test_a_swap_cut_by_kill_is_finished_by_the_next_run(tmp_path):
    """SIGKILL in the middle of commit: the plan is on disk; the next run rolls it forward, so the
    folder never stays a mix of two runs."""
    from albert_ixrt.fileio import HOST_TAG

    plant_previous_run(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    staging = tmp_path / f"{STAGING_PREFIX}{HOST_TAG}-{int(dead.stdout)}-0123abcd"
    staging.mkdir()
    (staging / "report.json").write_text(json.dumps({"steps": [], "files": [], "owned": ["report.md",
                                                                                         "report.json"]}))
    (tmp_path / "report.md").write_text("new")  # moved before the kill
    (staging / SWAP_PLAN).write_text(json.dumps({"move": ["report.json", "report.md"],
                                                 "delete": ["bench.json", "onnx/manifest.json", "report.json",
                                                            "report.md"]}))
    assert foreign_files(tmp_path) == []  # the half-done swap's files count as ours
    with ResultsDir(tmp_path) as rd:
        assert any("finished the swap of a killed run" in line for line in rd.recovered)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "report.json", "report.md"]
    assert (tmp_path / "report.md").read_text() == "new"


def test_a_refused_first_run_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError):
        with ResultsDir(out):
            raise RuntimeError("refused")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the CLI, tiny profile

def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def previous(tmp_path):
    out = tmp_path / "results"
    plant_previous_run(out)
    with ResultsDir(out):  # the lock file a previous run leaves
        pass
    return out, snapshot(out)


@pytest.mark.parametrize("model, needle", [
    ("nobody/no-such-albert", "could not load 'nobody/no-such-albert'"),
    ("{empty}", "has no config.json"),
    ("{config_only}", "has config.json but no weights"),
])
def test_a_bad_model_is_refused_before_the_results_are_touched(model, needle, previous, tmp_path, capsys):
    out, before = previous
    (tmp_path / "empty").mkdir()
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "config.json").write_text(json.dumps({"model_type": "albert"}))
    model = model.replace("{empty}", str(tmp_path / "empty")).replace("{config_only}", str(tmp_path / "config_only"))
    assert main(["run", "--model", model, "--out", str(out), "--quiet"]) == 2
    assert needle in _one_line(capsys)
    assert snapshot(out) == before


def test_run_out_dot_never_overwrites_a_users_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.md").write_text("my own notes")
    (tmp_path / "metrics.json").write_text("{}")
    assert main(["run", "--profile", "tiny", "--out", ".", "--quiet"]) == 2
    assert "--out .: holds 2 file(s) that no albert-ixrt run wrote (metrics.json, report.md)" in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.md"]


def test_model_with_profile_tiny_is_refused(tmp_path, capsys):
    assert main(["run", "--profile", "tiny", "--model", "madlag/albert-base-v2-squad", "--out",
                 str(tmp_path / "r")]) == 2
    assert "--profile tiny is the built-in self-test; it cannot judge the model named by --model" in \
        _one_line(capsys)
    assert not (tmp_path / "r").exists()


def test_ctrl_c_in_a_step_keeps_the_previous_results_byte_identical(previous, monkeypatch, capsys):
    out, before = previous

    def interrupted(session):
        raise KeyboardInterrupt

    monkeypatch.setattr(checks, "evaluate_step", interrupted)
    assert main(["run", "--profile", "tiny", "--out", str(out), "--skip", "convert", "perf"]) == 130
    err = capsys.readouterr().err
    assert "evaluate: failed" not in err
    assert f"albert-ixrt run: interrupted in the evaluate step; {out} keeps the previous results" in err
    assert snapshot(out) == before


def test_a_failed_run_replaces_the_previous_results_whole(previous, monkeypatch, capsys):
    """Pass or fail, a run that ends replaces the previous results: none of the old files survives
    (item 12's pin: not only bench.json) and every file is this run's."""
    out, _ = previous

    def broken(session):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(checks, "evaluate_step", broken)
    assert main(["run", "--profile", "tiny", "--out", str(out), "--quiet", "--skip", "perf"]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False and report["verdict"]["status"] == "FAILED"
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != LOCK_NAME}
    assert on_disk == set(report["owned"]) and "bench.json" not in on_disk
    assert (out / "report.md").read_text().startswith("# albert-ixrt sign-off: the built-in tiny self-test")
    assert json.loads((out / "onnx" / "manifest.json").read_text())["stages"]  # this run's conversion


def test_a_run_into_a_folder_another_run_holds_is_refused_in_one_line(previous, capsys):
    out, before = previous
    with ResultsDir(out):  # what a concurrent `albert-ixrt run --out OUT` holds while it works
        assert main(["run", "--profile", "tiny", "--out", str(out), "--quiet"]) == 2
        assert _one_line(capsys) == (f"albert-ixrt run: error: --out {out}: another albert-ixrt run is writing "
                                     f"there now (it holds {out / LOCK_NAME}); wait for it or give another --out")
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(STAGING_PREFIX)} == before
