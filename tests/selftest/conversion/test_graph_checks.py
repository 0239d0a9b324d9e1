"""Static graph checks on the converted files, and on small broken graphs that each check must catch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from albert_ixrt import graph_checks
from albert_ixrt.export import stage_paths
from albert_ixrt.graph_checks import check_graph
from albert_ixrt.onnx_graph import make_model

pytestmark = pytest.mark.selftest

FUSED_OPS = {"Attention", "EmbedLayerNormalization", "FastGelu", "SkipLayerNormalization"}


@pytest.fixture(params=["tiny", "twin"])
def converted(request):
    return request.getfixturevalue(f"{request.param}_converted")


@pytest.mark.parametrize("stage", ["exported", "simplified"])
def test_standard_graphs_are_tensorrt_ready(converted, stage):
    out, manifest = converted
    report = check_graph(stage_paths(manifest, out)[stage], target="tensorrt", expected_opset=17)
    assert report.ok, report.problems
    assert report.contrib_ops == {} and report.unsupported_trt_ops == {}


@pytest.mark.parametrize("stage", ["fused", "fp16"])
def test_fused_graphs_run_on_onnxruntime_but_not_tensorrt(converted, stage):
    out, manifest = converted
    path = stage_paths(manifest, out)[stage]
    ort_report = check_graph(path, target="onnxruntime", expected_opset=17)
    assert ort_report.ok, ort_report.problems
    assert set(ort_report.contrib_ops) == FUSED_OPS
    trt_report = check_graph(path, target="tensorrt")
    assert not trt_report.ok
    assert set(trt_report.unsupported_trt_ops) == {f"com.microsoft:{op}" for op in FUSED_OPS}
    assert any("simplified graph" in p for p in trt_report.problems)


def test_manifest_records_each_stage_check_for_its_engine(twin_converted):
    _, manifest = twin_converted
    assert manifest["engine_inputs"]["tensorrt"] == "model.sim.onnx"
    assert manifest["engine_inputs"]["onnxruntime"] == "model.fused.onnx"
    for name, entry in manifest["stages"].items():
        check = entry["graph_check"]
        assert check["ok"], (name, check["problems"])
        assert check["target"] == ("tensorrt" if name in ("exported", "simplified", "trt_fp16") else "onnxruntime")


def test_fp16_graph_keeps_int64_inputs_and_fp32_outputs(twin_converted):
    out, manifest = twin_converted
    model = onnx.load(str(stage_paths(manifest, out)["fp16"]))
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.INT64] * 3
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT] * 2
    big = [t for t in model.graph.initializer if np.prod(t.dims) >= 768 * 768]
    assert big and all(t.data_type == TensorProto.FLOAT16 for t in big)


# --------------------------------------------------------------------------------------------
# Broken graphs: every check must be able to fail
# --------------------------------------------------------------------------------------------
def tiny_graph(nodes, *, inputs=None, outputs=None, initializers=(), opset=17, extra_opsets=()):
    """A valid QA-shaped graph: int64 [batch, sequence] inputs -> fp32 [batch, sequence] logits."""
    dims = ["batch", "sequence"]
    inputs = inputs or [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
                        for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = outputs or [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims)
                          for n in ("start_logits", "end_logits")]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return make_model(graph, opset, extra_opsets=extra_opsets)


def base_nodes(middle_op="Identity", **attrs):
    return [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
            helper.make_node(middle_op, ["f"], ["start_logits"], **attrs),
            helper.make_node("Identity", ["f"], ["end_logits"])]


def test_the_minimal_graph_passes():
    report = check_graph(tiny_graph(base_nodes()), target="tensorrt", expected_opset=17)
    assert report.ok, report.problems


def test_dropout_in_training_mode_is_reported():
    ratio = numpy_helper.from_array(np.array(0.1, np.float32), "ratio")
    training = numpy_helper.from_array(np.array(True), "training")
    nodes = base_nodes()
    nodes[1] = helper.make_node("Dropout", ["f", "ratio", "training"], ["start_logits"])
    report = check_graph(tiny_graph(nodes, initializers=[ratio, training]), target="onnxruntime")
    assert any("Dropout" in p and "training mode" in p for p in report.problems)
    inference = numpy_helper.from_array(np.array(False), "training")
    report = check_graph(tiny_graph(nodes, initializers=[ratio, inference]), target="onnxruntime")
    assert report.ok, report.problems


def test_gradient_ops_are_reported():
    nodes = base_nodes()
    nodes[1] = helper.make_node("SoftmaxGrad", ["f", "f"], ["start_logits"], domain="com.microsoft")
    model = tiny_graph(nodes, extra_opsets=[("com.microsoft", 1)])
    problems = graph_checks.training_op_problems(model)
    assert problems and "SoftmaxGrad" in problems[0]


def test_wrong_names_dtypes_and_static_axes_are_reported():
    dims = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT32, dims),
              helper.make_tensor_value_info("mask", TensorProto.INT64, dims),
              helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, [1, 384])]
    nodes = base_nodes()
    report = check_graph(tiny_graph(nodes, inputs=inputs), target="onnxruntime")
    text = "\n".join(report.problems)
    assert "expected ['input_ids', 'attention_mask', 'token_type_ids']" in text
    assert "'input_ids' is int32, expected int64" in text
    assert "'token_type_ids' axis 0 is fixed to 1" in text


def test_ops_outside_the_tensorrt_parser_are_reported():
    nodes = base_nodes()
    nodes[1] = helper.make_node("FastGelu", ["f"], ["start_logits"], domain="com.microsoft")
    model = tiny_graph(nodes, extra_opsets=[("com.microsoft", 1)])
    assert check_graph(model, target="onnxruntime").ok
    report = check_graph(model, target="tensorrt")
    assert report.unsupported_trt_ops == {"com.microsoft:FastGelu": 1}
    assert report.contrib_ops == {"FastGelu": 1}
    unique = tiny_graph([helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
                         helper.make_node("Unique", ["f"], ["start_logits"], sorted=1),
                         helper.make_node("Identity", ["f"], ["end_logits"])])
    assert "Unique" in check_graph(unique, target="tensorrt").unsupported_trt_ops


def test_dynamic_unsqueeze_axes_are_reported_for_tensorrt():
    nodes = [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Shape", ["input_ids"], ["shape"], start=0, end=1),
             helper.make_node("Sub", ["shape", "shape"], ["axes"]),
             helper.make_node("Unsqueeze", ["f", "axes"], ["u"]),
             helper.make_node("Squeeze", ["u", "axes"], ["start_logits"]),
             helper.make_node("Identity", ["f"], ["end_logits"])]
    problems = graph_checks.non_constant_axes(tiny_graph(nodes))
    assert len(problems) == 2 and all("must be a constant" in p for p in problems)


def test_opset_and_checker_problems_are_reported():
    assert check_graph(tiny_graph(base_nodes(), opset=18), expected_opset=17).problems[0].startswith(
        "default-domain opset is 18")
    too_new = check_graph(tiny_graph(base_nodes(), opset=graph_checks.TRT_MAX_OPSET + 1), target="tensorrt")
    assert any("above" in p for p in too_new.problems)
    broken = tiny_graph(base_nodes())
    broken.graph.node[1].input[0] = "nowhere"
    assert any(p.startswith("ONNX checker") for p in check_graph(broken, target="onnxruntime").problems)
