"""The unit tests' ``tensorrt`` modules: the stand-in of tests/support/trt_standin.py (the real bindings'
names, TensorRT's documented behaviour, engines that run the model with onnxruntime).  The old
hand-written compute (``ids + 0.5 * token_type``) is gone: every engine here runs its ONNX graph."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from albert_ixrt.model import INPUT_NAMES
from albert_ixrt.onnx_graph import make_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from trt_standin import (CLI_GENERATIONS, DEFAULT_STREAM_WARNING, GENERATIONS, MAGIC, State,  # noqa: E402,F401
                         make_standin, member_lists, onnx_weight_precision, plan_bytes, read_plan)

#: The real member lists as they are (test_trt_api's conformance labels).
LABELS = ("trt8", "trt10", "trt11")


def make_fake_trt(label: str = "trt10", remove: dict | None = None, **hooks):
    """A stand-in ``tensorrt`` module of ``label`` (a GENERATIONS key); ``hooks`` go to ``State``."""
    return make_standin(label, remove, **hooks)


#: The tiny QA graph: vocabulary, width.
VOCAB, WIDTH = 64, 8


def qa_weights(dtype=np.float32):
    rng = np.random.default_rng(7)
    return {"emb": rng.normal(size=(VOCAB, WIDTH)).astype(dtype), "typ": rng.normal(size=(2, WIDTH)).astype(dtype),
            "head": rng.normal(size=(WIDTH, 2)).astype(dtype)}


def qa_reference(feed) -> tuple[np.ndarray, np.ndarray]:
    """What the tiny QA graph computes (numpy, float64): start/end = (emb[ids] + typ[types]) @ head + mask."""
    w = {k: v.astype(np.float64) for k, v in qa_weights().items()}
    h = w["emb"][feed["input_ids"]] + w["typ"][feed["token_type_ids"]]
    y = h @ w["head"] + feed["attention_mask"][..., None]
    return y[..., 0], y[..., 1]


def qa_onnx(path, dtype, half_outputs: bool = False, rename: dict | None = None):
    """A real (tiny) ONNX QA graph with the model's I/O names, whose weights are ``dtype`` (what a
    strongly typed build reads): start/end = (emb[ids] + typ[types]) @ head + mask, fp32 outputs
    (fp16 with ``half_outputs``: a strongly typed fp16 graph that ends in fp16); ``rename`` maps I/O
    names to others (a graph that is not the QA interface)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    out_elem = TensorProto.FLOAT16 if half_outputs else TensorProto.FLOAT
    inits = [numpy_helper.from_array(v, k) for k, v in qa_weights(dtype).items()]
    inits += [numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "split"),
              numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2")]
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
             helper.make_node("Gather", ["typ", "token_type_ids"], ["t"]),
             helper.make_node("Add", ["e", "t"], ["h"]),
             helper.make_node("MatMul", ["h", "head"], ["y"]),
             helper.make_node("Cast", ["attention_mask"], ["m"], to=elem),
             helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
             helper.make_node("Add", ["y", "m3"], ["ym"]),
             helper.make_node("Split", ["ym", "split"], ["s3", "e3"], axis=2),
             helper.make_node("Squeeze", ["s3", "axis2"], ["s"]),
             helper.make_node("Squeeze", ["e3", "axis2"], ["en"]),
             helper.make_node("Cast", ["s"], ["start_logits"], to=out_elem),
             helper.make_node("Cast", ["en"], ["end_logits"], to=out_elem)]
    dims = ["batch", "sequence"]
    graph = helper.make_graph(nodes, "qa", [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
                                            for n in INPUT_NAMES],
                              [helper.make_tensor_value_info(n, out_elem, dims)
                               for n in ("start_logits", "end_logits")], inits)
    for old, new in (rename or {}).items():
        for value in (*graph.input, *graph.output):
            value.name = new if value.name == old else value.name
        for node in graph.node:
            node.input[:] = [new if i == old else i for i in node.input]
            node.output[:] = [new if o == old else o for o in node.output]
    onnx.save(make_model(graph, 17), str(path))
    return path
