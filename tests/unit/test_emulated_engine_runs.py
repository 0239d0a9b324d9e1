"""The engine path end to end on the CPU, per emulated TensorRT / ixRT generation (slow: two CLI runs each).

``tests/support/emulated-tensorrt GEN -- albert-ixrt run --profile tiny --backend tensorrt|ixrt --precision
fp16|fp32`` must PASS with the engine's own row in the equivalence table within its precision's tolerance
(an fp32 engine within the fp32 tolerance: TF32 cleared), the engine labelled emulated and its timings not
published, no default-stream warning; and ``layerwise`` through the same engine must name no layer.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from child_env import child_env
from trt_fakes import CLI_GENERATIONS, DEFAULT_STREAM_WARNING, GENERATIONS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "tests" / "support" / "emulated-tensorrt"
#: Each generation's run on 2 cores: CPU seconds of the run command, convert and build included.
RUN_CPU_BUDGET_S = 30.0


def _cli(gen: str, args: list[str], cache: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """(process, wall seconds, CPU seconds) of one CLI command under the stand-in of ``gen``."""
    env = child_env(ALBERT_IXRT_CACHE=str(cache), HF_HUB_OFFLINE="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(WRAPPER), gen, "--", sys.executable, "-m", "albert_ixrt.cli", *args],
                          capture_output=True, text=True, env=env, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, time.perf_counter() - t0, cpu


def test_the_wrapper_refuses_an_unknown_generation():
    proc = subprocess.run([sys.executable, str(WRAPPER), "9.9", "--", "true"], capture_output=True, text=True,
                          env=child_env())
    assert proc.returncode == 2 and "usage: emulated-tensorrt GEN" in proc.stderr
    proc = subprocess.run([sys.executable, str(WRAPPER), "11.4", "--", sys.executable, "-c",
                           "import tensorrt, sys; print(tensorrt.__emulated__); sys.exit(3)"],
                          capture_output=True, text=True, env=child_env())
    assert proc.returncode == 3 and proc.stdout.strip() == "emulated TensorRT 11.4.0.106 (onnxruntime)"


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
@pytest.mark.parametrize("gen", CLI_GENERATIONS)
def test_emulated_engine_run_and_layerwise(gen, precision, tmp_path, record_property):
    backend = "ixrt" if GENERATIONS[gen].module == "ixrt" else "tensorrt"
    proc, wall, cpu = _cli(gen, ["run", "--profile", "tiny", "--backend", backend, "--precision", precision,
                                 "--out", str(tmp_path / "run"), "--quiet"], tmp_path / "cache")
    out = tmp_path / "run" / "latest"  # the run's own dated folder
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert report["verdict"]["status"] == "NOT SIGNED OFF" and not report["verdict"]["failed"], report["verdict"]
    assert "a stand-in for tests, not the engine to ship" in report["verdict"]["line"]
    assert report["title"].startswith("EMULATED ENGINE") and DEFAULT_STREAM_WARNING not in proc.stderr
    runner = report["runner"]
    assert runner["emulated"] == runner["tensorrt"] and runner["tensorrt"].startswith("emulated TensorRT ")
    perf = next(s for s in report["steps"] if s["name"] == "perf")
    assert all(i["figures"]["not_published"] and i["message"].startswith("[emulated") for i in perf["items"])
    assert not (out / "bench.json").exists()                          # an emulated engine's timings: never published
    eq = json.loads((out / "equivalence.json").read_text())
    rows = [c for c in eq["comparisons"] if c["stage"] == "runner"]
    assert len(rows) == 2 and all(c["passed"] and c["precision"] == precision for c in rows), rows
    tol = eq["tolerances"][precision]
    assert all((c["atol"], c["rtol"]) == (tol["atol"], tol["rtol"]) for c in rows)
    record_property("engine_run", json.dumps({
        "gen": gen, "precision": precision, "typing": runner["typing"], "network_flags": runner["network_flags"],
        "builder_flags": runner["builder_flags"], "graph": runner["graph"], "io": runner["io"],
        "plan": runner["tensorrt"], "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}))
    assert cpu <= RUN_CPU_BUDGET_S, f"{gen} {precision}: the run took {cpu:.1f} CPU-s (budget {RUN_CPU_BUDGET_S})"

    lw = tmp_path / "layerwise.json"
    proc, _, _ = _cli(gen, ["layerwise", "--model", "tiny", "--backend", backend, "--precision", precision,
                            "--json", str(lw)], tmp_path / "cache")
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    result = json.loads(lw.read_text())
    assert "first over tolerance: none" in proc.stdout and result["first_over_tolerance"] is None
    assert result["backend"] == backend and result["precision"] == precision
