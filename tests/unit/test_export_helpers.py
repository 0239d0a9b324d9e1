"""Unit tests of albert_ixrt.export's and onnx_graph's pure helpers (no torch export): dedup, cache keys, tables."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from albert_ixrt import export, onnx_graph
from albert_ixrt.export import Stage, cache_key, stage_table
from albert_ixrt.onnx_graph import dedupe_initializers, make_model, op_histogram


def model_with_copies():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    inits = [numpy_helper.from_array(w, "w0"), numpy_helper.from_array(w.copy(), "w1"),
             numpy_helper.from_array(w + 1, "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["a"]), helper.make_node("MatMul", ["x", "w1"], ["b"]),
             helper.make_node("MatMul", ["x", "w2"], ["c"]),
             helper.make_node("Sum", ["a", "b", "c"], ["y"], domain="")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], initializer=inits)
    return make_model(graph, 17)


def test_dedupe_shares_identical_initializers_and_rewires_nodes():
    model = model_with_copies()
    assert dedupe_initializers(model) == 1
    assert [t.name for t in model.graph.initializer] == ["w0", "w2"]
    assert [n.input[1] for n in model.graph.node[:3]] == ["w0", "w0", "w2"]
    assert dedupe_initializers(model) == 0


def test_op_histogram_names_custom_domains():
    model = model_with_copies()
    model.graph.node.append(helper.make_node("FastGelu", ["y"], ["z"], domain="com.microsoft"))
    assert op_histogram(model) == {"MatMul": 3, "Sum": 1, "com.microsoft:FastGelu": 1}
    assert onnx_graph.fused_op_counts(model) == {"FastGelu": 1}


def test_cache_key_depends_on_input_settings_and_tool_versions():
    versions = {"onnx": "1", "onnxsim": "2"}
    stage = Stage("simplified", {"a": 1}, ("onnx", "onnxsim"), build=None)
    key = cache_key(stage, "in", versions)
    assert key == cache_key(stage, "in", dict(versions))
    assert key != cache_key(stage, "other input", versions)
    assert key != cache_key(Stage("simplified", {"a": 2}, stage.tools, None), "in", versions)
    assert key != cache_key(stage, "in", {**versions, "onnxsim": "3"})
    assert key == cache_key(stage, "in", {**versions, "torch": "unrelated"})


def test_stage_table_lists_every_stage():
    entry = {"file": "model.onnx", "node_count": 10, "fused_ops": {}, "size_bytes": 2_000_000, "seconds": 1.25,
             "reused": True}
    table = stage_table({"stages": {"exported": entry, "fused": {**entry, "fused_ops": {"Attention": 2},
                                                                   "reused": False}}})
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["stage", "file", "nodes"]
    assert "exported" in lines[2] and "yes" in lines[2] and "2.0" in lines[2]
    assert "Attention 2" in lines[3] and lines[3].rstrip().endswith("no")


def test_read_manifest_tolerates_garbage(tmp_path):
    assert export.read_manifest(tmp_path) is None
    (tmp_path / export.MANIFEST_NAME).write_text("[1, 2]")
    assert export.read_manifest(tmp_path) is None


def test_drop_duplicate_nodes_keeps_ssa_form():
    """onnxruntime 1.31's float16 converter repeats identical Casts (same output name): one stays;
    nodes that differ in anything are kept."""
    from albert_ixrt.onnx_graph import drop_duplicate_nodes

    model = model_with_copies()
    cast = helper.make_node("Cast", ["y"], ["y32"], to=TensorProto.FLOAT, name="c")
    model.graph.node.extend([cast, cast, helper.make_node("Cast", ["y"], ["y16"], to=TensorProto.FLOAT16, name="c")])
    model.graph.value_info.extend([helper.make_tensor_value_info("y32", TensorProto.FLOAT, [1, 3])] * 2)
    assert drop_duplicate_nodes(model) == 1
    assert [n.output[0] for n in model.graph.node if n.op_type == "Cast"] == ["y32", "y16"]
    assert [vi.name for vi in model.graph.value_info] == ["y32"]
    assert drop_duplicate_nodes(model) == 0


def test_hand_built_models_carry_the_ir_version_of_their_opset_not_the_newest():
    """onnx's own make_model writes its newest IR version (14 from onnx 1.23 on), which onnxruntime 1.31
    refuses; make_model writes the lowest IR that carries the opsets used (8 for opset 17), and the
    fixtures' QA graph (trt_fakes.qa_onnx) is built with it."""
    assert make_model(model_with_copies().graph, 17).ir_version == 8
    assert make_model(model_with_copies().graph, 17, extra_opsets=[("com.microsoft", 1)]).ir_version == 8
    assert make_model(model_with_copies().graph, 21).ir_version == helper.find_min_ir_version_for(
        [helper.make_opsetid("", 21)]) == 10


def test_the_fixtures_qa_graph_loads_in_onnxruntime_with_its_opsets_ir(tmp_path):
    import onnx
    import onnxruntime as ort

    from trt_fakes import qa_onnx

    path = qa_onnx(tmp_path / "qa.onnx", np.float32)
    assert onnx.load(str(path)).ir_version == 8
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["start_logits", "end_logits"]


def test_the_fused_stage_says_when_it_does_not_apply():
    """No ALBERT config and nothing fused: the stage says it passed the graph through; with a config (the
    counts checked) it says nothing; without one but with fusions, that the counts went unchecked."""
    from albert_ixrt.export import fusion_note

    assert fusion_note({}, {}).startswith("not applicable: no ALBERT config")
    assert fusion_note({"Attention": 0}, {}).startswith("not applicable")
    assert fusion_note({"Attention": 2}, {"Attention": 2}) is None
    assert fusion_note({"Attention": 2}, {}) == ("no ALBERT config beside the model: the fused-op counts were not "
                                                 "checked against one")
