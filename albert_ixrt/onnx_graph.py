"""ONNX graph helpers every floor may use: load with one clear error, describe (op histogram,
fused-op counts, initializer bytes), and re-share identical initializers.

The lowest ONNX floor: it imports nothing of the package but ``errors``, so ``export`` (the
conversion stages) and ``graph_checks`` (the static checks) both build on it without a circle.
"""
from __future__ import annotations

import collections
import hashlib
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
