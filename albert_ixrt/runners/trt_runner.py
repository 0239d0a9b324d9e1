"""TensorRT and Iluvatar ixRT: one runner, two names.

ixRT exposes a TensorRT-compatible Python module, so both backends build (or load from cache) an
engine through ``albert_ixrt.engine`` and run it with the TensorRT >= 10 tensor-address API:
``set_input_shape`` + ``set_tensor_address`` for every I/O tensor, then ``execute_async_v3`` on
the current CUDA stream.  Buffers are torch CUDA tensors, so host<->device copies are explicit
(``to_device``) and the benchmark can time inference with and without them.

Nothing here runs on a CPU-only machine: ``create_runner`` raises ``BackendUnavailable`` with the
reason (no ``tensorrt`` module, TensorRT older than 10, no CUDA device).  The unit tests drive
the same code with a fake ``tensorrt`` module whose engine reads and writes the bound addresses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..engine import ENGINE_CACHE_DIR, ENGINE_PRECISIONS, EngineCache, ShapeProfile, TrtLibrary, load_or_build_engine
from ..errors import BackendUnavailable
from ..model import INPUT_NAMES, OUTPUT_NAMES
from .base import Feed, Runner, check_feed, register


def torch_dtype(trt, trt_dtype):
    """The torch dtype of a TensorRT tensor type (through ``trt.nptype``, the documented mapping)."""
    import torch

    np_dtype = np.dtype(trt.nptype(trt_dtype))
    return torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype


@dataclass(frozen=True)
class EngineIO:
    """Names and torch dtypes of an engine's inputs and outputs, read once from the engine."""

    inputs: dict
    outputs: dict

    @classmethod
    def from_engine(cls, trt, engine) -> "EngineIO":
        inputs, outputs = {}, {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = torch_dtype(trt, engine.get_tensor_dtype(name))
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs)[name] = dtype
        return cls(inputs, outputs)

    def check_names(self, flavour: str) -> None:
        missing = [n for n in (*INPUT_NAMES, *OUTPUT_NAMES) if n not in self.inputs and n not in self.outputs]
        if missing:
            raise BackendUnavailable(flavour, f"engine lacks tensors {missing}; has inputs {list(self.inputs)}, "
                                              f"outputs {list(self.outputs)}")


def require_cuda(flavour: str, device: str) -> str:
    """The CUDA device engine buffers live on ("auto" -> "cuda"); engines never run on the CPU."""
    import torch

    if device != "auto" and not str(device).startswith("cuda"):
        raise BackendUnavailable(flavour, f"device {device!r} requested, but engines run on a CUDA device only")
    if not torch.cuda.is_available():
        raise BackendUnavailable(flavour, "no CUDA device visible to torch (engine buffers are torch CUDA tensors)")
    return "cuda" if device == "auto" else device


class TensorRTRunner(Runner):
    """Runs an FP16 (or FP32) engine built from an ONNX file; one profile covers every shape fed."""

    def __init__(self, onnx_path: str | os.PathLike, precision: str = "fp16", flavour: str = "tensorrt",
                 profile: ShapeProfile | None = None, cache_dir: str | os.PathLike | None = None,
                 plugin_path: str | None = None, device: str = "auto", library: TrtLibrary | None = None):
        import torch

        if precision not in ENGINE_PRECISIONS:
            raise BackendUnavailable(flavour, f"precision {precision!r} not supported ({', '.join(ENGINE_PRECISIONS)})")
        self.name = flavour
        self.precision = precision
        self.onnx_path = str(onnx_path)
        self.profile = profile or ShapeProfile()
        self._torch = torch
        if library is None:
            library = TrtLibrary.load(flavour, plugin_path)
            self.device = require_cuda(flavour, device)
            library.device_name = torch.cuda.get_device_name(self.device)
        else:  # an injected library (tests, or a caller that loaded TensorRT itself)
            self.device = "cpu" if device == "auto" else device
        self.lib = library
        cache = EngineCache(cache_dir or ENGINE_CACHE_DIR)
        self.engine, self.engine_info = load_or_build_engine(library, onnx_path, self.profile, precision, cache)
        self.context = self.engine.create_execution_context()
        self.io = EngineIO.from_engine(library.trt, self.engine)
        self.io.check_names(flavour)
        self._live: list = []  # tensors whose addresses the context holds until the next call

    # -- host <-> device ---------------------------------------------------------------------
    def to_device(self, feed: Feed):
        """Host -> device copies, already in the dtypes the engine takes (TensorRT often wants int32)."""
        check_feed(feed)
        t = self._torch
        return tuple(t.as_tensor(np.ascontiguousarray(feed[name])).to(self.device, non_blocking=True)
                     .to(self.io.inputs[name]) for name in INPUT_NAMES)

    def infer_tensors(self, tensors):
        """Enqueue one batch on device tensors; returns device tensors (start, end) without waiting."""
        batch, seq = tensors[0].shape
        self.profile.check(int(batch), int(seq))
        live = []
        for name, tensor in zip(INPUT_NAMES, tensors):
            tensor = tensor.to(self.io.inputs[name]).contiguous()
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
            live.append(tensor)
        outputs = []
        for name in OUTPUT_NAMES:
            shape = tuple(self.context.get_tensor_shape(name))
            out = self._torch.empty(shape, dtype=self.io.outputs[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        if not self.context.execute_async_v3(self._stream_handle()):
            raise RuntimeError(f"{self.name}: execute_async_v3 failed for batch {batch} x seq {seq}")
        self._live = live + outputs
        return outputs[0], outputs[1]

    def infer(self, feed: Feed) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.infer_tensors(self.to_device(feed))
        self.synchronize()
        return start.float().cpu().numpy(), end.float().cpu().numpy()

    def _stream_handle(self) -> int:
        if str(self.device).startswith("cuda"):
            return self._torch.cuda.current_stream(self.device).cuda_stream
        return 0

    def synchronize(self) -> None:
        if str(self.device).startswith("cuda"):
            self._torch.cuda.current_stream(self.device).synchronize()

    def describe(self) -> dict:
        info = self.engine_info
        return {"backend": self.name, "precision": self.precision, "device": self.lib.device_name,
                "tensorrt": self.lib.version, "profile": self.profile.as_dict(), "onnx": self.onnx_path,
                "engine": str(info.plan_path), "engine_source": info.source,
                "build_seconds": round(info.build_seconds, 2)}

    def close(self) -> None:
        self._live = []
        self.context = None
        self.engine = None


def _factory(flavour: str):
    def make(onnx_path=None, precision: str = "fp16", profile: ShapeProfile | None = None, cache_dir=None,
             plugin_path: str | None = None, device: str = "auto", library: TrtLibrary | None = None,
             **_ignored) -> TensorRTRunner:
        if onnx_path is None:
            raise BackendUnavailable(flavour, "needs an ONNX file (onnx_path)")
        return TensorRTRunner(onnx_path, precision=precision, flavour=flavour, profile=profile, cache_dir=cache_dir,
                              plugin_path=plugin_path, device=device, library=library)
    return make


register("tensorrt")(_factory("tensorrt"))
register("ixrt")(_factory("ixrt"))
