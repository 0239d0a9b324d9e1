"""Test support: plant a fault inside one ALBERT layer of any stage's graph.

The fault scales the FFN branch of layer k by (1 + eps) just before that layer's full-layer
LayerNorm (the residual branch untouched, so the LayerNorm cannot normalise it away).  Works on
every stage: ``LayerNormalization(Add(ffn, residual))`` (exported, simplified, trt_fp16, where a
Cast may sit between) and ``SkipLayerNormalization(ffn, residual, ...)`` (fused, fp16).
"""
from __future__ import annotations

import onnx
from onnx import helper, numpy_helper
import numpy as np

from albert_ixrt.layerwise import LAYER_NORM_OPS, layer_norm_nodes
from albert_ixrt.onnx_graph import load_onnx


def _through_casts(tensor: str, producers: dict) -> str:
    """The tensor ``tensor`` was cast from (following Cast nodes back)."""
    while tensor in producers and producers[tensor].op_type == "Cast":
        tensor = producers[tensor].input[0]
    return tensor


def ffn_branch(onnx_model, layer: int) -> tuple[object, int]:
    """(node, input index) whose input is layer ``layer``'s FFN output, entering its residual sum."""
    norm = layer_norm_nodes(onnx_model)[2 * layer]
    if norm.op_type.startswith("Skip"):
        return norm, 0  # SkipLayerNormalization(input=FFN MatMul, skip=residual, gamma, beta, bias)
    producers = {out: node for node in onnx_model.graph.node for out in node.output}
    add = producers[_through_casts(norm.input[0], producers)]
    assert add.op_type == "Add", f"layer {layer}: LayerNorm input comes from {add.op_type}, not the residual Add"
    for index, operand in enumerate(add.input):
        source = producers.get(_through_casts(operand, producers))
        if source is None or source.op_type not in LAYER_NORM_OPS:  # the residual is the attention LayerNorm
            return add, index
    raise AssertionError(f"layer {layer}: no FFN operand in {list(add.input)}")


def plant_fault(src, dest, layer: int, eps: float = 0.05):
    """Copy of ``src`` with layer ``layer``'s (1-based) FFN output multiplied by 1 + eps."""
    model = load_onnx(src, check=False)
    node, index = ffn_branch(model, layer)
    original = node.input[index]
    scale = f"planted_fault_scale_{layer}"
    scaled = f"planted_fault_ffn_{layer}"
    # CastLike gives the constant the branch's dtype (fp32 or fp16), whatever the stage.
    model.graph.initializer.append(numpy_helper.from_array(np.array(1.0 + eps, dtype=np.float32), scale + "_f32"))
    nodes = [helper.make_node("CastLike", [scale + "_f32", original], [scale], name=scale),
             helper.make_node("Mul", [original, scale], [scaled], name=scaled)]
    node.input[index] = scaled
    position = list(model.graph.node).index(node)
    for offset, new in enumerate(nodes):
        model.graph.node.insert(position + offset, new)
    onnx.save(model, str(dest))
    return dest
