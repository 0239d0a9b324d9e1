"""trt_fp16 (model.sim.fp16.onnx), the strongly typed TensorRT / ixRT fp16 input: standard ops, fp16
weights and compute with LayerNorm and Softmax in fp32, engine I/O kept, shared weights once, and
finite logits for a row whose attention_mask is all zero."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from albert_ixrt.export import STAGE_FILES, TRT_FP32_OPS, engine_input, stage_paths
from albert_ixrt.graph_checks import check_graph
from albert_ixrt.onnx_graph import fp16_share, load_onnx, make_model, nonfinite_constants, tensor_fingerprint

pytestmark = pytest.mark.selftest


@pytest.fixture(params=["tiny", "twin"])
def converted(request):
    return request.getfixturevalue(f"{request.param}_converted")


def trt_fp16_model(converted):
    out, manifest = converted
    return load_onnx(stage_paths(manifest, out)["trt_fp16"])


def test_built_from_the_simplified_graph(converted):
    _, manifest = converted
    entry = manifest["stages"]["trt_fp16"]
    assert entry["file"] == STAGE_FILES["trt_fp16"] == "model.sim.fp16.onnx"
    assert entry["input_sha256"] == manifest["stages"]["simplified"]["sha256"]
    assert entry["settings"]["source"] == "simplified" and entry["settings"]["fp32_reason"]


def test_standard_onnx_ops_only_and_tensorrt_ready(converted):
    _, manifest = converted
    model = trt_fp16_model(converted)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert manifest["stages"]["trt_fp16"]["fused_ops"] == {}
    report = check_graph(model, target="tensorrt", expected_opset=17)
    assert report.ok, report.problems
    assert manifest["stages"]["trt_fp16"]["graph_check"]["target"] == "tensorrt"


def test_engine_io_kept_weights_fp16(converted):
    model = trt_fp16_model(converted)
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.INT64] * 3
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT] * 2
    matrices = [t for t in model.graph.initializer if len(t.dims) == 2]
    assert matrices and all(t.data_type == TensorProto.FLOAT16 for t in matrices)


def float_type_of_outputs(model, op_type):
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    return {types.get(n.output[0]) for n in model.graph.node if n.op_type == op_type}


def test_matmuls_fp16_layernorm_and_softmax_fp32(converted):
    _, manifest = converted
    model = trt_fp16_model(converted)
    assert float_type_of_outputs(model, "MatMul") == {TensorProto.FLOAT16}
    for op in TRT_FP32_OPS:
        assert float_type_of_outputs(model, op) == {TensorProto.FLOAT}, op
    share = manifest["stages"]["trt_fp16"]["fp16_share"]
    assert share == fp16_share(model)
    assert share["weights"] > 0.99 and 0.8 < share["nodes"] < 1
    assert set(share["fp32_ops"]) == {"LayerNormalization", "Softmax", "Add", "Where"}


def test_fp16_share_measures_precision():
    """Known-good/known-bad for the share itself: an fp32 graph has none, its fp16 twin nearly all."""
    from onnx import helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[w])
    model = make_model(graph, 17)
    assert fp16_share(model) == {"weights": 0.0, "nodes": 0.0, "fp32_ops": {"MatMul": 1}}
    from onnxruntime.transformers.float16 import convert_float_to_float16

    assert fp16_share(convert_float_to_float16(model, keep_io_types=True))["weights"] == 1.0


def test_albert_shared_weights_stored_once(twin_converted):
    out, manifest = twin_converted
    model = trt_fp16_model(twin_converted)
    prints = [tensor_fingerprint(t) for t in model.graph.initializer]
    assert len(prints) == len(set(prints))
    entry = manifest["stages"]["trt_fp16"]
    assert entry["size_bytes"] < 0.52 * manifest["stages"]["simplified"]["size_bytes"]


def all_padded_feed(batch=2, seq=24, vocab=1000):
    ids = (np.arange(batch * seq, dtype=np.int64).reshape(batch, seq) % (vocab - 5)) + 5
    mask = np.ones_like(ids)
    mask[1] = 0  # row 1: no real token at all
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def logits_finite(path) -> bool:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return all(np.isfinite(x).all() for x in session.run(None, all_padded_feed()))


def with_minus_inf_mask(model, dest):
    """The ModelOpt-AutoCast failure: the additive mask constant turned into -inf."""
    for node in model.graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type in (1, 10):
                value = numpy_helper.to_array(attr.t)
                if value.size == 1 and value.item() <= -6e4:
                    attr.t.CopyFrom(numpy_helper.from_array(np.full_like(value, -np.inf), attr.t.name))
    onnx.save(model, str(dest))
    return dest


def test_an_all_padded_row_gives_finite_logits(tiny_converted, tmp_path):
    out, manifest = tiny_converted
    path = stage_paths(manifest, out)["trt_fp16"]
    assert manifest["stages"]["trt_fp16"]["nonfinite_constants"] == []
    assert logits_finite(path)
    bad = with_minus_inf_mask(load_onnx(path), tmp_path / "minus_inf.onnx")
    assert nonfinite_constants(load_onnx(bad)), "the planted -inf mask constant is seen"
    assert not logits_finite(bad), "a -inf mask gives NaN on the all-padded row"


def test_strongly_typed_engines_map_to_trt_fp16(twin_converted):
    _, manifest = twin_converted
    for backend in ("tensorrt", "ixrt"):
        assert engine_input(backend, "fp16", strongly_typed=True) == "trt_fp16"
        assert engine_input(backend, "fp16") == engine_input(backend, "fp32") == "simplified"  # weak typing
        assert engine_input(backend, "fp32", strongly_typed=True) == "simplified"
        assert manifest["engine_inputs"][f"{backend}-fp16-strongly-typed"] == "model.sim.fp16.onnx"
        assert manifest["engine_inputs"][backend] == "model.sim.onnx"
    assert engine_input("onnxruntime", "fp16") == "fp16" and engine_input("onnxruntime", "fp32") == "fused"
    with pytest.raises(KeyError):
        engine_input("nosuch", "fp16")
