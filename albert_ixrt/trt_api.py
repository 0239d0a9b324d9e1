"""Which TensorRT API generation is loaded, decided once, by capability.

Three generations share one code path (engine.py builds, runners/trt_runner.py runs):

=================  ===============================  ============================  ==================
generation         typing (where precision comes    network creation flags        I/O binding
                   from)                                                          
=================  ===============================  ============================  ==================
TensorRT 11.x      strong: the ONNX graph's types   STRONGLY_TYPED (accepted,     tensor addresses +
                   (BuilderFlag.FP16 is gone)       ignored: every net is)        execute_async_v3
TensorRT 10.x      strong where STRONGLY_TYPED      1 << STRONGLY_TYPED           tensor addresses
                   exists (weak flags deprecated)
TensorRT 8-style   weak: BuilderFlag.FP16 lets the  1 << EXPLICIT_BATCH           tensor addresses
(TRT 8.x)          builder pick fp16 kernels                                      where present, else
                                                                                  bindings + execute_v2
ixRT (any)         weak by default, even where      1 << EXPLICIT_BATCH (where    as TensorRT 8
                   STRONGLY_TYPED exists            the enum has it)
=================  ===============================  ============================  ==================

ixRT is weak by default because Iluvatar's own ``ixrtexec`` always creates its network with
``1 << EXPLICIT_BATCH`` and uses ``BuilderFlag.FP16`` unless ``--strongly_typed`` is asked, and documents
weak typing as ixRT's default and fastest mode (the ByteMLPerf reference row is weak FP16).

``TrtApi.detect(trt, flavour)`` reads only ``hasattr``/``getattr`` of the imported module, never its
version number; the builder and the runner ask the object and never branch on versions.

``USED_API`` names every TensorRT attribute the engine and runner code touches, with the
capability that guards it (None: every supported generation has it).  The conformance tests
check that list against the real 8.6 / 10.13 / 11.4 bindings and that the code names nothing
outside it (tests/unit/test_trt_api.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .config import FP16_GRAPH_MIN_SHARE
from .errors import AlbertIxrtError, InputFileError

STRONG, WEAK = "strong", "weak"
IO_TENSOR_ADDRESS, IO_BINDINGS = "tensor_address", "bindings"
#: The conversion stage a strongly typed fp16 engine is built from (export.py writes it), and the
#: one every other TensorRT / ixRT engine starts from.
STRONG_FP16_STAGE, STANDARD_STAGE = "trt_fp16", "simplified"
#: The Python module names each flavour's library is imported under, in the order tried: ixRT's
#: open-source tree installs ``ixrt``, older ixRT SDKs a TensorRT-compatible ``tensorrt``.
MODULE_NAMES = {"tensorrt": ("tensorrt",), "ixrt": ("ixrt", "tensorrt")}
#: Environment variable naming ixRT's plugin library, and the library's (soname) name.
IXRT_PLUGIN_ENV = "IXRT_PLUGIN_PATH"
IXRT_PLUGIN_DEFAULT = "libixrt_plugin.so"

#: Every TensorRT attribute named in engine.py, plan.py, runners/trt_runner.py and graph_checks.py ->
#: the ``TrtApi`` capability under which the code touches it (None: always touched, so every
#: supported generation must have it).
USED_API: dict[str, str | None] = {
    "Logger": None, "Logger.WARNING": None,
    "init_libnvinfer_plugins": "has_init_plugins",
    "nptype": None,
    # builder
    "Builder": None, "Builder.create_network": None, "Builder.create_builder_config": None,
    "Builder.create_optimization_profile": None, "Builder.build_serialized_network": None,
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": "uses_strongly_typed_flag",
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": "uses_explicit_batch_flag",
    "BuilderFlag.FP16": "uses_fp16_flag",
    "IBuilderConfig.set_flag": "uses_fp16_flag",
    "BuilderFlag.TF32": "has_tf32_flag", "IBuilderConfig.clear_flag": "has_tf32_flag",
    "IBuilderConfig.get_flag": "has_tf32_flag",
    "IBuilderConfig.set_memory_pool_limit": "has_memory_pool", "MemoryPoolType.WORKSPACE": "has_memory_pool",
    "Dims": "has_dims",
    "IBuilderConfig.add_optimization_profile": None, "IOptimizationProfile.set_shape": None,
    "OnnxParser": None, "OnnxParser.parse_from_file": None, "OnnxParser.num_errors": None,
    "OnnxParser.get_error": None, "OnnxParser.supports_operator": "has_supports_operator",
    "Runtime": None, "Runtime.deserialize_cuda_engine": None,
    "ICudaEngine.create_execution_context": None,
    "ICudaEngine.num_optimization_profiles": None,
    "DataType": None,
    # I/O by tensor address (TensorRT >= 8.5)
    "ICudaEngine.num_io_tensors": "uses_tensor_addresses", "ICudaEngine.get_tensor_name": "uses_tensor_addresses",
    "ICudaEngine.get_tensor_mode": "uses_tensor_addresses", "ICudaEngine.get_tensor_dtype": "uses_tensor_addresses",
    "ICudaEngine.get_tensor_shape": "uses_tensor_addresses",
    "ICudaEngine.get_tensor_profile_shape": "uses_tensor_addresses",
    "TensorIOMode.INPUT": "uses_tensor_addresses",
    "IExecutionContext.set_input_shape": "uses_tensor_addresses",
    "IExecutionContext.set_tensor_address": "uses_tensor_addresses",
    "IExecutionContext.get_tensor_shape": "uses_tensor_addresses",
    "IExecutionContext.execute_async_v3": "uses_tensor_addresses",
    # I/O by binding index (TensorRT 8-style, removed in 10)
    "ICudaEngine.num_bindings": "uses_bindings", "ICudaEngine.get_binding_name": "uses_bindings",
    "ICudaEngine.binding_is_input": "uses_bindings", "ICudaEngine.get_binding_dtype": "uses_bindings",
    "ICudaEngine.get_binding_shape": "uses_bindings", "ICudaEngine.get_profile_shape": "uses_bindings",
    "IExecutionContext.set_binding_shape": "uses_bindings", "IExecutionContext.get_binding_shape": "uses_bindings",
    "IExecutionContext.execute_v2": "uses_bindings",
}

#: Removed in TensorRT 11 (weak typing and implicit-batch era); the code must never call these
#: unguarded.  Listed so the tests can show where each went.
REMOVED_IN_11 = ("BuilderFlag.FP16", "BuilderFlag.INT8", "BuilderFlag.BF16", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS",
                 "NetworkDefinitionCreationFlag.EXPLICIT_BATCH", "Builder.platform_has_fast_fp16",
                 "ILayer.precision", "ICudaEngine.device_memory_size")


class PrecisionMismatch(AlbertIxrtError, ValueError):
    """A strongly typed build would give an engine of another precision than the one asked for."""


def _has(obj, dotted: str) -> bool:
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


@dataclass(frozen=True)
class TrtApi:
    """What the loaded ``tensorrt`` module can do, and so how this project drives it."""

    typing: str                   # STRONG | WEAK
    network_flags: int            # for Builder.create_network
    io: str | None                # IO_TENSOR_ADDRESS | IO_BINDINGS | None (cannot run engines)
    has_fp16_flag: bool
    has_strongly_typed_flag: bool
    has_explicit_batch_flag: bool
    has_init_plugins: bool
    has_supports_operator: bool
    has_serialized_build: bool
    flavour: str = "tensorrt"
    has_tf32_flag: bool = False
    has_memory_pool: bool = True
    has_dims: bool = False

    @classmethod
    def detect(cls, trt, flavour: str = "tensorrt") -> "TrtApi":
        flags_enum = getattr(trt, "NetworkDefinitionCreationFlag", None)
        strongly = getattr(flags_enum, "STRONGLY_TYPED", None)
        explicit = getattr(flags_enum, "EXPLICIT_BATCH", None)
        fp16 = _has(trt, "BuilderFlag.FP16")
        # 11.x has no weak-typing flags at all; 10.12+ offers STRONGLY_TYPED and deprecates them.
        # ixRT: weak wherever it has the FP16 flag (its own default; see the module docstring).
        if flavour == "ixrt":
            typing = WEAK if fp16 else STRONG
        else:
            typing = STRONG if (strongly is not None or not fp16) else WEAK
        flags = 0
        if typing == STRONG and strongly is not None:
            flags |= 1 << int(strongly)
        if typing == WEAK and explicit is not None:
            flags |= 1 << int(explicit)
        if all(_has(trt, f"IExecutionContext.{m}") for m in ("set_tensor_address", "set_input_shape",
                                                              "execute_async_v3")) \
                and _has(trt, "ICudaEngine.num_io_tensors"):
            io = IO_TENSOR_ADDRESS
        elif _has(trt, "IExecutionContext.execute_v2") and _has(trt, "ICudaEngine.num_bindings"):
            io = IO_BINDINGS
        else:
            io = None
        return cls(typing=typing, network_flags=flags, io=io, has_fp16_flag=fp16,
                   has_strongly_typed_flag=strongly is not None, has_explicit_batch_flag=explicit is not None,
                   has_init_plugins=hasattr(trt, "init_libnvinfer_plugins"),
                   has_supports_operator=_has(trt, "OnnxParser.supports_operator"),
                   has_serialized_build=_has(trt, "Builder.build_serialized_network"), flavour=flavour,
                   has_tf32_flag=_has(trt, "BuilderFlag.TF32") and _has(trt, "IBuilderConfig.clear_flag"),
                   has_memory_pool=_has(trt, "IBuilderConfig.set_memory_pool_limit")
                   and _has(trt, "MemoryPoolType.WORKSPACE"),
                   has_dims=hasattr(trt, "Dims"))

    # -- what the code paths ask ------------------------------------------------------------
    @property
    def uses_fp16_flag(self) -> bool:
        return self.typing == WEAK

    @property
    def uses_strongly_typed_flag(self) -> bool:
        return self.typing == STRONG and self.has_strongly_typed_flag

    @property
    def uses_explicit_batch_flag(self) -> bool:
        return self.typing == WEAK and self.has_explicit_batch_flag

    @property
    def uses_tensor_addresses(self) -> bool:
        return self.io == IO_TENSOR_ADDRESS

    @property
    def uses_bindings(self) -> bool:
        return self.io == IO_BINDINGS

    def unavailable_reason(self) -> str | None:
        """Why this module cannot build and run engines here, or None."""
        if not self.has_serialized_build:
            return "its Builder has no build_serialized_network (TensorRT >= 8 API needed)"
        if self.io is None:
            return ("its execution context offers neither tensor addresses (execute_async_v3) nor bindings "
                    "(execute_v2)")
        if self.typing == WEAK and not self.has_fp16_flag:
            return "it has neither BuilderFlag.FP16 nor strongly typed networks"
        return None

    @property
    def generation(self) -> int:
        """The TensorRT generation whose documented limits apply (e.g. the parser's opset ceiling):
        11 without weak typing, 10 with STRONGLY_TYPED beside it, else 8 (TensorRT 8 / ixRT style).
        By capability, since ixRT's module carries ixRT's own version number."""
        if not self.has_fp16_flag:
            return 11
        return 10 if self.has_strongly_typed_flag else 8

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# The graph's own precision (what a strongly typed build gives)
# --------------------------------------------------------------------------------------------
#: ONNX TensorProto data types counted as float weights.
_FP16_TYPES = {10: "float16", 16: "bfloat16"}
_FP32_TYPES = {1: "float32", 11: "float64"}


def graph_float_share(onnx_path) -> dict:
    """Float constant elements (initializers, Constant nodes and ConstantOfShape fill values) by
    precision, and the fp16 share.  The fill values count so that a graph without float weights (a
    known-answer lookup table: int64 tables, logits made by ConstantOfShape) still shows its type; in
    a real model they are a handful of elements beside millions of weights."""
    import onnx

    path = Path(onnx_path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 (protobuf raises several types)
        raise InputFileError(path, f"not a readable ONNX model ({type(exc).__name__})") from None
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node if n.op_type in ("Constant", "ConstantOfShape")
                for a in n.attribute if a.name == "value"]
    fp16 = fp32 = 0
    for t in tensors:
        n = 1
        for d in t.dims:
            n *= d
        if t.data_type in _FP16_TYPES:
            fp16 += n
        elif t.data_type in _FP32_TYPES:
            fp32 += n
    total = fp16 + fp32
    return {"fp16_elements": fp16, "fp32_elements": fp32, "fp16_share": round(fp16 / total, 6) if total else 0.0}


def graph_precision(onnx_path) -> str:
    """"fp16" when at least FP16_GRAPH_MIN_SHARE of the float weights are 16-bit, "fp32" when none
    are, else "mixed"."""
    share = graph_float_share(onnx_path)["fp16_share"]
    return "fp16" if share >= FP16_GRAPH_MIN_SHARE else "fp32" if share == 0 else "mixed"


def check_engine_precision(api: TrtApi, onnx_path, precision: str, version: str = "") -> None:
    """Refuse a strongly typed build whose engine would not be ``precision`` (one clear line).
    Weak typing takes the precision from the builder flag, so any fp32 graph is fine there."""
    if api.typing != STRONG:
        return
    got = graph_precision(onnx_path)
    if got != precision:
        share = graph_float_share(onnx_path)["fp16_share"]
        need = (f"the {STRONG_FP16_STAGE!r} stage (model.sim.fp16.onnx)" if precision == "fp16"
                else f"the {STANDARD_STAGE!r} stage (model.sim.onnx)")
        raise PrecisionMismatch(
            f"{onnx_path}: TensorRT {version or ''} builds strongly typed networks (precision comes from the "
            f"graph), and this graph is {got} ({share:.0%} of float weights fp16), so an {precision} engine "
            f"cannot be built from it; use {need}".replace("TensorRT  ", "TensorRT "))


def import_module(flavour: str):
    """(module, the name it was imported under) for ``flavour`` (``MODULE_NAMES``), or ImportError
    naming every name tried."""
    import importlib

    errors = []
    for name in MODULE_NAMES.get(flavour, ("tensorrt",)):
        try:
            return importlib.import_module(name), name
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise ImportError("; ".join(errors))


def detect_typing(flavour: str) -> str | None:
    """The typing mode the importable module of ``flavour`` is driven with, or None when there is
    none (the runner then reports the backend unavailable with its reason)."""
    try:
        trt, _ = import_module(flavour)
    except ImportError:
        return None
    return TrtApi.detect(trt, flavour).typing


def emulation_label(trt) -> str | None:
    """"emulated TensorRT <version> (onnxruntime)" for the test suite's stand-in module (it says so
    in ``__emulated__``), None for a real TensorRT / ixRT.  Engines of a stand-in run on the CPU and
    their timings are never published."""
    label = getattr(trt, "__emulated__", None)
    return str(label) if label else None


def plugin_candidates(option: str | None, trt_module_file: str | None, env: dict) -> list[str]:
    """ixRT's plugin library, in the order tried: --plugin, the library beside the imported module
    (``<dirname(module.__file__)>/lib/libixrt_plugin.so``, where ixRT installs it),
    $IXRT_PLUGIN_PATH, the bare soname (the loader's search path)."""
    out = [option] if option else []
    if trt_module_file:
        beside = Path(trt_module_file).resolve().parent / "lib" / IXRT_PLUGIN_DEFAULT
        if beside.is_file():
            out.append(str(beside))
    if env.get(IXRT_PLUGIN_ENV):
        out.append(env[IXRT_PLUGIN_ENV])
    out.append(IXRT_PLUGIN_DEFAULT)
    return out
