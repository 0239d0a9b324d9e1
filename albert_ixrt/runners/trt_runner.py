"""TensorRT and Iluvatar ixRT: one runner, two names.

ixRT exposes a TensorRT-compatible Python module, so both backends build (or load from cache) an
engine through ``albert_ixrt.engine``, or take a user's prebuilt plan (``TensorRTRunner.from_plan``,
checked by ``albert_ixrt.engine_plan``), and run it with the I/O style ``trt_api.TrtApi`` detected:
tensor addresses where the module has them (``set_input_shape`` + ``set_tensor_address`` for
every I/O tensor, then ``execute_async_v3``; TensorRT >= 8.5, 10, 11), else TensorRT 8-style
bindings (``set_binding_shape`` + a pointer list to ``execute_v2``; older ixRT).  Buffers are torch
CUDA tensors, so host<->device copies are explicit (``to_device``) and the benchmark can time
inference with and without them.

Ordering and binding rules (checked by the test suite's engine stand-in):

* copies, enqueue and synchronisation go to a CUDA stream the runner owns: never torch's legacy
  default stream (handle 0), on which TensorRT adds device synchronisations and warns "Using
  default stream in enqueueV3()"; the owned stream first waits for torch's current stream, so
  tensors made there are ready;
* the synchronous ``execute_v2`` does not wait for any stream: the owned stream is synchronised first;
* every engine output is bound on every call (an execution with an unbound output is undefined), in
  a buffer of the type the engine declares (fp16 outputs are read as fp16, then converted to float32);
* a shape or address the engine refuses (``set_input_shape`` / ``set_tensor_address`` return False)
  is one error naming the tensor.

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

from ..engine import (ENGINE_CACHE_DIR, ENGINE_PRECISIONS, EngineCache, ShapeOutsideProfile, ShapeProfile,
                      TrtLibrary, load_or_build_engine)
from ..errors import AlbertIxrtError, BackendUnavailable
from ..trt_api import IO_BINDINGS, TrtApi
from ..model import INPUT_NAMES, OUTPUT_NAMES
from ..engine_plan import check_plan_covers, engine_tensors, load_plan
from .base import Feed, Runner, check_feed, register


def torch_dtype(np_dtype) -> "torch.dtype":
    """The torch dtype of a numpy dtype (an engine tensor's ``trt.nptype``, the documented mapping)."""
    import torch

    return torch.from_numpy(np.empty(0, dtype=np.dtype(np_dtype))).dtype


@dataclass(frozen=True)
class EngineIO:
    """Names and torch dtypes of an engine's inputs and outputs, read once from the engine
    (``engine_plan.engine_tensors``): output buffers are allocated in the type the engine declares and
    converted to float32 numpy only after the engine has written them."""

    inputs: dict
    outputs: dict
    index: dict          # name -> binding index (the bindings I/O style addresses tensors by it)

    @classmethod
    def from_engine(cls, trt, engine, api: TrtApi) -> "EngineIO":
        tensors = engine_tensors(trt, engine, api)
        return cls({n: torch_dtype(t.dtype) for n, t in tensors.items() if t.is_input},
                   {n: torch_dtype(t.dtype) for n, t in tensors.items() if not t.is_input},
                   {n: t.index for n, t in tensors.items()})

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


class EngineRefused(AlbertIxrtError, RuntimeError):
    """The engine refused a shape or an address the runner set (one line naming the tensor)."""


def refused_shape(name: str, shape, profile: ShapeProfile) -> ShapeOutsideProfile:
    return ShapeOutsideProfile(f"engine refused input shape {list(shape)} for tensor {name!r} (set_input_shape "
                               f"returned False; profile {profile.label()})")


def refused_address(name: str, ptr: int) -> EngineRefused:
    return EngineRefused(f"engine refused the address {ptr:#x} for tensor {name!r} (set_tensor_address returned "
                         "False)")


class OwnedStream:
    """The runner's own CUDA stream (torch.cuda.Stream), or, for an emulated engine on the CPU, a
    host stand-in whose work is done when enqueued.  ``handle`` is what TensorRT's
    ``execute_async_v3`` receives: never 0 (torch's legacy default stream)."""

    def __init__(self, torch, device: str):
        self._torch = torch
        self.cuda = str(device).startswith("cuda")
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None

    @property
    def handle(self) -> int:
        return int(self.stream.cuda_stream) if self.cuda else id(self)

    def wait_for_current(self) -> None:
        """Order this stream after torch's current one (inputs made there are ready first)."""
        if self.cuda:
            self.stream.wait_stream(self._torch.cuda.current_stream(self.stream.device))

    def context(self):
        """``with stream.context():`` puts torch's copies and allocations on this stream."""
        import contextlib

        return self._torch.cuda.stream(self.stream) if self.cuda else contextlib.nullcontext()

    def synchronize(self) -> None:
        if self.cuda:
            self.stream.synchronize()


class AddressBinding:
    """TensorRT >= 8.5 I/O: tensors bound by name and address, enqueued with execute_async_v3."""

    style = "tensor_address"

    def __init__(self, context, io: EngineIO, dims=tuple):
        self.context, self.dims = context, dims

    def set_input(self, name, tensor, profile: ShapeProfile) -> None:
        if not self.context.set_input_shape(name, self.dims(tuple(tensor.shape))):
            raise refused_shape(name, tensor.shape, profile)
        self.set_output(name, tensor)

    def output_shape(self, name) -> tuple:
        return tuple(self.context.get_tensor_shape(name))

    def set_output(self, name, tensor) -> None:
        if not self.context.set_tensor_address(name, tensor.data_ptr()):
            raise refused_address(name, tensor.data_ptr())

    def execute(self, stream: OwnedStream) -> bool:
        return bool(self.context.execute_async_v3(stream.handle))


class IndexBinding:
    """TensorRT 8-style I/O: shapes by binding index, one pointer list to the synchronous
    execute_v2 (which does not wait for torch's stream, so the copies are awaited first)."""

    style = "bindings"

    def __init__(self, context, io: EngineIO, dims=tuple):
        self.context, self.index, self.dims = context, io.index, dims
        self.pointers = [0] * len(io.index)

    def set_input(self, name, tensor, profile: ShapeProfile) -> None:
        if not self.context.set_binding_shape(self.index[name], self.dims(tuple(tensor.shape))):
            raise refused_shape(name, tensor.shape, profile)
        self.pointers[self.index[name]] = tensor.data_ptr()

    def output_shape(self, name) -> tuple:
        return tuple(self.context.get_binding_shape(self.index[name]))

    def set_output(self, name, tensor) -> None:
        self.pointers[self.index[name]] = tensor.data_ptr()

    def execute(self, stream: OwnedStream) -> bool:
        stream.synchronize()  # execute_v2 waits for no stream: the copies must be done
        pointers, self.pointers = list(self.pointers), [0] * len(self.pointers)  # rebound on every call
        return bool(self.context.execute_v2(pointers))


def open_library(flavour: str, plugin_path: str | None, device: str, library: TrtLibrary | None = None,
                 tf32: bool = False) -> tuple[TrtLibrary, str]:
    """(library, device engine buffers live on): the installed ``flavour`` runtime on a CUDA device,
    the test suite's stand-in on the CPU (its engines run onnxruntime), or an injected library."""
    import torch

    if library is not None:  # an injected library (tests, or a caller that loaded TensorRT itself)
        return library, "cpu" if device == "auto" else device
    library = TrtLibrary.load(flavour, plugin_path, tf32=tf32)
    if library.emulated:
        library.device_name = f"CPU ({library.emulated})"
        return library, "cpu"
    device = require_cuda(flavour, device)
    library.device_name = torch.cuda.get_device_name(device)
    return library, device


class TensorRTRunner(Runner):
    """Runs an FP16 (or FP32) engine built from an ONNX file (one profile covers every shape fed), or a
    prebuilt plan (``from_plan``)."""

    def __init__(self, onnx_path: str | os.PathLike, precision: str = "fp16", flavour: str = "tensorrt",
                 profile: ShapeProfile | None = None, cache_dir: str | os.PathLike | None = None,
                 plugin_path: str | None = None, device: str = "auto", library: TrtLibrary | None = None,
                 tf32: bool = False):
        if precision not in ENGINE_PRECISIONS:
            raise BackendUnavailable(flavour, f"precision {precision!r} not supported ({', '.join(ENGINE_PRECISIONS)})")
        library, device = open_library(flavour, plugin_path, device, library, tf32)
        profile = profile or ShapeProfile()
        cache = EngineCache(cache_dir or ENGINE_CACHE_DIR)
        engine, info = load_or_build_engine(library, onnx_path, profile, precision, cache)
        self._attach(flavour, precision, library, device, engine, profile)
        self.onnx_path, self.engine_info, self.plan_info = str(onnx_path), info, None

    @classmethod
    def from_plan(cls, plan: str | os.PathLike, flavour: str = "tensorrt", precision: str | None = None,
                  plugin_path: str | None = None, device: str = "auto",
                  library: TrtLibrary | None = None) -> "TensorRTRunner":
        """A runner of the prebuilt engine plan file ``plan`` (``engine_plan.load_plan``: deserialised by the
        runtime here and checked against the QA interface); its profile is the engine's own, and its
        precision the one the engine's outputs show, else ``precision`` as stated, else "unknown"."""
        library, device = open_library(flavour, plugin_path, device, library)
        engine, info = load_plan(plan, flavour, library=library, precision=precision)
        self = cls.__new__(cls)
        self._attach(flavour, info.precision, library, device, engine, info.profile)
        self.onnx_path, self.engine_info, self.plan_info = None, None, info
        return self

    def _attach(self, flavour: str, precision: str, library: TrtLibrary, device: str, engine,
                profile: ShapeProfile) -> None:
        import torch

        self.name, self.precision, self.profile, self._torch = flavour, precision, profile, torch
        self.lib, self.device, self.engine = library, device, engine
        self.stream = OwnedStream(torch, device)
        self.context = engine.create_execution_context()
        self.io = EngineIO.from_engine(library.trt, engine, library.api)
        self.io.check_names(flavour)
        self.binding = (IndexBinding if library.api.io == IO_BINDINGS else AddressBinding)(
            self.context, self.io, library._dims)
        self._live: list = []  # tensors whose addresses the context holds until the next call

    def check_covers(self, batches, max_seq: int, min_seq: int = 1) -> None:
        """Refuse (one line) an engine whose profile cannot run a session feeding ``batches`` (and any
        smaller last batch) at every length up to ``max_seq`` (``engine_plan.check_plan_covers``)."""
        where = self.plan_info.path if self.plan_info else self.engine_info.plan_path
        check_plan_covers(self.engine, batches, max_seq, api=self.lib.api, plan=where, min_seq=min_seq)

    # -- host <-> device ---------------------------------------------------------------------
    def to_device(self, feed: Feed):
        """Host -> device copies, already in the dtypes the engine takes (TensorRT often wants int32)."""
        check_feed(feed)
        t = self._torch
        with self.stream.context():
            return tuple(t.as_tensor(np.ascontiguousarray(feed[name])).to(self.device, non_blocking=True)
                         .to(self.io.inputs[name]) for name in INPUT_NAMES)

    def infer_tensors(self, tensors, outputs: Sequence[str] = OUTPUT_NAMES):
        """Enqueue one batch on device tensors; returns the device tensors of ``outputs`` (default
        (start, end)) without waiting."""
        batch, seq = tensors[0].shape
        self.profile.check(int(batch), int(seq))
        unknown = [name for name in outputs if name not in self.io.outputs]
        if unknown:
            raise BackendUnavailable(self.name, f"engine has no outputs {unknown}; it has {list(self.io.outputs)}")
        self.stream.wait_for_current()  # tensors made on torch's stream are ready before ours uses them
        live, bound = [], {}
        with self.stream.context():
            for name, tensor in zip(INPUT_NAMES, tensors):
                tensor = tensor.to(self.io.inputs[name]).contiguous()
                self.binding.set_input(name, tensor, self.profile)
                live.append(tensor)
            # Every engine output is bound on every call (an execution with an unbound output is
            # undefined); the ones asked for are returned.
            for name in self.io.outputs:
                bound[name] = self._torch.empty(self.binding.output_shape(name), dtype=self.io.outputs[name],
                                                device=self.device)
                self.binding.set_output(name, bound[name])
        if not self.binding.execute(self.stream):
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

    def synchronize(self) -> None:
        self.stream.synchronize()

    def describe(self) -> dict:
        out = {"backend": self.name, "precision": self.precision, "device": self.lib.device_name,
               "tensorrt": self.lib.label, "io": self.binding.style,
               "io_dtypes": {name: str(dtype).replace("torch.", "")
                             for name, dtype in {**self.io.inputs, **self.io.outputs}.items()},
               "profile": self.profile.as_dict()}
        if self.plan_info is not None:   # a prebuilt plan: what the engine itself says
            info = self.plan_info
            out.update({"engine_source": "prebuilt plan", "engine": str(info.path), "plan_sha256": info.sha256,
                        "plan_tensorrt_version": info.plan_version, "precision_source": info.precision_source,
                        "optimization_profiles": info.profiles})
        else:
            info = self.engine_info
            out.update({"typing": info.key.typing, "graph": info.key.graph, "network_flags": self.lib.api.network_flags,
                        "builder_flags": list(self.lib.builder_flags(self.precision)), "onnx": self.onnx_path,
                        "engine": str(info.plan_path), "engine_source": info.source,
                        "build_seconds": round(info.build_seconds, 2)})
        if self.lib.emulated:  # never a source of perf figures (bench refuses to publish its timings)
            out["emulated"] = self.lib.emulated
        return out

    def close(self) -> None:
        self._live = []
        self.context = None
        self.engine = None


def _factory(flavour: str):
    def make(onnx_path=None, precision: str | None = None, profile: ShapeProfile | None = None, cache_dir=None,
             plugin_path: str | None = None, device: str = "auto", library: TrtLibrary | None = None,
             tf32: bool = False, plan=None, **_ignored) -> TensorRTRunner:
        if plan is not None:   # a prebuilt plan: precision None = read from the engine
            return TensorRTRunner.from_plan(plan, flavour, precision=precision, plugin_path=plugin_path,
                                            device=device, library=library)
        if onnx_path is None:
            raise BackendUnavailable(flavour, "needs an ONNX file (onnx_path) or a prebuilt plan (plan)")
        return TensorRTRunner(onnx_path, precision=precision or "fp16", flavour=flavour, profile=profile,
                              cache_dir=cache_dir, plugin_path=plugin_path, device=device, library=library, tf32=tf32)
    return make


register("tensorrt")(_factory("tensorrt"))
register("ixrt")(_factory("ixrt"))
