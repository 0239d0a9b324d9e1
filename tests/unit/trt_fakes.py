"""Fake ``tensorrt`` modules DERIVED from the real bindings' member lists.

``fixtures/tensorrt_api/<label>.json`` holds every class, enum (with its real values) and class
member of a real TensorRT release (written by ``python -m albert_ixrt.trt_bindings --write``,
checked against the live bindings by tests/unit/test_trt_api.py).  ``make_fake_trt(label)``
exposes exactly those names:

* a name the real release lacks raises ``AttributeError`` (as the real module would), so code
  that touches a removed API unguarded fails here as it would on the GPU machine;
* a name the real release has but this fake does not implement raises ``NotImplementedError``
  (never swallowed by ``hasattr``), so a test cannot pass by accident through a missing stub;
* enums are ``IntEnum``s with the real members and values (STRONGLY_TYPED is 1 on 10.13, 0 on 11.4).

The behaviour (what a build gives, what an engine computes) is the small part written by hand,
and follows TensorRT's documented semantics: a strongly typed network (11.x always; 10.x with the
STRONGLY_TYPED flag) takes its precision from the graph's own types, a weakly typed one is fp16
only with BuilderFlag.FP16.  Plans are MAGIC + JSON of what was built.
"""
from __future__ import annotations

import ctypes
import enum
import json
import types

import numpy as np

from albert_ixrt.model import INPUT_NAMES, OUTPUT_NAMES
from albert_ixrt.trt_bindings import load_fixture

MAGIC = b"FAKEPLAN"
#: Generations the flow runs against: the real member lists, plus one documented variant.
LABELS = ("trt8", "trt10", "trt11")
#: TensorRT 8-style bindings-only API (TensorRT <= 8.4 and older ixRT releases): the real 8.6
#: member list minus what TensorRT 8.5 added for I/O by name (the 8.5 release notes' "named
#: tensor" API: num_io_tensors, get_tensor_*, set_input_shape, set_tensor_address,
#: execute_async_v3, TensorIOMode).  No cp311 wheel of an older TensorRT is on the index.
TENSOR_ADDRESS_API = {
    "ICudaEngine": {"num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype", "get_tensor_shape"},
    "IExecutionContext": {"set_input_shape", "set_tensor_address", "get_tensor_shape", "execute_async_v3",
                          "get_tensor_address", "set_output_allocator"},
    "": {"TensorIOMode"},
}
VARIANTS = {"trt8-bindings": ("trt8", TENSOR_ADDRESS_API)}


def _memory(ptr: int, dtype, shape) -> np.ndarray:
    """A numpy view of ``shape`` elements of ``dtype`` at address ``ptr`` (what a GPU kernel would touch)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = (ctypes.c_byte * (n * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=n).reshape(shape)


def onnx_weight_precision(path) -> str:
    """What a strongly typed TensorRT build takes from the graph (read independently of the code
    under test): "fp16" when most float weights are 16-bit."""
    import onnx

    model = onnx.load(str(path))
    half = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in (10, 16))
    full = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in (1, 11))
    return "fp16" if half > full else "fp32"


# --------------------------------------------------------------------------------------------
# Restriction to the real member lists
# --------------------------------------------------------------------------------------------
def _check(owner: str, name: str, allowed: frozenset, implemented: bool, version: str):
    if name not in allowed:
        raise AttributeError(f"{owner!r} has no attribute {name!r} (TensorRT {version})")
    if not implemented:
        raise NotImplementedError(f"{owner}.{name} exists in TensorRT {version} but the fake does not implement it")


class _RestrictedMeta(type):
    def __getattribute__(cls, name):
        if name.startswith("_"):
            return type.__getattribute__(cls, name)
        allowed = type.__getattribute__(cls, "_allowed")
        try:
            value = type.__getattribute__(cls, name)
        except AttributeError:
            _check(cls.__name__, name, allowed, False, cls._version)
        _check(cls.__name__, name, allowed, True, cls._version)
        return value


class _Restricted(metaclass=_RestrictedMeta):
    _allowed: frozenset = frozenset()
    _version = "?"

    def __getattribute__(self, name):
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        cls = type(self)
        try:
            value = object.__getattribute__(self, name)
        except AttributeError:
            _check(cls.__name__, name, cls._allowed, False, cls._version)
        _check(cls.__name__, name, cls._allowed, True, cls._version)
        return value


class FakeModule(types.ModuleType):
    """Module-level names: the real ones only."""

    def __getattr__(self, name):  # only called for names not set on the module
        if name.startswith("_"):
            raise AttributeError(name)
        _check("tensorrt", name, self._real_names, False, self.__version__)


# --------------------------------------------------------------------------------------------
# Behaviour (TensorRT's documented semantics, minimal)
# --------------------------------------------------------------------------------------------
class State:
    """Behaviour hooks and the record of calls, shared by one fake module's objects."""

    def __init__(self, parse_ok=True, build_ok=True, input_dtype="INT32"):
        self.parse_ok, self.build_ok, self.input_dtype = parse_ok, build_ok, input_dtype
        self.calls: list = []

    def of(self, kind):
        return [c for c in self.calls if c[0] == kind]


