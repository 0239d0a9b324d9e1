"""SIGKILL at each point of publishing a run (results_dir's ``ALBERT_IXRT_KILL_AT`` hook, in a child
process) leaves a state the next run handles: a run killed before it ended is discarded, one killed
while publishing is finished (never refused), report.json never appears without its files, and what
another host left is never touched.  Each child is a short Python process using ResultsDir alone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ixrt.fileio import HOST_TAG
from albert_ixrt.results_dir import KILL_AT_ENV, KILL_POINTS, LOCK_NAME, PLAN_PREFIX, STAGING_PREFIX, ResultsDir
from albert_ixrt.runs import RUN_NAME_RE, list_runs

from rd_helpers import OLD_FILES, dead_pid, fake_run, plant_old_layout, snapshot  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import json, os, signal, sys
from albert_ixrt.results_dir import ResultsDir
with ResultsDir(sys.argv[1], subject="tiny") as rd:
    print(rd.destination.name, flush=True)
    (rd.staging / "bench.json").write_text("the killed run's bench")
    (rd.staging / "report.json").write_text(json.dumps({"schema": 2, "steps": [], "files": ["bench.json"]}))
    if sys.argv[2] == "running":
        os.kill(os.getpid(), signal.SIGKILL)
    rd.commit()
"""


def killed_run(out: Path, point: str) -> str:
    """Run CHILD into ``out``, killed at ``point``; returns the destination it announced."""
    env = {**os.environ, KILL_AT_ENV: point, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(out), point], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-2000:])
    return done.stdout.strip()


def hidden(out: Path) -> list[str]:
    return sorted(p.name.split(".")[1] for p in out.iterdir() if p.name.startswith(".") and p.name != LOCK_NAME)


@pytest.fixture
def previous(tmp_path):
    first = fake_run(tmp_path, {"report.md": "first"})
    return tmp_path, first, snapshot(first)


def test_every_kill_point_is_exercised():
    """The hook's points are the ones this module kills at (a new point needs its test)."""
    assert set(KILL_POINTS) == {"publish", "published", "latest", "migrate"}


def test_a_run_killed_before_it_ends_is_discarded_by_the_next_run(previous):
    out, first, kept = previous
    dest = killed_run(out, "running")
    assert not (out / dest).exists() and os.readlink(out / "latest") == first.name
    assert hidden(out) == ["albert-ixrt-staging"]
    with ResultsDir(out) as rd:
        assert any(line.startswith("removed the staging folder of a killed run") for line in rd.recovered)
    assert hidden(out) == [] and [r.folder for r in list_runs(out)] == [first] and snapshot(first) == kept


def test_killed_just_before_report_json_lands_the_run_is_not_visible_then_finished(previous):
    """Killed with the plan written, just before the rename that brings report.json and every file
    into place: no run folder, no new record, latest unchanged; the next run finishes the publish."""
    out, first, kept = previous
    dest = killed_run(out, "publish")
    assert not (out / dest).exists()
    assert [r.folder for r in list_runs(out)] == [first] and os.readlink(out / "latest") == first.name
    assert hidden(out) == ["albert-ixrt-publish", "albert-ixrt-staging"]
    with ResultsDir(out, subject="tiny") as rd:
        assert rd.recovered == [f"finished publishing a killed run: {dest}/"]
        assert os.readlink(out / "latest") == dest               # newest finished run, until this one commits
        assert RUN_NAME_RE.fullmatch(dest) and rd.destination.name > dest
        (rd.staging / "report.json").write_text("{}")
        newest = rd.commit()
    assert (out / dest / "bench.json").read_text() == "the killed run's bench"
    assert (out / dest / "report.json").is_file()
    assert [r.folder for r in list_runs(out)] == [first, out / dest, newest] and snapshot(first) == kept
    assert os.readlink(out / "latest") == newest.name and hidden(out) == []


