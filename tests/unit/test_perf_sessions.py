"""Perf sessions on one machine: a second session timing beside another says so (a machine-wide lock the
kernel drops with its holder), in the item's message and figures; one timing alone claims nothing.  Ctrl-C
in the middle of `pytest -m perf` ends with pytest's own interrupted summary and keeps the JSON of the
benchmarks that finished (pytest-benchmark alone died on the cut-off one: "min() arg is an empty sequence")."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from child_env import child_env
from filelock import FileLock

from albert_ixrt.acceptance.options import Options
from albert_ixrt.acceptance.perf import loop_timer, perf_lock_path
from albert_ixrt.acceptance.plan import make_plan
from albert_ixrt.acceptance.session import Session


def _one_item(perf_batch: int = 1):
    with Session(make_plan(Options(perf_batch_sizes=(perf_batch,)))) as session:
        return session.perf_item(f"b{perf_batch}x384", loop_timer)


def test_a_session_timing_beside_another_says_so_and_one_alone_does_not():
    alone = _one_item()
    assert alone.status == "passed" and "timed_beside" not in alone.figures and "beside" not in alone.message
    with FileLock(str(perf_lock_path()), timeout=0):          # another session holds the machine
        beside = _one_item()
    assert beside.status == "passed" and "timed beside another perf session" in beside.message
    assert "another albert-ixrt perf session is timing on this machine now" in beside.figures["timed_beside"]


def test_timed_outputs_off_torch_fail_the_item_and_no_timings_leave_it_not_judged():
    """A configuration that breaks the numerics cannot post a throughput: the timed call's outputs (here
    shifted by 1.0) are judged against torch fp32; a timer that took no rounds judges nothing."""
    with Session(make_plan(Options(perf_batch_sizes=(1,)))) as session:
        runner = session.artefact("runner")

        class Shifted:
            precision = runner.precision

            def infer(self, feed):
                return [out + 1.0 for out in runner.infer(feed)]

            def describe(self):
                return runner.describe()

        def one_round(call, rounds, warmup):         # the check, not the timing, is under test
            call()
            return [0.01]

        good = session.perf_item("b1x384", one_round)
        session._built["runner"] = Shifted()
        bad = session.perf_item("b1x384", one_round)
        session._built["runner"] = runner
        untimed = session.perf_item("b1x384", lambda call, rounds, warmup: [])
    assert good.status == "passed" and "against torch fp32" in good.message
    assert bad.status == "failed" and "against torch fp32" in bad.message and "beyond atol" in bad.message
    assert untimed.status == "not judged" and "--benchmark-disable" in untimed.message


def test_a_benchmark_cut_off_before_its_first_round_is_dropped_and_the_finished_ones_kept():
    """pytest-benchmark keeps one Metadata per benchmark (its rounds in .stats.data); one cut off by Ctrl-C
    has none, and its min() would end the run in a traceback."""
    from types import SimpleNamespace

    from albert_ixrt.acceptance.door import forget_unfinished_benchmarks

    done, cut = (SimpleNamespace(stats=SimpleNamespace(data=[0.1, 0.2])), SimpleNamespace(stats=SimpleNamespace(data=[])))
    config = SimpleNamespace(_benchmarksession=SimpleNamespace(benchmarks=[done, cut, done]))
    forget_unfinished_benchmarks(config)
    assert config._benchmarksession.benchmarks == [done, done]
    forget_unfinished_benchmarks(SimpleNamespace())              # no pytest-benchmark: nothing to do


@pytest.mark.slow
def test_ctrl_c_during_perf_keeps_the_finished_benchmarks_json(tmp_path):
    out = tmp_path / "perf.json"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:xdist",
                             "--pyargs", "albert_ixrt.acceptance", "-m", "perf", f"--benchmark-json={out}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env(HF_HUB_OFFLINE="1", ALBERT_IXRT_MODEL=None))
    lines, began = [], time.monotonic()
    while time.monotonic() - began < 600:
        line = proc.stdout.readline()
        lines.append(line)
        if "PASSED" in line and "test_throughput" in line:       # one benchmark finished, the next one starts
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=300)[0]
    text = "".join(lines) + rest
    assert proc.returncode == 2, text[-3000:]                     # pytest's "interrupted"
    assert "KeyboardInterrupt" in text and "min() arg is an empty sequence" not in text, text[-3000:]
    kept = json.loads(out.read_text())["benchmarks"]
    assert kept and all(b["stats"]["rounds"] > 0 for b in kept)
