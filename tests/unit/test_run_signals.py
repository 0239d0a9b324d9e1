"""kill -9 and Ctrl-C at each step of `albert-ixrt run --profile tiny` leave the results folder as it
was (the earlier run byte-identical, no new run folder, `latest` unchanged), and two concurrent runs
into one folder: one runs, one refuses.  Real processes and real signals: about 16 tiny runs, so the
module is marked slow."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from albert_ixrt.pipeline import STEPS
from albert_ixrt.results_dir import ResultsDir

from rd_helpers import snapshot  # noqa: E402  (tests/unit is on sys.path, as for trt_fakes)

pytestmark = pytest.mark.slow


def _cli(out, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "albert_ixrt.cli", "run", "--profile", "tiny", "--out", str(out),
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(proc: subprocess.Popen, prefix: str, timeout: float = 300) -> list[str]:
    """Read stderr until a line starts with ``prefix``; returns the lines read."""
    lines, t0 = [], time.monotonic()
    while time.monotonic() - t0 < timeout:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting {prefix!r}: {''.join(lines)[-2000:]}")


@pytest.fixture(scope="module")
def previous_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("previous") / "results"
    proc = _cli(out, "--quiet")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return out


#: (the line after which the signal is sent: the run is then in the next step, or in load before any line)
POINTS = [("load", None)] + [(STEPS[i + 1], f"[{i + 1}/{len(STEPS)}] {STEPS[i]}:") for i in range(len(STEPS) - 1)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
@pytest.mark.parametrize("step, after", POINTS, ids=[p[0] for p in POINTS])
def test_a_signal_in_any_step_keeps_the_previous_results(step, after, sig, previous_results, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(previous_results, out, symlinks=True)
    before = snapshot(out)
    proc = _cli(out)
    if after is None:
        time.sleep(1.0)      # still importing / loading: the load step
    else:
        _wait_for(proc, after)
    proc.send_signal(sig)
    rest = proc.communicate(timeout=120)[1]
    if proc.returncode == 0:
        pytest.fail(f"the run finished before the signal reached the {step} step")
    # Ctrl-C: exit 130 from the CLI, or death by SIGINT when it lands while Python shuts down (seen ~1 in 5
    # in the convert step); either way the files below are what counts.
    expected = (130, -signal.SIGINT) if sig == signal.SIGINT else (-signal.SIGKILL,)
    assert proc.returncode in expected, (proc.returncode, rest[-2000:])
    if sig == signal.SIGINT:
        assert "Traceback" not in rest and ": failed in" not in rest, rest[-2000:]
        assert snapshot(out) == before                 # nothing else at all, not even a staging folder
    else:
        assert snapshot(out, skip_staging=True) == before   # the earlier run and latest, byte for byte
        with ResultsDir(out):                          # the next run clears the killed run's staging folder
            pass
        assert snapshot(out) == before


def test_two_concurrent_runs_one_runs_one_refuses(previous_results, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(previous_results, out, symlinks=True)
    first = _cli(out, "--skip", "perf")
    _wait_for(first, f"[2/{len(STEPS)}] features:")   # the first run holds the folder now
    first.send_signal(signal.SIGSTOP)  # held still (its lock too) while the second one loads and asks
    try:
        second = subprocess.run([sys.executable, "-m", "albert_ixrt.cli", "run", "--profile", "tiny", "--out",
                                 str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    rest = first.communicate(timeout=300)[1]
    assert second.returncode == 2 and second.stderr.strip().splitlines() == [
        f"albert-ixrt run: error: --out {out}: another albert-ixrt run is writing there now (it holds "
        f"{out / '.albert-ixrt-run.lock'}); wait for it or give another --out"]
    assert first.returncode == 0, rest[-2000:]
