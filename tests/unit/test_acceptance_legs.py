"""CI judges more than the default subject: the acceptance modules themselves (the pytest door, as a user
runs them: `pytest --pyargs albert_ixrt.acceptance`) on the tiny model through onnxruntime fp16 and int8,
and through the emulated TensorRT 8.6 and 11.4 fp16 engines and the emulated ixRT fp16 engine.  Each leg
must judge every conversion, perf and accuracy item without a failure and end NOT SIGNED OFF for the
reasons it must (the tiny self-test model; an emulated engine), never SIGNED OFF.  Slow: CI's slow step."""
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

LEGS = [("onnxruntime", "fp16", None), ("onnxruntime", "int8", None), ("tensorrt", "fp16", "8.6"),
        ("tensorrt", "fp16", "11.4"), ("ixrt", "fp16", "ixrt")]


@pytest.mark.parametrize("backend, precision, gen", LEGS, ids=[f"{b}-{p}" + (f"-{g}" if g else "") for b, p, g in LEGS])
def test_the_acceptance_modules_judge_the_tiny_model_on(backend, precision, gen, tmp_path):
    prefix = [sys.executable, str(EMULATED), gen, "--"] if gen else []
    report = tmp_path / "record"
    proc = subprocess.run([*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--pyargs", "albert_ixrt.acceptance", "-m", "conversion or perf or accuracy",
                           "--backend", backend, "--precision", precision, f"--albert-report={report}",
                           "--perf-batch-sizes", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env=child_env(HF_HUB_OFFLINE="1", ALBERT_IXRT_MODEL=None))
    assert proc.returncode == 0, proc.stdout[-4000:]
    rec = json.loads((report / "latest" / "report.json").read_text())
    items = {(s["name"], i["name"]): i for s in rec["steps"] for i in s["items"]}
    failed = {k: i["message"] for k, i in items.items() if i["status"] == "failed"}
    assert not failed and rec["verdict"]["status"] == "NOT SIGNED OFF", (failed, rec["verdict"]["line"])
    judged = [k for k, i in items.items() if i["status"] == "passed"]
    assert ("equivalence", "runner") in judged and ("perf", "b1x384") in judged
    assert rec["subject"]["backend"] == backend and rec["subject"]["precision"] == precision
    assert ("emulated" in rec["verdict"]["line"]) is (gen is not None)
    assert rec["subject"]["emulated"] == (rec["runner"].get("emulated") or False)