def test_killed_after_the_rename_the_next_run_clears_the_plan_and_points_latest(previous):
    out, first, kept = previous
    dest = killed_run(out, "published")
    assert sorted(p.name for p in (out / dest).iterdir()) == ["bench.json", "report.json"]   # complete
    assert os.readlink(out / "latest") == first.name and hidden(out) == ["albert-ixrt-publish"]
    with ResultsDir(out) as rd:
        assert rd.recovered == [f"finished publishing a killed run: {dest}/"]
        assert os.readlink(out / "latest") == dest and (out / "LATEST").read_text() == dest + "\n"
    assert hidden(out) == [] and snapshot(first) == kept


def test_killed_while_replacing_latest_the_link_is_never_broken(previous):
    out, first, _ = previous
    dest = killed_run(out, "latest")
    assert os.readlink(out / "latest") == first.name          # the old link, whole
    assert hidden(out) == ["latest"]                          # the temporary link
    with ResultsDir(out) as rd:
        assert any(line.startswith("removed .latest.") for line in rd.recovered)
        assert os.readlink(out / "latest") == dest
    assert hidden(out) == []


def test_a_move_of_the_old_layout_killed_half_way_is_finished_by_the_next_run(tmp_path):
    files = plant_old_layout(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    killed_run(tmp_path, "migrate")
    left = [rel for rel in files if (tmp_path / rel).exists()]
    assert "report.json" in left and len(left) == len(files) - 1   # one file moved; the record still last in place
    with ResultsDir(tmp_path) as rd:
        assert rd.recovered == ["finished publishing a killed run: 2026-12-01T100000Z-tiny/"]
    old = tmp_path / "2026-12-01T100000Z-tiny"
    assert {rel: (old / rel).read_text() for rel in files} == files
    assert not any((tmp_path / rel).exists() for rel in files) and (tmp_path / "notes.txt").read_text() == "mine"


def test_another_hosts_staging_folder_and_plan_are_never_touched(previous):
    out, first, _ = previous
    other = "abcdef" if HOST_TAG != "abcdef" else "fedcba"
    tag = f"{other}-{dead_pid()}-0123abcd"
    staging = out / f"{STAGING_PREFIX}{tag}"
    staging.mkdir()
    (staging / "report.json").write_text("{}")
    plan = out / f"{PLAN_PREFIX}{tag}.json"
    plan.write_text(json.dumps({"staging": staging.name, "destination": "2026-12-02T120000Z-tiny"}))
    before = snapshot(out)
    with ResultsDir(out) as rd:
        assert f"left {plan.name}: another host's publish (we cannot tell whether it still runs)" in rd.recovered
        assert f"left {staging.name}: another host's staging folder" in rd.recovered
        (rd.staging / "report.json").write_text("{}")
        rd.commit()
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k.startswith((staging.name, plan.name))} == \
        {k: v for k, v in before.items() if k.startswith((staging.name, plan.name))}
    # the known-good side: the same folder and plan named for this host and a dead pid are finished
    mine = out / f"{STAGING_PREFIX}{HOST_TAG}-{dead_pid()}-0123abcd"
    staging.rename(mine)
    plan.rename(out / f"{PLAN_PREFIX}{mine.name[len(STAGING_PREFIX):]}.json")
    (out / f"{PLAN_PREFIX}{mine.name[len(STAGING_PREFIX):]}.json").write_text(
        json.dumps({"staging": mine.name, "destination": "2026-12-02T120000Z-tiny"}))
    with ResultsDir(out) as rd:
        assert any(line.startswith("finished publishing a killed run") for line in rd.recovered)
    assert not mine.exists()


def test_an_old_layout_beside_another_hosts_pending_publish_stays_in_place(tmp_path):
    files = plant_old_layout(tmp_path)
    other = "abcdef" if HOST_TAG != "abcdef" else "fedcba"
    (tmp_path / f"{PLAN_PREFIX}{other}-{dead_pid()}-0123abcd.json").write_text("{}")
    with ResultsDir(tmp_path) as rd:
        assert "left the previous run's files in place: another host's publish is pending there" in rd.recovered
    assert {rel: (tmp_path / rel).read_text() for rel in OLD_FILES} == {k: files[k] for k in OLD_FILES}
