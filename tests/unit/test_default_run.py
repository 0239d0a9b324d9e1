"""A plain `pytest -q` leaves out tests marked slow (the default run stays within its CPU budget),
while -m, a named file or a node id still select them; CI runs the slow tests as their own step
and fails when either step fails."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml
from child_env import child_env

ROOT = Path(__file__).resolve().parents[2]
SLOW_TEST = "tests/unit/test_cli.py::test_run_tiny_profile_end_to_end"
FAST_TEST = "tests/unit/test_cli.py::test_a_v1_fixture_of_the_same_shape_is_accepted"
#: Collect tests/unit as a folder, but only its test_cli*.py files (collecting all of it costs ~10 CPU-s).
ONLY_CLI = ["--ignore-glob=tests/unit/test_[a-b]*", "--ignore-glob=tests/unit/test_[d-z]*",
            "--ignore-glob=tests/unit/test_co*"]


def _collected(*args) -> tuple[set[str], str]:
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=child_env())
    assert p.returncode == 0, p.stdout + p.stderr
    return {line for line in p.stdout.splitlines() if "::" in line}, p.stdout


def test_a_folder_run_leaves_out_slow_tests_and_says_so():
    ids, out = _collected("tests/unit", *ONLY_CLI)
    assert FAST_TEST in ids and SLOW_TEST not in ids
    assert "slow tests left out of the default run" in out and "`pytest -m slow` runs them" in out


def test_marker_expressions_and_named_files_still_select_slow_tests():
    ids, _ = _collected("tests/unit", *ONLY_CLI, "-m", "slow")
    assert SLOW_TEST in ids and FAST_TEST not in ids
    ids, _ = _collected("tests/unit/test_cli.py")                     # a file named: all of it
    assert {SLOW_TEST, FAST_TEST} <= ids
    ids, _ = _collected(SLOW_TEST)                                    # a node id named: that test
    assert ids == {SLOW_TEST}


DEFAULT_CALL = "-m pytest -q"
SLOW_CALL = "-m pytest -q -m slow --junitxml=reports/junit-slow.xml"


def _ci_run(tmp_path: Path, fail: str | None) -> tuple[int, list[str]]:
    """.ci/run with a python3 that records each call and fails the pytest call equal to ``fail``."""
    (tmp_path / "bin").mkdir(parents=True)
    fake = tmp_path / "bin" / "python3"
    fake.write_text(f"""#!/bin/sh
echo "$*" >> {tmp_path}/calls
[ "$*" = "{fail}" ] && exit 1
exit 0
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    lint = tmp_path / "bin" / "lint-imports"          # the import-linter step before the tests
    lint.write_text("#!/bin/sh\nexit 0\n")
    lint.chmod(lint.stat().st_mode | stat.S_IEXEC)
    env = child_env(PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    p = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, [c for c in (tmp_path / "calls").read_text().splitlines() if "pytest" in c]


def test_ci_runs_the_default_suite_then_the_slow_tests_and_fails_if_either_fails(tmp_path):
    assert _ci_run(tmp_path / "green", None) == (0, [DEFAULT_CALL, SLOW_CALL])
    # a failing default step: the slow step still runs (its results are wanted too), the exit is non-zero
    assert _ci_run(tmp_path / "default-red", DEFAULT_CALL) == (1, [DEFAULT_CALL, SLOW_CALL])
    assert _ci_run(tmp_path / "slow-red", SLOW_CALL) == (1, [DEFAULT_CALL, SLOW_CALL])


def test_github_ci_runs_the_slow_tests_as_their_own_step():
    steps = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]["cpu"]["steps"]
    runs = [s for s in steps if "pytest" in s.get("run", "")]
    assert len(runs) == 2 and "-m slow" not in runs[0]["run"] and "-m slow" in runs[1]["run"]
    assert runs[1].get("if") == "success() || failure()"   # after a failed default step too, never when cancelled


BENCH_PROBE = '''
import pytest

@pytest.mark.parametrize("n", [1, 16])
def test_onnxruntime_int8_agrees_with_fp32_on_the_tiny_model(benchmark, n):
    benchmark.pedantic(sum, args=(range(100 * n),), rounds=3, iterations=1)
'''


def _widest_line(tmp_path: Path, addopts: str) -> int:
    tmp_path.mkdir()
    (tmp_path / "test_probe.py").write_text(BENCH_PROBE)
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = {addopts}\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=child_env())
    assert p.returncode == 0 and "onnxruntime_int8_agrees" in p.stdout, p.stdout + p.stderr
    return max(len(line) for line in p.stdout.splitlines())


def test_the_benchmark_table_fits_120_columns(tmp_path):
    import tomllib

    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert _widest_line(tmp_path / "ours", addopts.replace("--junitxml=reports/junit.xml", "")) <= 120
    assert _widest_line(tmp_path / "default", "") > 200       # pytest-benchmark's own columns: ~230
