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


def test_nightly_gpu_job_contract():
    wf = _load("nightly-gpu.yml")
    triggers = wf.get("on", wf.get(True))        # YAML 1.1 reads a bare `on` as True
    assert "schedule" in triggers and triggers["schedule"][0]["cron"].count(" ") == 4
    job = wf["jobs"]["acceptance"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert "'.[test,gpu]'" in script
    assert "albert-ixrt fetch --squad --model-dir" in script
    for needle in ("-m conversion", "-m accuracy", "--strict-assets --require-gpu", "-m perf", "-p no:xdist",
                   "--benchmark-json", "albert-ixrt report"):
        assert needle in script, needle
    assert script.count("--junitxml") == 4
    # conversion, perf and accuracy each judge the real model on the backend under test (issue 16), not
    # the tiny self-test subject; the suite's self-tests run in their own step.
    steps = {s["name"].split(" ")[0]: s.get("run", "") for s in job["steps"] if "name" in s}
    for suite in ("conversion", "accuracy", "perf"):
        run = steps[suite.capitalize()]
        for needle in (f"-m {suite}", '--model "$ALBERT_IXRT_MODEL"', '--backend "$BACKEND"', "--precision fp16",
                       "--strict-assets", "--require-gpu", "-p no:xdist"):
            assert needle in run, (suite, needle)
    assert "tests/selftest" in steps["Self-tests"]
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    paths = uploads[0]["with"]["path"]
    for artefact in ("*.xml", "benchmark.json", "perf_report.md", "throughput.png"):
        assert artefact in paths
    caches = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache")]
    assert caches, "the model and dev set must be cached between nights"


def test_cpu_job_runs_the_default_suite_on_every_push():
    wf = _load("ci.yml")
    triggers = wf.get("on", wf.get(True))
    assert "push" in triggers
    script = "\n".join(step.get("run", "") for step in wf["jobs"]["cpu"]["steps"])
    assert "torch==2.13.0" in script and "pytest" in script