def _behaviours(trt, st: State) -> dict:
    """name -> implementation class (plain Python; restricted afterwards)."""

    class Logger:
        WARNING = 2     # ILogger.Severity.WARNING

        def __init__(self, level=None):
            self._level = level

    class INetworkDefinition:
        def __init__(self, flags):
            self._flags = flags
            self._graph = None

    class IOptimizationProfile:
        def __init__(self):
            self._shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self._shapes[name] = [list(lo), list(opt), list(hi)]

    class IBuilderConfig:
        def __init__(self):
            self._flags, self._profiles, self._pool = set(), [], {}

        def set_flag(self, flag):
            self._flags.add(flag.name)

        def set_memory_pool_limit(self, pool, size):
            self._pool[pool.name] = size

        def add_optimization_profile(self, p):
            self._profiles.append(p)
            return len(self._profiles) - 1

    class Builder:
        def __init__(self, logger):
            self._logger = logger

        def create_network(self, flags=0):
            st.calls.append(("create_network", flags))
            return trt.INetworkDefinition(flags)

        def create_builder_config(self):
            return trt.IBuilderConfig()

        def create_optimization_profile(self):
            return trt.IOptimizationProfile()

        def build_serialized_network(self, network, config):
            st.calls.append(("build", sorted(config._flags)))
            if not st.build_ok:
                return None
            flags_enum = trt.NetworkDefinitionCreationFlag
            strong_bit = getattr(flags_enum, "STRONGLY_TYPED", None)
            # 11.x: every network strongly typed; 10.x: when the flag is set; 8.x: never
            strong = not hasattr(trt.BuilderFlag, "FP16") or (
                strong_bit is not None and network._flags & (1 << int(strong_bit)))
            if strong:
                precision = onnx_weight_precision(network._graph)
            else:
                precision = "fp16" if "FP16" in config._flags else "fp32"
            spec = {"precision": precision, "strongly_typed": bool(strong), "network_flags": network._flags,
                    "profiles": [p._shapes for p in config._profiles], "workspace": config._pool.get("WORKSPACE"),
                    "input_dtype": st.input_dtype}
            return MAGIC + json.dumps(spec).encode()

    class OnnxParser:
        def __init__(self, network, logger):
            self._network = network

        def parse_from_file(self, path):
            st.calls.append(("parse", path))
            self._network._graph = path
            return st.parse_ok

        @property
        def num_errors(self):
            return 0 if st.parse_ok else 1

        def get_error(self, i):
            return "Unsupported op: NonMaxSuppression"

        def supports_operator(self, op):
            return op != "Unique"

    class Runtime:
        def __init__(self, logger):
            self._logger = logger

        def deserialize_cuda_engine(self, plan):
            st.calls.append(("deserialize", len(plan)))
            plan = bytes(plan)
            if not plan.startswith(MAGIC):
                return None
            return trt.ICudaEngine(json.loads(plan[len(MAGIC):]))

    names = [*INPUT_NAMES, *OUTPUT_NAMES]

    class ICudaEngine:
        def __init__(self, spec):
            self._spec = spec
            self._executions = 0

        # tensor-address API
        @property
        def num_io_tensors(self):
            return len(names)

        def get_tensor_name(self, i):
            return names[i]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name in INPUT_NAMES else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return trt.DataType[self._spec["input_dtype"]] if name in INPUT_NAMES else trt.DataType.FLOAT

        # bindings API
        @property
        def num_bindings(self):
            return len(names)

        def get_binding_name(self, i):
            return names[i]

        def binding_is_input(self, i):
            return names[i] in INPUT_NAMES

        def get_binding_dtype(self, i):
            return trt.DataType[self._spec["input_dtype"]] if names[i] in INPUT_NAMES else trt.DataType.FLOAT

        def create_execution_context(self):
            return trt.IExecutionContext(self)

    class IExecutionContext:
        def __init__(self, engine):
            self._engine, self._shapes, self._addresses = engine, {}, {}

        def _compute(self):
            # start = ids + 0.5 * token_type, end = 2 * mask - ids: every input and output takes part
            shape = self._shapes["input_ids"]
            in_dtype = np.dtype(trt.nptype(trt.DataType[self._engine._spec["input_dtype"]]))
            ins = {n: _memory(self._addresses[n], in_dtype, shape).astype(np.float32) for n in INPUT_NAMES}
            _memory(self._addresses["start_logits"], np.float32, shape)[...] = \
                ins["input_ids"] + 0.5 * ins["token_type_ids"]
            _memory(self._addresses["end_logits"], np.float32, shape)[...] = \
                2 * ins["attention_mask"] - ins["input_ids"]
            self._engine._executions += 1
            return True

        def set_input_shape(self, name, shape):
            assert name in INPUT_NAMES, name
            self._shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self._shapes["input_ids"]

        def set_tensor_address(self, name, ptr):
            self._addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle):
            st.calls.append(("execute_async_v3", stream_handle))
            return self._compute()

        def set_binding_shape(self, index, shape):
            assert names[index] in INPUT_NAMES, index
            self._shapes[names[index]] = tuple(shape)
            return True

        def get_binding_shape(self, index):
            return self._shapes["input_ids"]

        def execute_v2(self, bindings):
            st.calls.append(("execute_v2", len(bindings)))
            self._addresses = dict(zip(names, bindings))
            return self._compute()

    def init_libnvinfer_plugins(logger, namespace):
        st.calls.append(("init_plugins", namespace))
        return True

    _np = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
           "BOOL": np.bool_, "UINT8": np.uint8}

    def nptype(trt_type):
        return _np[trt_type.name]

    return {"Logger": Logger, "INetworkDefinition": INetworkDefinition, "IOptimizationProfile": IOptimizationProfile,
            "IBuilderConfig": IBuilderConfig, "Builder": Builder, "OnnxParser": OnnxParser, "Runtime": Runtime,
            "ICudaEngine": ICudaEngine, "IExecutionContext": IExecutionContext,
            "init_libnvinfer_plugins": init_libnvinfer_plugins, "nptype": nptype}


