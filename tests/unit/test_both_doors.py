"""Same subject, same verdict, same figures: `albert-ixrt run` and `pytest --pyargs albert_ixrt.acceptance`
are two doors onto one session, so on every subject their sign-off records (run's report.json, pytest's
--albert-report) must carry the same verdict line, the same status of every item and the same headline
figures (equivalence errors, EM/F1, the timed outputs' check; timings differ run to run and are left out).
Subjects: the tiny self-test; the albert-base twin on onnxruntime fp32; known-answer models on both sides
of the thresholds; the tiny model as an emulated TensorRT 11.4 fp16 engine; the user's own ONNX file (good
and broken) and engine plan.  Slow: each subject runs twice."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import child_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EMULATED = ROOT / "tests" / "support" / "emulated-tensorrt"
def _env() -> dict:
    return child_env(HF_HUB_OFFLINE="1", ALBERT_IXRT_MODEL=None)


def _through(gen: str | None, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    prefix = [sys.executable, str(EMULATED), gen, "--"] if gen else []
    return subprocess.run([*prefix, *argv], cwd=cwd, capture_output=True, text=True, env=_env(), timeout=1800)


def both_doors(tmp_path: Path, args: list[str], marks: str, run_extra=(), gen: str | None = None):
    """(run's record, pytest's record, run's exit, pytest's exit) for one subject."""
    run = _through(gen, [sys.executable, "-m", "albert_ixrt.cli", "run", *args, *run_extra, "--quiet", "--out",
                         str(tmp_path / "run")], tmp_path)
    test = _through(gen, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "--pyargs", "albert_ixrt.acceptance", "-m", marks, *args,
                          f"--albert-report={tmp_path / 'pytest'}"], tmp_path)
    records = []
    for folder, proc in (("run", run), ("pytest", test)):
        path = tmp_path / folder / "latest" / "report.json"
        assert path.is_file(), f"{folder}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        records.append(json.loads(path.read_text()))
    return records[0], records[1], run.returncode, test.returncode


def headline(rec: dict, parts: set[str]) -> dict:
    """What must be equal: the verdict line, every item's status, and the figures that do not vary with
    timing noise."""
    from albert_ixrt.acceptance.plan import PARTS

    steps = {s for p in parts for s in PARTS[p]}
    items = {(st["name"], i["name"]): i for st in rec["steps"] if st["name"] in steps for i in st["items"]}
    figures = {}
    for (step, name), item in items.items():
        f = item["figures"]
        for key in ("worst_abs_error", "nonfinite", "measured", "ratio", "timed_outputs_check", "batch_size",
                    "seq_len"):
            if key in f:
                figures[(step, name, key)] = round(f[key], 9) if isinstance(f[key], float) else f[key]
    return {"verdict": rec["verdict"]["status"], "line": rec["verdict"]["line"],
            "items": {k: v["status"] for k, v in items.items()}, "figures": figures}


def assert_same(run_rec, pytest_rec, parts, same_request: bool = True):
    """Equal items and figures of ``parts``, and the same verdict; the same verdict line too when both doors
    were asked for the same parts (run --skip X is "not judged", pytest -m leaving X out "not asked for")."""
    a, b = headline(run_rec, parts), headline(pytest_rec, parts)
    assert a["items"], "no item of these parts in run's record: nothing was compared"
    assert a["items"] == b["items"]
    assert a["figures"] == b["figures"]
    assert a["verdict"] == b["verdict"]
    if same_request:
        assert a["line"] == b["line"], (a["line"], b["line"])


def test_the_tiny_self_test(tmp_path):
    run, test, rc_run, rc_test = both_doors(tmp_path, [], "conversion or perf or accuracy")
    assert rc_run == rc_test == 0
    assert_same(run, test, {"conversion", "perf", "accuracy"})
    assert run["verdict"]["status"] == "NOT SIGNED OFF"


def test_the_albert_base_twin_on_onnxruntime_fp32(tmp_path):
    from albert_ixrt import assets

    config = assets.model_config_path()         # ../shared/data or $ALBERT_IXRT_SHARED_DATA
    args = ["--model", str(config), "--random-weights", "--backend", "onnxruntime", "--perf-batch-sizes", "1"]
    run, test, rc_run, rc_test = both_doors(tmp_path, args, "conversion or perf or accuracy")
    assert rc_run == rc_test == 0
    assert_same(run, test, {"conversion", "perf", "accuracy"})
    assert "random weights" in run["verdict"]["line"]


@pytest.mark.parametrize("wrong,verdict", [(0.05, "NOT SIGNED OFF"), (0.25, "FAILED")])
def test_known_answer_models_on_both_sides_of_the_thresholds(tmp_path, wrong, verdict):
    ka = tmp_path / f"ka{int(wrong * 100):02d}.pt"
    made = _through(None, [sys.executable, "-m", "albert_ixrt.cli", "known-answer", "--wrong", str(wrong), "--out",
                           str(ka), "--quiet"], tmp_path)
    assert made.returncode == 0, made.stderr
    run, test, rc_run, rc_test = both_doors(tmp_path, ["--model", str(ka)], "accuracy",
                                            run_extra=["--skip", "convert", "perf"])
    assert rc_run == rc_test == (0 if verdict != "FAILED" else 1)
    assert_same(run, test, {"accuracy"}, same_request=False)
    assert run["verdict"]["status"] == verdict
    em = [i for s in run["steps"] if s["name"] == "thresholds" for i in s["items"]
          if i["name"] == "bytemlperf_exact_match"][0]["figures"]["measured"]
    assert em == pytest.approx({0.05: 92.06, 0.25: 72.69}[wrong], abs=0.01)


def test_an_emulated_tensorrt_fp16_engine(tmp_path):
    args = ["--backend", "tensorrt", "--precision", "fp16"]
    run, test, rc_run, rc_test = both_doors(tmp_path, args, "conversion or perf or accuracy", gen="11.4")
    assert rc_run == rc_test == 0
    assert_same(run, test, {"conversion", "perf", "accuracy"})
    assert run["subject"]["emulated"] and run["title"].startswith("EMULATED ENGINE")
    assert "a stand-in for tests, not the engine to ship" in run["verdict"]["line"]


def _users_onnx(tmp_path: Path, scale: float) -> Path:
    """The tiny model's own fused graph as the user's file; ``scale`` != 1 breaks it (its largest weight)."""
    import numpy as np
    import onnx

    from albert_ixrt.loaders import converted
    from albert_ixrt.model import load_model

    folder, manifest = converted(load_model("tiny"), progress=False)
    graph = onnx.load(str(folder / manifest["stages"]["fused"]["file"]))
    big = max(graph.graph.initializer, key=lambda t: np.prod(t.dims))
    big.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(big) * scale, big.name))
    onnx.save(graph, str(tmp_path / "mine.onnx"))
    return tmp_path / "mine.onnx"


@pytest.mark.parametrize("scale,verdict", [(1.0, "NOT SIGNED OFF"), (3.0, "FAILED")])
def test_the_users_own_onnx_file(tmp_path, scale, verdict):
    args = ["--model", "tiny", "--onnx", str(_users_onnx(tmp_path, scale)), "--backend", "onnxruntime"]
    run, test, rc_run, rc_test = both_doors(tmp_path, args, "conversion or perf or accuracy")
    assert rc_run == rc_test == (0 if verdict != "FAILED" else 1)
    assert_same(run, test, {"conversion", "perf", "accuracy"})
    assert run["verdict"]["status"] == verdict
    assert {("convert", "onnx"), ("equivalence", "onnx"), ("equivalence", "runner")} <= set(headline(test, {
        "conversion"})["items"])


def test_the_users_own_engine_plan(tmp_path):
    built = _through("11.4", [sys.executable, "-m", "albert_ixrt.cli", "run", "--backend", "tensorrt", "--precision",
                              "fp16", "--skip", "perf", "--quiet", "--out", str(tmp_path / "build")], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    engine = json.loads((tmp_path / "build" / "latest" / "report.json").read_text())["runner"]["engine"]
    plan = tmp_path / "mine.plan"
    plan.write_bytes(Path(engine).read_bytes())
    args = ["--model", "tiny", "--engine", str(plan), "--backend", "tensorrt"]
    run, test, rc_run, rc_test = both_doors(tmp_path, args, "conversion or perf or accuracy", gen="11.4")
    assert rc_run == rc_test == 0
    assert_same(run, test, {"conversion", "perf", "accuracy"})
    assert {("convert", "plan"), ("equivalence", "runner")} <= set(headline(test, {"conversion"})["items"])
