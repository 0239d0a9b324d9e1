"""TensorRT and Iluvatar ixRT: one runner, two names.

ixRT exposes a TensorRT-compatible Python module, so both backends build (or load from cache) an
engine through ``albert_ixrt.engine`` and run it with the I/O style ``trt_api.TrtApi`` detected:
tensor addresses where the module has them (``set_input_shape`` + ``set_tensor_address`` for
every I/O tensor, then ``execute_async_v3`` on the current CUDA stream; TensorRT >= 8.5, 10, 11),
else TensorRT 8-style bindings (``set_binding_shape`` + a pointer list to ``execute_v2``; older
ixRT).  Buffers are torch CUDA tensors, so host<->device copies are explicit
(``to_device``) and the benchmark can time inference with and without them.

Nothing here runs on a CPU-only machine: ``create_runner`` raises ``BackendUnavailable`` with the
reason (no ``tensorrt`` module, one without a usable API, no CUDA device).  The unit tests drive
the same code with fake ``tensorrt`` modules derived from the real bindings' member lists, whose
engines read and write the bound addresses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine import ENGINE_CACHE_DIR, ENGINE_PRECISIONS, EngineCache, ShapeProfile, TrtLibrary, load_or_build_engine
from ..errors import BackendUnavailable
from ..trt_api import IO_BINDINGS, TrtApi
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
    index: dict          # name -> binding index (the bindings I/O style addresses tensors by it)

    @classmethod
    def from_engine(cls, trt, engine, api: TrtApi) -> "EngineIO":
        inputs, outputs, index = {}, {}, {}
        if api.io == IO_BINDINGS:
            for i in range(engine.num_bindings):
                name = engine.get_binding_name(i)
                index[name] = i
                (inputs if engine.binding_is_input(i) else outputs)[name] = torch_dtype(trt, engine.get_binding_dtype(i))
        else:
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                index[name] = i
                dtype = torch_dtype(trt, engine.get_tensor_dtype(name))
                (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs)[name] = dtype
        return cls(inputs, outputs, index)

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


class AddressBinding:
    """TensorRT >= 8.5 I/O: tensors bound by name and address, enqueued with execute_async_v3."""

    style = "tensor_address"

    def __init__(self, context, io: EngineIO):
        self.context = context

    def set_input(self, name, tensor) -> None:
        self.context.set_input_shape(name, tuple(tensor.shape))
        self.context.set_tensor_address(name, tensor.data_ptr())

    def output_shape(self, name) -> tuple:
        return tuple(self.context.get_tensor_shape(name))

    def set_output(self, name, tensor) -> None:
        self.context.set_tensor_address(name, tensor.data_ptr())

    def execute(self, stream: int, synchronize) -> bool:
        return bool(self.context.execute_async_v3(stream))


class IndexBinding:
    """TensorRT 8-style I/O: shapes by binding index, one pointer list to the synchronous
    execute_v2 (which does not wait for torch's stream, so the copies are awaited first)."""

    style = "bindings"

    def __init__(self, context, io: EngineIO):
        self.context, self.index = context, io.index
        self.pointers = [0] * len(io.index)

    def set_input(self, name, tensor) -> None:
        self.context.set_binding_shape(self.index[name], tuple(tensor.shape))
        self.pointers[self.index[name]] = tensor.data_ptr()

    def output_shape(self, name) -> tuple:
        return tuple(self.context.get_binding_shape(self.index[name]))

    def set_output(self, name, tensor) -> None:
        self.pointers[self.index[name]] = tensor.data_ptr()

    def execute(self, stream: int, synchronize) -> bool:
        synchronize()
        return bool(self.context.execute_v2(list(self.pointers)))


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
        self.io = EngineIO.from_engine(library.trt, self.engine, library.api)
        self.io.check_names(flavour)
        self.binding = (IndexBinding if library.api.io == IO_BINDINGS else AddressBinding)(self.context, self.io)
        self._live: list = []  # tensors whose addresses the context holds until the next call

    # -- host <-> device ---------------------------------------------------------------------
    def to_device(self, feed: Feed):
        """Host -> device copies, already in the dtypes the engine takes (TensorRT often wants int32)."""
        check_feed(feed)
        t = self._torch
        return tuple(t.as_tensor(np.ascontiguousarray(feed[name])).to(self.device, non_blocking=True)
                     .to(self.io.inputs[name]) for name in INPUT_NAMES)

    def infer_tensors(self, tensors, outputs: Sequence[str] = OUTPUT_NAMES):
        """Enqueue one batch on device tensors; returns the device tensors of ``outputs`` (default
        (start, end)) without waiting."""
        batch, seq = tensors[0].shape
        self.profile.check(int(batch), int(seq))
        live = []
        for name, tensor in zip(INPUT_NAMES, tensors):
            tensor = tensor.to(self.io.inputs[name]).contiguous()
            self.binding.set_input(name, tensor)
            live.append(tensor)
        unknown = [name for name in outputs if name not in self.io.outputs]
        if unknown:
            raise BackendUnavailable(self.name, f"engine has no outputs {unknown}; it has {list(self.io.outputs)}")
        # Every engine output is bound (an execution with an unbound output is undefined), the
        # ones asked for are returned.
        bound = {}
        for name in dict.fromkeys([*outputs, *self.io.outputs]):
            bound[name] = self._torch.empty(self.binding.output_shape(name), dtype=self.io.outputs[name],
                                            device=self.device)
            self.binding.set_output(name, bound[name])
        if not self.binding.execute(self._stream_handle(), self.synchronize):
            raise RuntimeError(f"{self.name}: engine execution ({self.binding.style}) failed for batch {batch} x "
                               f"seq {seq}")
        self._live = live + list(bound.values())
        return tuple(bound[name] for name in outputs)

    def infer(self, feed: Feed) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.infer_outputs(feed, OUTPUT_NAMES).values()
        return start, end

    def infer_outputs(self, feed: Feed, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Host arrays (fp32) of the engine outputs ``names`` (default: every output; layerwise reads
        the hidden states marked as extra outputs)."""
        names = tuple(names or self.io.outputs)
        tensors = self.infer_tensors(self.to_device(feed), names)
        self.synchronize()
        return {name: tensor.float().cpu().numpy() for name, tensor in zip(names, tensors)}

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
                "tensorrt": self.lib.version, "typing": info.key.typing, "graph": info.key.graph,
                "io": self.binding.style, "network_flags": self.lib.api.network_flags,
                "profile": self.profile.as_dict(), "onnx": self.onnx_path,
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
