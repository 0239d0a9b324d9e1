"""Bring your own artefacts: the user's ONNX file (--onnx) or prebuilt engine plan (--engine) as the subject,
--model naming the torch model it must match.  Each refusal is one line before any work; the file is judged
by the same checks as a converted stage or a built engine (graph checks, equivalence against torch fp32,
perf, accuracy), and its sha256 goes into the record."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from child_env import child_env
from onnx import TensorProto, helper

from albert_ixrt.acceptance.options import Options
from albert_ixrt.acceptance.plan import make_plan
from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.onnx_graph import make_model

ROOT = Path(__file__).resolve().parents[2]
EMULATED = ROOT / "tests" / "support" / "emulated-tensorrt"


def qa_graph(path: Path, *, inputs=("input_ids", "attention_mask", "token_type_ids"),
             outputs=("start_logits", "end_logits"), batch="batch") -> Path:
    """A graph with the QA model's interface (the logits are a cast of the ids: enough to be checked)."""
    nodes = [helper.make_node("Cast", [inputs[0]], [o], to=TensorProto.FLOAT) for o in outputs]
    graph = helper.make_graph(nodes, "qa", [helper.make_tensor_value_info(n, TensorProto.INT64, [batch, "sequence"])
                                            for n in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, "sequence"])
                               for n in outputs])
    onnx.save(make_model(graph, 17), str(path))
    return path


@pytest.mark.parametrize("options, needle", [
    ({"onnx": "{good}"}, "--onnx needs --model naming the torch model it must match"),
    ({"onnx": "{good}", "model": "tiny"}, "runs on --backend onnxruntime, tensorrt or ixrt; with torch it would"),
    ({"engine": "{good}", "model": "tiny", "backend": "onnxruntime"}, "a plan runs on --backend tensorrt or ixrt"),
    ({"onnx": "{good}", "engine": "{good}", "model": "tiny", "backend": "tensorrt"}, "give one of them"),
    ({"onnx": "{garbage}", "model": "tiny", "backend": "onnxruntime"}, "not an ONNX model"),
    ({"onnx": "{renamed}", "model": "tiny", "backend": "onnxruntime"},
     "its inputs are ['ids', 'attention_mask', 'token_type_ids']; the QA model's are"),
    ({"onnx": "{fixed}", "model": "tiny", "backend": "onnxruntime"},
     "input 'input_ids' fixes its batch axis to 1; the session feeds several batch sizes"),
])
def test_a_users_artefact_is_refused_in_one_line_before_any_work(tmp_path, options, needle):
    files = {"good": qa_graph(tmp_path / "good.onnx"), "renamed": qa_graph(tmp_path / "renamed.onnx",
                                                                           inputs=("ids", "attention_mask",
                                                                                   "token_type_ids")),
             "fixed": qa_graph(tmp_path / "fixed.onnx", batch=1), "garbage": tmp_path / "garbage.onnx"}
    files["garbage"].write_bytes(b"\x08\x07not a protobuf at all" * 3)
    options = {k: v.format(**files) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(AlbertIxrtError) as err:
        make_plan(Options(allow_skips=True, **options))
    assert needle in str(err.value) and "\n" not in str(err.value)
    good = make_plan(Options(onnx=str(files["good"]), model="tiny", backend="onnxruntime"))
    assert good.step("convert").items == ("onnx",) and good.step("equivalence").items == ("onnx", "runner")
    assert good.subject.named and good.subject.describe().startswith(f"ONNX file {files['good']} on onnxruntime")


def test_the_pytest_door_collects_the_users_onnx_as_the_items_it_judges(tmp_path):
    """From a folder outside the checkout, `pytest --pyargs albert_ixrt.acceptance --onnx FILE` collects one
    test per item the session judges for that file (its graph checks, its equivalence, the runner): none
    parametrized over nothing, which pytest would skip green as an "empty parameter set"."""
    good = qa_graph(tmp_path / "good.onnx")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--pyargs", "albert_ixrt.acceptance", "-m", "conversion", "--collect-only", "--model",
                           "tiny", "--onnx", str(good), "--backend", "onnxruntime"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=child_env(ALBERT_IXRT_MODEL=None))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    collected = [line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line]
    assert collected == ["test_graph_checks[onnx]", "test_stage_matches_torch_fp32[onnx]",
                         "test_runner_under_test_matches_torch_fp32[runner]"]


