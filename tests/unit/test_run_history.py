"""Real `albert-ixrt run --profile tiny` runs into one folder keep their history: each run publishes a
folder of its own holding exactly the files its record lists, earlier runs stay byte-identical,
`latest` names the newest, a run killed while publishing is finished by the next real run, and a
user's own files in the folder are never touched.  About 15-20 s per run: marked slow."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ixrt.results_dir import KILL_AT_ENV
from albert_ixrt.runs import latest_run, list_runs

from child_env import child_env
from rd_helpers import snapshot  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def run(out, *extra, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "albert_ixrt.cli", "run", "--profile", "tiny", "--quiet", "--out",
                           str(out), *extra], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=child_env(ALBERT_IXRT_MODEL=None, PYTHONPATH=str(ROOT), **(env or {})))


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_real_runs_keep_their_history_and_hold_only_their_own_files(tmp_path):
    out = tmp_path / "results"
    first = run(out, "--skip", "perf")
    assert first.returncode == 0, first.stderr[-2000:]
    one = latest_run(out).folder
    kept = snapshot(one)
    second = run(out, "--skip", "convert", "perf")      # no conversion: the graphs lent from the first stay out
    assert second.returncode == 0, second.stderr[-2000:]
    two = latest_run(out).folder
    assert [r.folder for r in list_runs(out)] == [one, two] and os.readlink(out / "latest") == two.name
    assert snapshot(one) == kept
    for folder in (one, two):
        assert files(folder) == set(json.loads((folder / "report.json").read_text())["owned"])
    assert "onnx/manifest.json" in files(one) and not (two / "onnx").exists()


def test_a_real_run_killed_while_publishing_is_finished_by_the_next_real_run(tmp_path):
    out = tmp_path / "results"
    killed = run(out, "--skip", "perf", env={KILL_AT_ENV: "publish"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert list_runs(out) == [] and not os.path.lexists(out / "latest")
    after = run(out, "--skip", "convert", "perf")
    assert after.returncode == 0, after.stderr[-2000:]
    runs = list_runs(out)
    assert len(runs) == 2 and all(r.finished for r in runs) and os.readlink(out / "latest") == runs[-1].name
    assert files(runs[0].folder) == set(json.loads((runs[0].folder / "report.json").read_text())["owned"])


def test_run_out_dot_leaves_a_users_files_alone(tmp_path):
    (tmp_path / "report.md").write_text("my own notes")
    (tmp_path / "metrics.json").write_text("{}")
    before = snapshot(tmp_path)
    done = run(".", "--skip", "convert", "equivalence", "perf", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before
    assert (tmp_path / "latest" / "report.md").read_text().startswith("# albert-ixrt sign-off")
