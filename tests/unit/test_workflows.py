"""The CI workflow files: valid against GitHub's workflow schema (check-jsonschema's vendored copy,
offline) and holding the contract of the nightly GPU job."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def _load(name):
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_workflows_match_the_github_schema():
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema not installed (pip install -e '.[test]')")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert files
    p = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *files], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def _script(job) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_nightly_legs_run_one_session_each_with_uniquely_named_files():
    """One leg per GPU label x backend x precision (fail-fast off); each leg's one pytest session judges the
    named real model on conversion, accuracy and perf together, writing the sign-off record, pytest-benchmark's
    JSON with raw rounds and its JUnit under a folder named after the leg; no evaluation or bench outside it."""
    wf = _load("nightly-gpu.yml")
    triggers = wf.get("on", wf.get(True))        # YAML 1.1 reads a bare `on` as True
    assert "schedule" in triggers and triggers["schedule"][0]["cron"].count(" ") == 4
    job = wf["jobs"]["acceptance"]
    assert job["strategy"]["fail-fast"] is False
    matrix = job["strategy"]["matrix"]
    assert {"gpu", "backend", "precision"} <= set(matrix) and "${{ matrix.gpu }}" in job["runs-on"]
    assert job["env"]["LEG"] == "${{ matrix.gpu }}-${{ matrix.backend }}-${{ matrix.precision }}"
    script = _script(job)
    assert "'.[test,gpu]'" in script and "albert-ixrt fetch --squad --model-dir" in script
    sessions = [line for line in script.splitlines() if "--pyargs albert_ixrt.acceptance" in line]
    assert len(sessions) == 1 and '-m "conversion or accuracy or perf"' in sessions[0] and "-p no:xdist" in sessions[0]
    for needle in ('--model "$ALBERT_IXRT_MODEL"', '--backend "${{ matrix.backend }}"', "--benchmark-save-data",
                   '--benchmark-json="nightly/$LEG/perf.json"', '--albert-report="nightly/$LEG/record"',
                   '--junitxml="nightly/$LEG/junit.xml"'):
        assert needle in script, needle
    for gone in ("albert-ixrt evaluate", "albert-ixrt bench", "--strict-assets"):   # nothing judged twice or loosely
        assert gone not in script, gone
    upload = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")][0]
    assert upload["with"]["name"] == "nightly-${{ env.LEG }}" and upload["if"] == "always()"


def test_the_history_job_merges_the_legs_and_judges_the_nights():
    job = _load("nightly-gpu.yml")["jobs"]["history"]
    assert job["needs"] == "acceptance" and job["if"] == "always()"
    script = _script(job)
    for needle in ("junitparser merge", "albert-ixrt history add --history history/history.jsonl",
                   "nightly/*/perf.json nightly/*/record", "albert-ixrt history plot", "albert-ixrt history check",
                   "GITHUB_STEP_SUMMARY", 'git push origin "HEAD:$HISTORY_BRANCH"', "kept as an artifact"):
        assert needle in script, needle
    assert script.index("albert-ixrt history plot") < script.index("albert-ixrt history check")   # a picture regardless
    steps = {s.get("name", ""): s for s in job["steps"]}
    assert steps["Fail on a regression"]["if"] == "steps.check.outputs.status != '0'"
    assert any(str(s.get("uses", "")).startswith("actions/download-artifact") for s in job["steps"])


def test_cpu_job_runs_the_default_suite_on_every_push():
    wf = _load("ci.yml")
    triggers = wf.get("on", wf.get(True))
    assert "push" in triggers
    script = "\n".join(step.get("run", "") for step in wf["jobs"]["cpu"]["steps"])
    assert "torch==2.13.0" in script and "pytest" in script
