"""Behaviours a hand-made mutation test of the suite found unguarded: each is
pinned here both ways, so the single-point bug named in each docstring fails a test."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from albert_ixrt.cli import build_parser
from albert_ixrt.onnx_graph import make_model


# --- the fp16-share boundary ------------------------------------------------------------------
def _weights_graph(path, fp16: int, fp32: int):
    inits = [numpy_helper.from_array(np.ones((fp16,), np.float16), "half"),
             numpy_helper.from_array(np.ones((fp32,), np.float32), "full")]
    graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("full", TensorProto.FLOAT, None)], inits)
    onnx.save(make_model(graph, 17), str(path))
    return path


def test_a_graph_exactly_at_the_fp16_share_threshold_is_fp16(tmp_path):
    """Documented rule (config.FP16_GRAPH_MIN_SHARE): "fp16" when *at least* that share of the float
    weights is 16-bit.  Mutation caught: ``share > FP16_GRAPH_MIN_SHARE``."""
    from albert_ixrt.config import FP16_GRAPH_MIN_SHARE
    from albert_ixrt.trt_api import graph_float_share, graph_precision

    total = 1000
    at = round(total * FP16_GRAPH_MIN_SHARE)
    on_the_line = _weights_graph(tmp_path / "at.onnx", at, total - at)
    assert graph_float_share(on_the_line)["fp16_share"] == FP16_GRAPH_MIN_SHARE
    assert graph_precision(on_the_line) == "fp16"
    just_below = _weights_graph(tmp_path / "below.onnx", at - 1, total - at + 1)
    assert graph_precision(just_below) == "mixed"


# --- LoadGen quick mode keeps the user's counts -------------------------------------------------
def test_loadgen_quick_mode_keeps_the_users_counts_and_durations():
    """Mutation caught: quick defaults applied over the user's options (``{**given, **QUICK}``)."""
    from albert_ixrt.commands.loadgen import QUICK, scenario_settings

    given = {"min_query_count": 7, "min_duration_ms": 123, "max_duration_ms": 456}
    assert all(QUICK[k] != v for k, v in given.items())
    args = build_parser().parse_args(["loadgen", "--min-query-count", "7", "--min-duration-ms", "123",
                                      "--max-duration-ms", "456"])
    for scenario in ("SingleStream", "Offline"):
        s = scenario_settings(args, scenario)
        assert s.mode == "quick"
        assert {k: getattr(s, k) for k in given} == given
    defaults = scenario_settings(build_parser().parse_args(["loadgen"]), "Offline")   # and without them: QUICK
    assert {k: getattr(defaults, k) for k in QUICK} == QUICK


# --- a Dropout whose training mode is not a constant false ---------------------------------------
def _dropout_graph(training: str | None, initializers=(), extra_inputs=()):
    dims = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
              for n in ("input_ids", "attention_mask", "token_type_ids")] + list(extra_inputs)
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("start_logits", "end_logits")]
    dropout_inputs = ["f", "ratio"] + ([training] if training else [])
    nodes = [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Dropout", dropout_inputs, ["start_logits"], name="the_dropout"),
             helper.make_node("Identity", ["f"], ["end_logits"])]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "ratio"), *initializers]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return make_model(graph, 17)


def _dropout_problems(model) -> list[str]:
    from albert_ixrt.graph_checks import check_graph

    return [p for p in check_graph(model, target="onnxruntime").problems if "Dropout" in p]


def test_a_dropout_whose_training_mode_is_computed_at_run_time_is_flagged():
    """training_mode fed by a graph input (true or false only when the graph runs): not provably
    inference.  Mutation caught: an unknown value taken as false (``value is not None and ...``)."""
    runtime = _dropout_graph("train", extra_inputs=[helper.make_tensor_value_info("train", TensorProto.BOOL, [])])
    assert _dropout_problems(runtime) == ["Dropout the_dropout is in training mode"]
    assert _dropout_problems(_dropout_graph(None)) == []                       # absent: inference
    false = numpy_helper.from_array(np.array(False), "train")
    assert _dropout_problems(_dropout_graph("train", [false])) == []           # constant false: inference


# --- the onnxruntime floor, at exactly the floor ---------------------------------------------------
def test_a_fusion_shortfall_at_exactly_the_floor_version_names_the_real_cause():
    """At onnxruntime == the floor, "install onnxruntime>=FLOOR" would tell the user to install what
    they have.  Mutation caught: ``<=`` for ``<`` in the floor comparison."""
    from albert_ixrt.config import ONNXRUNTIME_FLOOR
    from albert_ixrt.fusion import FusionCheckError, check_fusion

    full = {"Attention": 12, "SkipLayerNormalization": 24, "FastGelu": 12}
    short = {**full, "Attention": 0}
    for at_floor in (ONNXRUNTIME_FLOOR, ONNXRUNTIME_FLOOR + ".0"):
        with pytest.raises(FusionCheckError) as info:
            check_fusion(short, full, ort_version=at_floor)
        assert "install onnxruntime>=" not in str(info.value)
        assert "fusion patterns changed" in str(info.value)
    major, minor = ONNXRUNTIME_FLOOR.split(".")[:2]
    with pytest.raises(FusionCheckError, match=f"install onnxruntime>={ONNXRUNTIME_FLOOR}"):
        check_fusion(short, full, ort_version=f"{major}.{int(minor) - 1}.0")


