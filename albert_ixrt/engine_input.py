"""Which graph an engine builds from: the one decision, used by run, convert, bench, evaluate,
layerwise and the pytest fixtures.

A floor module: it imports ``errors`` and ``trt_api`` (which imports nothing of export, graph_checks
or the pipeline), so export, graph_checks and the commands import it and never each other for this.

The choice depends on three things: the backend, the precision, and the builder's typing mode:

* a *strongly typed* TensorRT network (TensorRT 11; 10.12+ with STRONGLY_TYPED) takes every
  precision from the graph's tensor types, so its fp16 engine needs the fp16 graph ``trt_fp16``;
* weak typing (``BuilderFlag.FP16``: TensorRT 8.x, ixRT by default) and every fp32 engine start
  from the fp32 ``simplified`` graph;
* onnxruntime runs the fused graph (``fp16``: its fp16 twin).
"""
from __future__ import annotations

from pathlib import Path

from .errors import AlbertIxrtError
from .trt_api import STRONG, detect_typing

#: Engine family -> conversion stage (recorded in the manifest as ``engine_inputs``).  The most
#: specific key wins: ``<backend>-<precision>-strongly-typed``, ``<backend>-<precision>``, ``<backend>``.
ENGINE_INPUTS = {"tensorrt": "simplified", "ixrt": "simplified", "tensorrt-fp16-strongly-typed": "trt_fp16",
                 "ixrt-fp16-strongly-typed": "trt_fp16", "onnxruntime": "fused", "onnxruntime-fp16": "fp16"}
#: Backends that build an engine through engine.TrtLibrary.
ENGINE_BACKENDS = ("tensorrt", "ixrt")


def engine_input(backend: str, precision: str, strongly_typed: bool = False) -> str:
    """The stage an engine of ``backend`` / ``precision`` builds from under the given typing."""
    keys = ([f"{backend}-{precision}-strongly-typed"] if strongly_typed else []) + [f"{backend}-{precision}", backend]
    for key in keys:
        if key in ENGINE_INPUTS:
            return ENGINE_INPUTS[key]
    raise KeyError(f"no conversion stage feeds backend {backend!r}")


def engine_typing(backend: str) -> str | None:
    """The typing mode the importable module of ``backend`` is driven with (None: not an engine
    backend, or no module here)."""
    return detect_typing(backend) if backend in ENGINE_BACKENDS else None


def engine_stage(manifest: dict, out, backend: str, precision: str, typing: str | None = None) -> str:
    """The stage ``backend`` / ``precision`` builds from, checked to be in ``manifest``."""
    try:
        stage = engine_input(backend, precision, strongly_typed=typing == STRONG)
    except KeyError:
        raise AlbertIxrtError(f"no ONNX stage is known for backend {backend!r}") from None
    if stage not in manifest.get("stages", {}):
        raise AlbertIxrtError(f"{Path(out) / 'manifest.json'}: no {stage!r} stage, which {backend} {precision} "
                              f"builds from ({typing or 'default'} typing); re-run albert-ixrt convert (with fp16)")
    return stage


def engine_graph(manifest: dict, out, backend: str, precision: str) -> Path:
    """THE function: the ONNX file of a conversion (``manifest`` in folder ``out``) that ``backend``
    runs at ``precision``, with the typing the importable TensorRT / ixRT module is driven with."""
    stage = engine_stage(manifest, out, backend, precision, engine_typing(backend))
    return Path(out) / manifest["stages"][stage]["file"]