def _run(tmp_path: Path, *argv, gen: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    prefix = [sys.executable, str(EMULATED), gen, "--"] if gen else []
    out = tmp_path / "r"
    proc = subprocess.run([*prefix, sys.executable, "-m", "albert_ixrt.cli", "run", *argv, "--skip", "perf",
                           "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=900,
                          env=child_env(HF_HUB_OFFLINE="1", ALBERT_IXRT_MODEL=None))
    rec = json.loads((out / "latest" / "report.json").read_text()) if (out / "latest").exists() else {}
    return proc, rec


def _items(rec: dict, step: str) -> dict:
    return {i["name"]: i for s in rec["steps"] if s["name"] == step for i in s["items"]}


@pytest.mark.slow
def test_a_users_onnx_is_judged_like_a_converted_stage_both_ways(tmp_path, tiny_model):
    """The tiny model's own fused graph as the user's file passes; the same graph with one weight tensor
    scaled fails its equivalence, while the record names the file and its sha256."""
    from albert_ixrt.fileio import sha256_file
    from albert_ixrt.loaders import converted

    folder, manifest = converted(tiny_model, progress=False)
    mine = tmp_path / "mine.onnx"
    mine.write_bytes((folder / manifest["stages"]["fused"]["file"]).read_bytes())
    proc, rec = _run(tmp_path, "--model", "tiny", "--onnx", str(mine), "--backend", "onnxruntime")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rec["subject"]["onnx"] == str(mine) and rec["subject"]["onnx_sha256"] == sha256_file(mine)
    assert _items(rec, "convert")["onnx"]["status"] == _items(rec, "equivalence")["onnx"]["status"] == "passed"

    broken = onnx.load(str(mine))
    big = max(broken.graph.initializer, key=lambda t: np.prod(t.dims))
    big.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(big) * 3.0, big.name))
    onnx.save(broken, str(mine))
    proc, rec = _run(tmp_path / "b", "--model", "tiny", "--onnx", str(mine), "--backend", "onnxruntime")
    assert proc.returncode == 1 and rec["verdict"]["status"] == "FAILED"
    item = _items(rec, "equivalence")["onnx"]
    assert item["status"] == "failed" and "stage 'onnx': first layer over tolerance: " in item["message"]


@pytest.mark.slow
def test_a_prebuilt_plan_is_judged_like_a_built_engine_and_another_versions_plan_refused(tmp_path):
    """A plan an emulated TensorRT 11.4 built (as trtexec would) is judged through --engine; the same plan
    under another TensorRT is refused in one line naming both versions."""
    proc, rec = _run(tmp_path / "build", "--backend", "tensorrt", "--precision", "fp16", gen="11.4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = tmp_path / "mine.plan"
    plan.write_bytes(Path(rec["runner"]["engine"]).read_bytes())
    proc, rec = _run(tmp_path / "ok", "--model", "tiny", "--engine", str(plan), "--backend", "tensorrt", gen="11.4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _items(rec, "convert")["plan"]["status"] == "passed" and _items(rec, "equivalence")["runner"]["status"] \
        == "passed"
    assert rec["subject"]["engine"] == str(plan) and len(rec["subject"]["engine_sha256"]) == 64
    proc, rec = _run(tmp_path / "other", "--model", "tiny", "--engine", str(plan), "--backend", "tensorrt",
                     gen="10.13-strong")
    assert proc.returncode == 1
    message = _items(rec, "convert")["plan"]["message"]
    assert "built with TensorRT 11.4.0.106 (plan header), but the runtime here is TensorRT 10.13.3.9" in message