def member_lists(label: str, remove: dict | None = None) -> dict:
    """The real member lists of ``label`` (a fixture, or a documented variant of one), less
    ``remove`` ({class: names}, "" for module-level names) when a test plants a missing API."""
    base, removed = VARIANTS.get(label, (label, {}))
    members = load_fixture(base)
    removed = {k: set(removed.get(k, ())) | set((remove or {}).get(k, ())) for k in {*removed, *(remove or {})}}
    if removed:
        members = json.loads(json.dumps(members))
        for cls, names in removed.items():
            if cls in members["enums"]:
                members["enums"][cls] = {k: v for k, v in members["enums"][cls].items() if k not in names}
            elif cls:
                members["classes"][cls] = [m for m in members["classes"][cls] if m not in names]
            else:
                for n in names:
                    members["classes"].pop(n, None)
                    members["enums"].pop(n, None)
                    if n in members["functions"]:
                        members["functions"].remove(n)
        members["variant"] = f"{base} less {sorted((k, sorted(v)) for k, v in removed.items())}"
    return members


def make_fake_trt(label: str = "trt10", remove: dict | None = None, **hooks) -> types.ModuleType:
    """A fake ``tensorrt`` module with exactly ``label``'s real names; ``hooks`` go to ``State``."""
    members = member_lists(label, remove)
    version = members["version"]
    trt = FakeModule("tensorrt")
    trt.__version__ = version
    trt.__file__ = f"/fake/{label}/tensorrt/__init__.py"
    trt._state = st = State(**hooks)
    trt._label = label
    trt._real_names = frozenset(members["classes"]) | frozenset(members["enums"]) | frozenset(
        members["functions"]) | frozenset(members["values"])
    for name, values in members["enums"].items():
        setattr(trt, name, enum.IntEnum(name, values))
    for name, impl in _behaviours(trt, st).items():
        if name in members["classes"]:
            cls = _RestrictedMeta(name, (impl, _Restricted), {"_allowed": frozenset(members["classes"][name]),
                                                               "_version": version})
            setattr(trt, name, cls)
        elif name in members["functions"]:
            setattr(trt, name, impl)
    return trt
