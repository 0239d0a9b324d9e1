"""ONNX graph helpers every floor may use: load with one clear error, describe (op histogram,
fused-op counts, initializer bytes), and re-share identical initializers.

The lowest ONNX floor: it imports nothing of the package but ``errors``, so ``export`` (the
conversion stages) and ``graph_checks`` (the static checks) both build on it without a circle.
"""
from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable
from pathlib import Path

from .errors import AssetMissingError, InputFileError

#: Custom-domain ops onnxruntime's fuser may create (reported as "fused ops" in the manifest).
ORT_CONTRIB_DOMAIN = "com.microsoft"


# ---------------------------------------------------------------------------------------------
# Loading and describing ONNX files
# ---------------------------------------------------------------------------------------------
def load_onnx(path, *, check: bool = True):
    """Load an ONNX file; a missing, empty, truncated or corrupt file becomes one clear error."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise AssetMissingError(f"ONNX model not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(path, "empty file (0 bytes): not an ONNX model (an interrupted write?)")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, OSError) as exc:
        raise InputFileError(path, f"not a readable ONNX model ({size} bytes; truncated or corrupt): "
                                   f"{str(exc).splitlines()[0]}") from None
    if check:
        check_loadable(model, path)
    return model


def check_loadable(model, path) -> None:
    """The light structural check (full checks live in graph_checks): a protobuf that happened to
    parse may still be a fragment without a graph, opset or IR version."""
    import onnx

    if not model.graph.node:
        raise InputFileError(path, "holds no graph nodes: truncated, or not an ONNX model")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise InputFileError(path, f"fails the ONNX checker (truncated or corrupt?): "
                                   f"{str(exc).strip().splitlines()[0]}") from None


def op_histogram(model) -> dict[str, int]:
    """Node count per op type (custom-domain ops as ``domain:Op``), most frequent first."""
    counts = collections.Counter(op_key(node) for node in model.graph.node)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def op_key(node) -> str:
    return f"{node.domain}:{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


def fused_op_counts(model) -> dict[str, int]:
    """Counts of onnxruntime contrib (fused) ops, by op type."""
    counts = collections.Counter(n.op_type for n in model.graph.node if n.domain == ORT_CONTRIB_DOMAIN)
    return dict(sorted(counts.items()))


def initializer_bytes(model) -> int:
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def graph_summary(model) -> dict:
    return {"node_count": len(model.graph.node), "op_histogram": op_histogram(model),
            "fused_ops": fused_op_counts(model), "initializers": len(model.graph.initializer),
            "initializer_bytes": initializer_bytes(model)}


# ---------------------------------------------------------------------------------------------
# Building models by hand
# ---------------------------------------------------------------------------------------------
def make_model(graph, opset: int, *, extra_opsets: Iterable[tuple[str, int]] = ()):
    """``onnx.helper.make_model`` with the opsets named and the IR version pinned to the lowest one that
    carries them (``onnx.helper.find_min_ir_version_for``, from onnx's VERSION_TABLE).

    Left alone, make_model writes the installed onnx's newest IR version (14 from onnx 1.23 on), which an
    older onnxruntime or TensorRT parser refuses ("Unsupported model IR version") even though the graph
    uses nothing newer than its opset.  onnxruntime publishes no constant for the newest IR it reads, so
    the IR of the opset used is the choice every reader of that opset accepts."""
    from onnx import helper

    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=imports,
                             ir_version=helper.find_min_ir_version_for(imports, ignore_unknown=True))


# ---------------------------------------------------------------------------------------------
# Shared weights
# ---------------------------------------------------------------------------------------------
def tensor_fingerprint(tensor) -> str:
    """Content hash of an initializer (dtype, shape and values; not its name)."""
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor)
    h = hashlib.sha256(f"{tensor.data_type}:{list(tensor.dims)}:".encode())
    h.update(array.tobytes())
    return h.hexdigest()


def dedupe_initializers(model) -> int:
    """Make identical initializers one tensor again; return how many copies were removed."""
    first_by_fingerprint: dict[str, str] = {}
    rename: dict[str, str] = {}
    kept = []
    for tensor in model.graph.initializer:
        fp = tensor_fingerprint(tensor)
        if fp in first_by_fingerprint:
            rename[tensor.name] = first_by_fingerprint[fp]
        else:
            first_by_fingerprint[fp] = tensor.name
            kept.append(tensor)
    if not rename:
        return 0
    for node in all_nodes(model.graph):
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    graph_inputs = [vi for vi in model.graph.input if vi.name not in rename]
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    return len(rename)


def all_nodes(graph):
    """Nodes of ``graph`` and of its subgraphs (If/Loop bodies), which may use outer initializers."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from all_nodes(attr.g)
            for sub in attr.graphs:
                yield from all_nodes(sub)


# ---------------------------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------------------------
#: ONNX float element types, by name.
FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def fp16_share(model) -> dict:
    """How much of a graph is fp16: ``weights`` = share of float initializer elements stored as
    fp16; ``nodes`` = share of the nodes computing on floats (a float output, Casts not counted)
    whose output is fp16; ``fp32_ops`` = op histogram of the float nodes left in fp32."""
    import onnx
    from onnx import numpy_helper

    elements = {"float16": 0, "other": 0}
    for tensor in model.graph.initializer:
        if tensor.data_type in FLOAT_TYPES:
            n = int(numpy_helper.to_array(tensor).size)
            elements["float16" if tensor.data_type == 10 else "other"] += n
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    fp16_nodes, fp32_ops = 0, collections.Counter()
    for node in model.graph.node:
        if node.op_type == "Cast" or not node.output:
            continue
        out_type = types.get(node.output[0])
        if node.op_type == "Constant":
            out_type = node.attribute[0].t.data_type if node.attribute else None
        if out_type == 10:
            fp16_nodes += 1
        elif out_type in FLOAT_TYPES:
            fp32_ops[op_key(node)] += 1
    float_nodes = fp16_nodes + sum(fp32_ops.values())
    weights = sum(elements.values())
    return {"weights": round(elements["float16"] / weights, 4) if weights else 0.0,
            "nodes": round(fp16_nodes / float_nodes, 4) if float_nodes else 0.0,
            "fp32_ops": dict(sorted(fp32_ops.items(), key=lambda kv: (-kv[1], kv[0])))}


def drop_duplicate_nodes(model) -> int:
    """Remove nodes identical to an earlier one (same op, inputs, outputs and attributes), and
    repeated value_info entries; return how many nodes went.

    Why: onnxruntime 1.31's float16 converter adds one ``<x>_cast_to_fp32`` Cast per fp32-kept
    consumer of ``x``, all with the same output name, which breaks SSA form (the ONNX checker and
    TensorRT's parser refuse it); 1.32 adds the Cast once and shares it.  Identical nodes compute
    the same tensor, so keeping the first gives exactly 1.32's graph."""
    seen, kept = set(), []
    for node in model.graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            kept.append(node)
    removed = len(model.graph.node) - len(kept)
    if removed:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    names, infos = set(), []
    for vi in model.graph.value_info:
        if vi.name not in names:
            names.add(vi.name)
            infos.append(vi)
    if len(infos) != len(model.graph.value_info):
        del model.graph.value_info[:]
        model.graph.value_info.extend(infos)
    return removed


def nonfinite_constants(model) -> list[str]:
    """Names of the initializers and Constant nodes holding an inf or NaN (e.g. a -inf attention
    mask: a row whose mask is all zero then gives NaN logits)."""
    import numpy as np
    from onnx import numpy_helper

    tensors = [(t.name, t) for t in model.graph.initializer]
    tensors += [(node.name or node.output[0], attr.t) for node in all_nodes(model.graph)
                if node.op_type == "Constant" for attr in node.attribute if attr.name == "value"]
    bad = []
    for name, tensor in tensors:
        if tensor.data_type in FLOAT_TYPES:
            array = numpy_helper.to_array(tensor)
            if not np.isfinite(array.astype(np.float64)).all():
                bad.append(name)
    return bad