# --- the MLPerf-style ratio as `run` judges it, without a slow accuracy run ------------------------
def _scores(em, f1, official_f1=None):
    from albert_ixrt.config import SQUAD_DEV_QUESTIONS
    from albert_ixrt.squad.metrics import SquadScores

    f1_official = f1 + 2 if official_f1 is None else official_f1
    return SquadScores(em + 2, f1_official, em, f1, SQUAD_DEV_QUESTIONS, SQUAD_DEV_QUESTIONS, 10866)


def test_the_thresholds_judge_the_mlperf_ratio_both_ways():
    """The thresholds: official F1 >= 99% of the torch fp32 reference's, judged beside the reference
    thresholds, each its own item.  Mutations caught: the ratio ignored, the ratio inverted, the ratio
    compared at the wrong boundary (exactly 99 % passes)."""
    from albert_ixrt.acceptance.checks import threshold_items
    from albert_ixrt.config import MLPERF_F1_RATIO

    scores = _scores(90, 90, official_f1=92.0)
    status = {i.name: i for i in threshold_items(scores, 92.0 / MLPERF_F1_RATIO)}        # exactly 99 %
    assert status["official_f1_ratio"].status == "passed"
    status = {i.name: i for i in threshold_items(scores, 93.0)}                          # 98.9 %
    ratio = status["official_f1_ratio"]
    assert ratio.status == "failed" and ratio.figures["ratio"] == 92.0 / 93.0
    assert "FAIL: official F1 92.000 vs torch fp32 reference 93.000" in ratio.message
    assert status["bytemlperf_exact_match"].status == status["bytemlperf_f1"].status == "passed"
    assert {i.name: i.status for i in threshold_items(scores, None)}["official_f1_ratio"] == "passed"   # the reference


def test_the_reference_is_evaluated_only_when_the_ratio_needs_it(tmp_path, monkeypatch):
    """Mutations caught: the torch fp32 reference evaluated for a subject that is itself the reference, or
    for one whose accuracy is not judged at all."""
    from albert_ixrt.acceptance import checks
    from albert_ixrt.acceptance.options import Options
    from albert_ixrt.acceptance.plan import make_plan
    from albert_ixrt.acceptance.session import NotJudged, Session

    (tmp_path / "m.pt").write_bytes(b"")
    calls = []

    def reference(self):
        calls.append(1)
        return SimpleNamespace(scores=_scores(90, 90, official_f1=93.0))

    monkeypatch.setattr(Session, "_build_reference_evaluation", reference)

    def judge(weights="known-answer", **options):
        session = Session(make_plan(Options(model=str(tmp_path / "m.pt"), **options)))
        session._built["subject"] = SimpleNamespace(model=SimpleNamespace(weights=weights, label=weights))
        session._built["evaluation"] = SimpleNamespace(scores=_scores(90, 90, official_f1=92.0))
        return {i.name: i.status for i in checks.thresholds_step(session).items}

    assert judge()["official_f1_ratio"] == "passed" and calls == []          # torch fp32: the reference itself
    assert judge(precision="bf16")["official_f1_ratio"] == "failed" and calls == [1]
    with pytest.raises(NotJudged):
        judge(weights="random", precision="bf16")
    assert calls == [1]


@pytest.mark.parametrize("label, reason", [({"kind": "known-answer"}, True), ({"kind": "exported"}, False),
                                           (None, False)])
def test_only_a_known_answer_archive_is_named_as_one_in_the_verdict(tmp_path, label, reason):
    """The sign-off names a known-answer model (it proves the gate, not a model's accuracy) by the label's
    kind, the rule the loader reads it by; a plain TorchScript file, or another label, is not one."""
    import json
    import zipfile

    from albert_ixrt.acceptance.session import subject_reasons
    from albert_ixrt.model import KNOWN_ANSWER_EXTRA_FILE, archive_kind

    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", b"")
        if label is not None:
            archive.writestr(f"m/extra/{KNOWN_ANSWER_EXTRA_FILE}", json.dumps(label))
    plan = SimpleNamespace(subject=SimpleNamespace(self_test=False, named=True, model=str(path)))
    assert archive_kind(path) == (label or {}).get("kind")
    assert any("a known-answer model" in r for r in subject_reasons(plan, None)) is reason
