"""A TensorRT / ixRT stand-in for tests: the real bindings' NAMES, TensorRT's documented BEHAVIOUR,
and engines that really run the model (onnxruntime on the CPU).  Never a backend users can pick,
never a source of perf figures: every module says ``__emulated__ = "emulated TensorRT <version>
(onnxruntime)"``, which the suite's runner puts in describe(), reports and JSON, and which makes bench
refuse to publish timings.

Names.  ``fixtures/tensorrt_api/<label>.json`` holds every class, enum (with its real values) and
class member of a real release (written by ``python -m albert_ixrt.trt_bindings --write``, checked
against the live bindings by tests/unit/test_trt_api.py).  A module exposes exactly those names: a
name the release lacks raises AttributeError (as the real module would); one it has but the
stand-in does not implement raises NotImplementedError (never swallowed by ``hasattr``).

Behaviour, per generation (``GENERATIONS``; sources: TensorRT 8.6 / 10.13 / 11.4 Python API docs and
headers, Polygraphy's TensorRT backend, Iluvatar's ixrtexec):

* parser: reads the real ONNX file; a TensorRT 8 / ixRT parser refuses a network created without
  the EXPLICIT_BATCH bit; an opset above the generation's ceiling and an op outside the default
  domain (onnxruntime contrib ops such as Attention) are parser errors (``num_errors``/``get_error``);
* builder config: a new IBuilderConfig has TF32 set (as every real one); strong typing takes each
  precision from the graph (and refuses BuilderFlag.FP16), weak typing is fp16 only with
  BuilderFlag.FP16; an fp32 engine built with TF32 still set rounds every MatMul / Gemm input to
  TF32 (10-bit mantissa), so a TF32 leak is a real numerical drift;
* engines run the built graph with onnxruntime (fp16 where the build is fp16), reading and writing
  the addresses and shapes the runner set; engine I/O dtypes as the real generation keeps them
  (INT64 inputs on 10 / 11, INT32 on 8.x / ixRT); ``set_input_shape`` returns False outside the
  profile; ``execute_async_v3(0)`` logs TensorRT's default-stream warning through the ILogger;
* ixRT: module ``ixrt``, weak by default although it offers STRONGLY_TYPED, EXPLICIT_BATCH required,
  ``IOptimizationProfile.set_shape`` takes only ``Dims``, no memory-pool API;
* plans (``plan_bytes``): TensorRT's documented preamble (the "ftrt" tag and the building version at bytes
  24..27, as ``trtexec --getPlanVersionOnly`` reads them; none for ixRT, whose header is unpublished), then
  the build record (version, typing, flags, every profile, I/O names and types) and the ONNX graph.
  ``Runtime.deserialize_cuda_engine`` returns None with TensorRT's error lines logged through the ILogger
  for another version's plan ("expecting library version X got Y") or bytes that are no plan (ixRT: its
  ``IXRT_MAGIC_NUMBER`` line); ``get_tensor_profile_shape`` (8.5+) / ``get_profile_shape`` (8-style) give
  each profile's [min, opt, max].

Two checks go beyond TensorRT, on purpose, to pin the suite's own glue rules: an execution forgets
every address it was given, so a runner that does not bind every I/O tensor on every call fails
("Neither address nor allocator is set"); and ``State.events`` records executions, so a test can put
a recording stream beside it and check the order (wait for torch's stream, then execute).
"""
from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import os
import re
import struct
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from albert_ixrt.trt_bindings import load_fixture  # noqa: E402

#: The stand-in's plan (``plan_bytes`` / ``read_plan``): [TensorRT's documented 28-byte preamble, TensorRT
#: generations only] MAGIC, u64 header length, the JSON build record, the ONNX graph the engine runs.
MAGIC = b"EMULPLAN"
#: TensorRT's plan preamble as trtexec's ``--getPlanVersionOnly`` reads it (samples/common/sampleEngines.cpp,
#: printPlanVersion): u32 tag 0x74727466 ("ftrt"), u32 serialization version 0, then the version that built
#: the plan as four bytes at offsets 24..27 (major, minor, patch, build).  ixRT's plan header (a check of
#: ``h->magic == IXRT_MAGIC_NUMBER``, its error_processing sample) is not published: its stand-in writes none.
PLAN_TAG, PLAN_PREAMBLE = 0x74727466, 28
#: TensorRT 8-style bindings-only API (TensorRT <= 8.4, older ixRT): the real 8.6 member list minus what
#: TensorRT 8.5 added for I/O by name (the 8.5 release notes' "named tensor" API).
TENSOR_ADDRESS_API = {
    "ICudaEngine": {"num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype", "get_tensor_shape",
                    "get_tensor_profile_shape"},
    "IExecutionContext": {"set_input_shape", "set_tensor_address", "get_tensor_shape", "execute_async_v3",
                          "get_tensor_address", "set_output_allocator"},
    "": {"TensorIOMode"},
}
#: ixRT (open-source tree, ixrtexec): no memory-pool API is called by any public ixRT code.
IXRT_REMOVED = {"IBuilderConfig": {"set_memory_pool_limit", "get_memory_pool_limit"}, "": {"MemoryPoolType"}}


class Generation:
    """One emulated generation: its member list (a fixture less/plus a documented variant), module
    name, ONNX opset ceiling, the engine's integer input type, and its 8-style rules."""

    def __init__(self, name, base, *, module="tensorrt", remove=None, add_enum=None, max_opset, int_input,
                 explicit_batch_required=False, dims_only=False, version=None, note=""):
        self.name, self.base, self.module, self.remove, self.add_enum = name, base, module, remove or {}, add_enum or {}
        self.max_opset, self.int_input = max_opset, int_input
        self.explicit_batch_required, self.dims_only = explicit_batch_required, dims_only
        self.version, self.note = version, note


#: Opset ceilings: 8.6 onnx-tensorrt release/8.6 operators.md ("up to Opset 17"); 10.x onnx-tensorrt
#: release/10.0 README ("opset 9 to opset 20"); 11.0-11.4 at most 24 (opset 25 arrived in 11.5, TensorRT
#: docs' ONNX opset guide); ixRT: its 8.6-style parser, at 17 (not published: ixrtexec down-converts
#: models to opset 11 first, so this one is an assumption of the stand-in).
GENERATIONS = {
    "8.6": Generation("8.6", "trt8", remove=TENSOR_ADDRESS_API, max_opset=17, int_input="INT32",
                      explicit_batch_required=True, note="8.6 member list, bindings-only I/O (execute_v2)"),
    "ixrt": Generation("ixrt", "trt8", module="ixrt", remove=IXRT_REMOVED,
                       add_enum={"NetworkDefinitionCreationFlag": {"STRONGLY_TYPED": 2}}, max_opset=17,
                       int_input="INT32", explicit_batch_required=True, dims_only=True, version="8.6.1-ixrt",
                       note="8.6 member list + STRONGLY_TYPED, no memory-pool API, set_shape takes Dims only"),
    "10.13-weak": Generation("10.13-weak", "trt10", remove={"NetworkDefinitionCreationFlag": {"STRONGLY_TYPED"}},
                             max_opset=20, int_input="INT64",
                             note="10.13 member list without STRONGLY_TYPED: driven weakly (BuilderFlag.FP16)"),
    "10.13-strong": Generation("10.13-strong", "trt10", max_opset=20, int_input="INT64", note="10.13 member list"),
    "11.4": Generation("11.4", "trt11", max_opset=24, int_input="INT64", note="11.4 member list: strong only"),
    # the labels the unit tests used before: the real member lists as they are
    "trt8": Generation("trt8", "trt8", max_opset=17, int_input="INT32", explicit_batch_required=True),
    "trt8-bindings": Generation("trt8-bindings", "trt8", remove=TENSOR_ADDRESS_API, max_opset=17,
                                int_input="INT32", explicit_batch_required=True),
    "trt10": Generation("trt10", "trt10", max_opset=20, int_input="INT64"),
    "trt11": Generation("trt11", "trt11", max_opset=24, int_input="INT64"),
}
#: The generations ``tests/support/emulated-tensorrt`` and the slow end-to-end tests run.
CLI_GENERATIONS = ("8.6", "ixrt", "10.13-weak", "10.13-strong", "11.4")

DEFAULT_STREAM_WARNING = ("Using default stream in enqueueV3() may lead to performance issues due to additional "
                          "calls to cudaStreamSynchronize() by TensorRT to ensure correct synchronization. Please use "
                          "non-default stream instead.")


def _memory(ptr: int, dtype, shape) -> np.ndarray:
    """A numpy view of ``shape`` elements of ``dtype`` at address ``ptr`` (what a GPU kernel would touch)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = (ctypes.c_byte * (n * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=n).reshape(shape)


def plan_bytes(spec: dict, onnx_bytes: bytes, preamble: bool = True) -> bytes:
    """A stand-in plan: TensorRT's preamble with the version (``preamble``), MAGIC, the JSON build record
    ``spec`` (its "version" among it), the ONNX graph the engine runs."""
    head = b""
    if preamble:
        numbers = [int(x) for x in re.findall(r"\d+", spec["version"])[:4]] + [0, 0, 0, 0]
        head = struct.pack("<II16x4B", PLAN_TAG, 0, *[min(n, 255) for n in numbers[:4]])
    header = json.dumps(spec).encode()
    return head + MAGIC + struct.pack("<Q", len(header)) + header + onnx_bytes


def read_plan(plan: bytes) -> tuple[dict | None, bytes | str]:
    """(build record, ONNX bytes) of a stand-in plan, or (None, what is wrong) for other bytes."""
    if len(plan) >= PLAN_PREAMBLE and struct.unpack_from("<I", plan)[0] == PLAN_TAG:
        plan = plan[PLAN_PREAMBLE:]
    if not plan.startswith(MAGIC) or len(plan) < len(MAGIC) + 8:
        return None, "not a plan"
    (n,) = struct.unpack("<Q", plan[len(MAGIC):len(MAGIC) + 8])
    try:
        spec = json.loads(plan[len(MAGIC) + 8:len(MAGIC) + 8 + n])
    except ValueError:
        return None, "corrupt plan header"
    return spec, plan[len(MAGIC) + 8 + n:]


def onnx_weight_precision(model) -> str:
    """What a strongly typed TensorRT build takes from the graph (read independently of the code under
    test): "fp16" when most float constants (weights, ConstantOfShape fills) are 16-bit."""
    tensors = [*model.graph.initializer, *(a.t for n in model.graph.node if n.op_type == "ConstantOfShape"
                                           for a in n.attribute if a.name == "value")]
    half = sum(int(np.prod(t.dims)) for t in tensors if t.data_type in (10, 16))
    full = sum(int(np.prod(t.dims)) for t in tensors if t.data_type in (1, 11))
    return "fp16" if half > full else "fp32"


def tf32_round(model):
    """Every float32 MatMul / Gemm input rounded to TF32 (1 + 10 mantissa bits, round to nearest), as an
    Ampere+ tensor core reads it: Veltkamp's split, ``c = x * (2**13 + 1); x_tf32 = c - (c - x)``, in
    ONNX ops, so onnxruntime computes exactly that."""
    from onnx import helper, numpy_helper

    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.array(8193.0, dtype=np.float32), "__tf32_split"))
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm") and node.domain in ("", "ai.onnx"):
            for k, name in enumerate(list(node.input[:2])):  # the stand-in rounds fp32 graphs only:
                count += 1                                   # every MatMul input there is float32
                c, d, r = (f"__tf32_{count}_{s}" for s in "cdr")
                nodes += [helper.make_node("Mul", [name, "__tf32_split"], [c]),
                          helper.make_node("Sub", [c, name], [d]),
                          helper.make_node("Sub", [c, d], [r])]
                node.input[k] = r
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


# --------------------------------------------------------------------------------------------
# Restriction to the real member lists
# --------------------------------------------------------------------------------------------
def _check(owner: str, name: str, allowed: frozenset, implemented: bool, version: str):
    if name not in allowed:
        raise AttributeError(f"{owner!r} has no attribute {name!r} (TensorRT {version})")
    if not implemented:
        raise NotImplementedError(f"{owner}.{name} exists in TensorRT {version} but the stand-in does not implement it")


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


class StandInModule(types.ModuleType):
    """Module-level names: the real ones only."""

    def __getattr__(self, name):  # only called for names not set on the module
        if name.startswith("_"):
            raise AttributeError(name)
        _check(self.__name__, name, self._real_names, False, self.__version__)


# --------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------
class State:
    """Behaviour hooks and the record of calls and log lines, shared by one module's objects."""

    def __init__(self, parse_ok=True, build_ok=True, echo_log=True):
        self.parse_ok, self.build_ok, self.echo_log = parse_ok, build_ok, echo_log
        self.calls: list = []
        self.log: list = []       # (severity name, message) through every ILogger
        self.events: list = []    # ("execute_async_v3" | "execute_v2", stream handle or None)

    def of(self, kind):
        return [c for c in self.calls if c[0] == kind]

    def warnings(self) -> list[str]:
        return [m for s, m in self.log if s in ("WARNING", "ERROR", "INTERNAL_ERROR")]


_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
       "BOOL": np.bool_, "UINT8": np.uint8}
_ORT_TO_TRT = {"tensor(float)": "FLOAT", "tensor(float16)": "HALF", "tensor(int32)": "INT32",
               "tensor(int64)": "INT64", "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(int8)": "INT8"}


def _session(model_bytes: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def _behaviours(trt, st: State, gen: Generation) -> dict:
    """name -> implementation class (plain Python; restricted afterwards)."""

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class Logger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (Severity.INTERNAL_ERROR, Severity.ERROR, Severity.WARNING,
                                                         Severity.INFO, Severity.VERBOSE)

        def __init__(self, min_severity=Severity.WARNING):
            self.min_severity = min_severity

        def log(self, severity, msg):
            severity = Severity(int(severity))
            st.log.append((severity.name, msg))
            if st.echo_log and severity <= self.min_severity:
                print(f"[TRT] [{severity.name[0]}] {msg}", file=sys.stderr)

    Logger.Severity = Severity

    class Dims:
        def __init__(self, shape=()):
            self._shape = tuple(int(d) for d in shape)

        def __len__(self):
            return len(self._shape)

        def __iter__(self):
            return iter(self._shape)

        def __getitem__(self, i):
            return self._shape[i]

        def __repr__(self):
            return f"Dims({self._shape})"

    def as_shape(value, what):
        if gen.dims_only and not isinstance(value, trt.Dims):
            raise TypeError(f"{what}(): incompatible function arguments: expected tensorrt.Dims, got "
                            f"{type(value).__name__} (ixRT's set_shape takes only Dims)")
        return tuple(int(d) for d in value)

    class INetworkDefinition:
        def __init__(self, flags):
            self._flags = flags
            self._model = None

        def _has_flag(self, name):
            bit = getattr(trt.NetworkDefinitionCreationFlag, name, None)
            return bit is not None and bool(self._flags & (1 << int(bit)))

    class IOptimizationProfile:
        def __init__(self):
            self._shapes = {}

        def set_shape(self, input, min, opt, max):  # noqa: A002 (TensorRT's own parameter names)
            shapes = [as_shape(v, "set_shape") for v in (min, opt, max)]
            if not all(len(s) == len(shapes[0]) for s in shapes) or not all(
                    a <= b <= c for a, b, c in zip(*shapes)):
                st.log.append(("ERROR", f"setDimensions: min <= opt <= max violated for {input}"))
                return
            self._shapes[input] = [list(s) for s in shapes]

    class IBuilderConfig:
        def __init__(self):
            self._flags = {"TF32"} if hasattr(trt.BuilderFlag, "TF32") else set()  # on by default, as in TensorRT
            self._profiles, self._pool = [], {}

        def set_flag(self, flag):
            self._flags.add(trt.BuilderFlag(flag).name)

        def clear_flag(self, flag):
            self._flags.discard(trt.BuilderFlag(flag).name)

        def get_flag(self, flag):
            return trt.BuilderFlag(flag).name in self._flags

        def set_memory_pool_limit(self, pool, size):
            self._pool[trt.MemoryPoolType(pool).name] = int(size)

        def add_optimization_profile(self, p):
            self._profiles.append(p)
            return len(self._profiles) - 1

    class Builder:
        def __init__(self, logger):
            self._logger = logger

        def create_network(self, flags=0):
            st.calls.append(("create_network", int(flags)))
            return trt.INetworkDefinition(int(flags))

        def create_builder_config(self):
            return trt.IBuilderConfig()

        def create_optimization_profile(self):
            return trt.IOptimizationProfile()

        def build_serialized_network(self, network, config):
            st.calls.append(("build", sorted(config._flags)))
            fail = lambda msg: (self._logger.log(Severity.ERROR, msg), None)[1]  # noqa: E731
            if not st.build_ok or network._model is None:
                return fail("Network has no parsed graph" if st.build_ok else "Builder failed (planted)")
            # 11.x: every network strongly typed; 10.x: with the flag; 8.x / ixRT weak unless the flag
            strong = not hasattr(trt.BuilderFlag, "FP16") or network._has_flag("STRONGLY_TYPED")
            model = network._model
            if strong and "FP16" in config._flags:
                return fail("BuilderFlag::kFP16 is not allowed with a strongly typed network "
                            "(precision comes from the network's types)")
            precision = onnx_weight_precision(model) if strong else ("fp16" if "FP16" in config._flags else "fp32")
            tf32 = precision == "fp32" and "TF32" in config._flags
            inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
            profile = config._profiles[0]._shapes if config._profiles else {}
            for i in inputs:
                dims = i.type.tensor_type.shape.dim
                dynamic = any(not d.HasField("dim_value") for d in dims)
                if dynamic and i.name not in profile:
                    return fail(f"{i.name}: dynamic input is missing dimensions in profile 0")
            if precision == "fp16" and not strong:
                model = _weak_fp16(_typed_outputs(model))
            if tf32:
                model = tf32_round(model)
            session = _session(model.SerializeToString())  # what the built engine runs; its I/O types
            io = {"inputs": {}, "outputs": {}}
            for i in session.get_inputs():
                kind = _ORT_TO_TRT[i.type]
                io["inputs"][i.name] = gen.int_input if kind in ("INT64", "INT32") else kind
            for o in session.get_outputs():
                io["outputs"][o.name] = _ORT_TO_TRT[o.type]
            spec = {"precision": precision, "strongly_typed": bool(strong), "network_flags": network._flags,
                    "builder_flags": sorted(config._flags), "tf32": tf32, "profile": profile,
                    "profiles": [p._shapes for p in config._profiles] or [profile],
                    "workspace": config._pool.get("WORKSPACE"), "io": io, "generation": gen.name,
                    "version": trt.__version__,
                    "dims": {v.name: [d if isinstance(d, int) else -1 for d in (v.shape or [])]
                             for v in [*session.get_inputs(), *session.get_outputs()]}}
            return plan_bytes(spec, model.SerializeToString(), preamble=gen.module != "ixrt")

    class OnnxParser:
        def __init__(self, network, logger):
            self._network, self._logger, self._errors = network, logger, []

        def parse_from_file(self, model):
            st.calls.append(("parse", model))
            import onnx

            self._errors = []
            if not st.parse_ok:
                self._errors.append("Unsupported op: NonMaxSuppression (planted)")
                return False
            if gen.explicit_batch_required and not self._network._has_flag("EXPLICIT_BATCH"):
                self._errors.append("ModelImporter.cpp: The ONNX parser only supports networks with an explicit "
                                    "batch dimension (create the network with 1 << EXPLICIT_BATCH)")
                return False
            try:
                proto = onnx.load(str(model))
            except Exception as exc:  # noqa: BLE001
                self._errors.append(f"Failed to parse ONNX model from file: {model} ({type(exc).__name__})")
                return False
            opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
            if opset is not None and opset > gen.max_opset:
                self._errors.append(f"ModelImporter.cpp: opset {opset} is above {gen.max_opset}, the highest this "
                                    f"parser reads (TensorRT {trt.__version__})")
            for node in proto.graph.node:
                if not self.supports_operator(node.op_type) or node.domain not in ("", "ai.onnx"):
                    self._errors.append(f"No importer registered for op: {node.op_type} (domain {node.domain!r})")
            if self._errors:
                return False
            self._network._model = proto
            return True

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, i):
            return self._errors[i]

        def supports_operator(self, op_type):
            return op_type not in ("Unique", "Attention", "SkipLayerNormalization", "EmbedLayerNormalization",
                                   "BiasGelu", "FastGelu")

    class Runtime:
        def __init__(self, logger):
            self._logger = logger

        def deserialize_cuda_engine(self, serialized_engine):
            """The engine of a stand-in plan of this very version; None, with TensorRT's (or ixRT's) error
            logged through the ILogger, for another version's plan or bytes that are not a plan (as the real
            Runtime returns nullptr; Polygraphy's EngineFromBytes checks ``if not engine``)."""
            st.calls.append(("deserialize", len(serialized_engine)))
            spec, body = read_plan(bytes(serialized_engine))
            if spec is None:
                return self._refuse(body)
            if spec.get("version") != trt.__version__:
                return self._refuse(None, spec.get("version") or "?")
            try:
                session = _session(body)
            except Exception as exc:  # noqa: BLE001 (a truncated plan)
                return self._refuse(f"corrupt plan ({type(exc).__name__})")
            return trt.ICudaEngine(spec, session, self._logger)

        def _refuse(self, problem, plan_version=None):
            if gen.module == "ixrt":  # ixRT's error_processing sample shows this line for a non-plan
                self._logger.log(Severity.ERROR, "[engine.cc:182 (IsEngineVerified) ] condition check failed at:"
                                                 "h->magic == IXRT_MAGIC_NUMBER")
                return None
            if plan_version is not None:   # TensorRT's message (Error Code 6), then the failure (Error Code 4)
                self._logger.log(Severity.ERROR, f"IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The "
                                                 f"engine plan file is not compatible with this version of TensorRT, "
                                                 f"expecting library version {trt.__version__} got {plan_version}, "
                                                 "please rebuild.)")
            else:
                self._logger.log(Severity.ERROR, f"[stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: "
                                                 f"Serialization (Serialization assertion magicTagRead == kMAGIC_TAG "
                                                 f"failed.Magic tag does not match; {problem})")
            self._logger.log(Severity.ERROR, "[runtime.cpp::deserializeCudaEngine::65] Error Code 4: Internal Error "
                                             "(Engine deserialization failed.)")
            return None

    class ICudaEngine:
        def __init__(self, spec, session, logger):
            self._spec, self._session, self._logger = spec, session, logger
            self._names = [*spec["io"]["inputs"], *spec["io"]["outputs"]]
            self._executions = 0

        def _dtype(self, name):
            io = self._spec["io"]
            return trt.DataType[io["inputs"].get(name) or io["outputs"][name]]

        # tensor-address API
        @property
        def num_io_tensors(self):
            return len(self._names)

        def get_tensor_name(self, index):
            return self._names[index]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name in self._spec["io"]["inputs"] else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return self._dtype(name)

        def get_tensor_shape(self, name):
            return self._dims(name)

        def _dims(self, name):
            """The tensor's shape; for a name the engine lacks, an error logged and no dimensions (TensorRT's
            getTensorShape returns Dims with nbDims -1 there)."""
            if name not in self._spec["dims"]:
                self._logger.log(Severity.ERROR, f"ICudaEngine::getTensorShape: no tensor named {name}")
                return trt.Dims(())
            return trt.Dims(self._spec["dims"][name])

        def get_tensor_profile_shape(self, name, profile_index):
            return self._profile_shape(name, profile_index)

        def _profile_shape(self, name, profile_index):
            """[min, opt, max] Dims of input ``name`` in a profile (TensorRT's getProfileShape)."""
            shapes = self._profiles()[int(profile_index)].get(name)
            if shapes is None:
                self._logger.log(Severity.ERROR, f"ICudaEngine::getProfileShape: {name} is not an input tensor")
                return [trt.Dims(()), trt.Dims(()), trt.Dims(())]
            return [trt.Dims(d) for d in shapes]

        def _profiles(self):
            return self._spec.get("profiles") or [self._spec["profile"]]

        @property
        def num_optimization_profiles(self):
            return len(self._profiles())

        # bindings API
        @property
        def num_bindings(self):
            return len(self._names)

        def get_binding_name(self, index):
            return self._names[index]

        def binding_is_input(self, index):
            return self._names[index] in self._spec["io"]["inputs"]

        def get_binding_dtype(self, index):
            return self._dtype(self._names[index])

        def get_binding_shape(self, binding):
            return self._dims(self._binding_name(binding))

        def get_profile_shape(self, profile_index, binding):
            return self._profile_shape(self._binding_name(binding), profile_index)

        def _binding_name(self, binding):
            return binding if isinstance(binding, str) else self._names[int(binding)]

        def create_execution_context(self):
            return trt.IExecutionContext(self)

    class IExecutionContext:
        def __init__(self, engine):
            self._engine, self._shapes, self._addresses = engine, {}, {}
            self._out_shapes = {}

        @property
        def _log(self):
            return self._engine._logger.log

        def set_input_shape(self, name, shape):
            return self._set_shape(name, shape)

        def _set_shape(self, name, shape):
            spec = self._engine._spec
            shape = as_shape(shape, "set_input_shape") if gen.dims_only else tuple(int(d) for d in shape)
            if name not in spec["io"]["inputs"]:
                self._log(Severity.ERROR, f"IExecutionContext::setInputShape: {name} is not an input tensor")
                return False
            lo, _, hi = spec["profile"].get(name, [None, None, None])
            if lo is None or len(shape) != len(lo) or not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
                self._log(Severity.ERROR, f"IExecutionContext::setInputShape: Error Code 3: API Usage Error "
                                          f"(Parameter check failed, condition: shape {list(shape)} of {name} within "
                                          f"profile 0 [{lo}, {hi}])")
                return False
            self._shapes[name] = shape
            return True

        def get_tensor_shape(self, name):
            return self._shape(name)

        def _shape(self, name):
            if name in self._shapes:
                return trt.Dims(self._shapes[name])
            return trt.Dims(self._output_shape(name))

        def _output_shape(self, name):
            inputs = self._engine._spec["io"]["inputs"]
            missing = [n for n in inputs if n not in self._shapes]
            if missing:
                return self._engine._spec["dims"][name]  # -1s until every input shape is known
            key = tuple(self._shapes[n] for n in inputs)
            if key not in self._out_shapes:
                sess = self._engine._session
                feeds = {i.name: np.zeros(self._shapes[i.name], dtype=_ort_dtype(i.type)) for i in sess.get_inputs()}
                outs = sess.run(None, feeds)
                self._out_shapes[key] = {o.name: list(v.shape) for o, v in zip(sess.get_outputs(), outs)}
            return self._out_shapes[key][name]

        def set_tensor_address(self, name, memory):
            if name not in self._engine._names or not memory:
                self._log(Severity.ERROR, f"IExecutionContext::setTensorAddress: refused {name} at {memory}")
                return False
            self._addresses[name] = int(memory)
            return True

        def execute_async_v3(self, stream_handle):
            st.calls.append(("execute_async_v3", stream_handle))
            st.events.append(("execute_async_v3", stream_handle))
            if int(stream_handle) == 0:
                self._log(Severity.WARNING, DEFAULT_STREAM_WARNING)
            return self._run()

        def set_binding_shape(self, binding, shape):
            return self._set_shape(self._engine._names[binding], shape)

        def get_binding_shape(self, binding):
            return self._shape(self._engine._names[binding])

        def execute_v2(self, bindings):
            st.calls.append(("execute_v2", len(bindings)))
            st.events.append(("execute_v2", None))
            self._addresses = {n: int(p) for n, p in zip(self._engine._names, bindings) if p}
            return self._run()

        def _run(self):
            engine, spec = self._engine, self._engine._spec
            addresses, self._addresses = self._addresses, {}  # forgotten: bound again on every call
            for name in spec["io"]["inputs"]:
                if name not in self._shapes:
                    self._log(Severity.ERROR, f"IExecutionContext::enqueueV3: input shape of {name} not set")
                    return False
            for name in engine._names:
                if name not in addresses:
                    self._log(Severity.ERROR, f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error "
                                              f"(Neither address nor allocator is set for tensor {name})")
                    return False
            sess = engine._session
            feeds = {}
            for i in sess.get_inputs():
                host = _memory(addresses[i.name], _NP[spec["io"]["inputs"][i.name]], self._shapes[i.name])
                feeds[i.name] = host.astype(_ort_dtype(i.type))
            outs = sess.run(None, feeds)
            for o, value in zip(sess.get_outputs(), outs):
                _memory(addresses[o.name], _NP[spec["io"]["outputs"][o.name]], value.shape)[...] = value
            engine._executions += 1
            return True

    def init_libnvinfer_plugins(logger, namespace):
        st.calls.append(("init_plugins", namespace))
        return True

    def nptype(trt_type):   # as tensorrt.nptype: TypeError for a type numpy has no equivalent of (BF16, FP8)
        name = trt.DataType(trt_type).name
        if name not in _NP:
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
        return _NP[name]

    return {"Logger": Logger, "ILogger": Logger, "Dims": Dims, "INetworkDefinition": INetworkDefinition,
            "IOptimizationProfile": IOptimizationProfile, "IBuilderConfig": IBuilderConfig, "Builder": Builder,
            "OnnxParser": OnnxParser, "Runtime": Runtime, "ICudaEngine": ICudaEngine,
            "IExecutionContext": IExecutionContext, "init_libnvinfer_plugins": init_libnvinfer_plugins,
            "nptype": nptype}


def _ort_dtype(ort_type: str):
    return {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
            "tensor(float16)": np.float16, "tensor(bool)": np.bool_}[ort_type]


def _typed_outputs(model):
    """The graph with a type on every output (TensorRT infers them; layerwise's exposed boundaries have
    none, which onnxruntime's float16 converter needs): the types onnxruntime computes."""
    import onnx

    untyped = [o for o in model.graph.output if not o.type.tensor_type.elem_type]
    if not untyped:
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    found = {o.name: o for o in _session(model.SerializeToString()).get_outputs()}
    elem = {"tensor(float)": onnx.TensorProto.FLOAT, "tensor(float16)": onnx.TensorProto.FLOAT16}
    for o in model.graph.output:
        if not o.type.tensor_type.elem_type:
            ort_out = found[o.name]
            shape = [d if isinstance(d, (int, str)) else f"d{k}" for k, d in enumerate(ort_out.shape or [])]
            o.type.CopyFrom(onnx.helper.make_tensor_type_proto(elem[ort_out.type], shape))
    return model


def _weak_fp16(model):
    """What a weakly typed FP16 build computes: fp16 kernels where the builder may choose them, fp32 I/O
    kept, LayerNormalization and Softmax (+ mask path) in fp32, as TensorRT's own builder advises for
    LayerNorm and its MHA kernels do for softmax (onnxruntime's float16 converter, as export.trt_fp16_onnx
    drives it)."""
    import onnx

    from albert_ixrt.export import trt_fp16_onnx

    with tempfile.TemporaryDirectory() as tmp:
        src, dest = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(model, str(src))
        trt_fp16_onnx(src, dest)
        return onnx.load(str(dest))


# --------------------------------------------------------------------------------------------
# The module
# --------------------------------------------------------------------------------------------
def member_lists(label: str, remove: dict | None = None) -> dict:
    """The real member lists of ``label``'s release, as its generation varies them, less ``remove``
    ({class: names}, "" for module-level names) when a test plants a missing API."""
    gen = GENERATIONS[label]
    members = json.loads(json.dumps(load_fixture(gen.base)))
    for cls, values in gen.add_enum.items():
        members["enums"].setdefault(cls, {}).update(values)
    removed = {k: set(gen.remove.get(k, ())) | set((remove or {}).get(k, ())) for k in {*gen.remove, *(remove or {})}}
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
    if removed or gen.add_enum:
        members["variant"] = (f"{gen.base} less {sorted((k, sorted(v)) for k, v in removed.items())} plus "
                              f"{gen.add_enum}")
    return members


def emulated_label(label: str) -> str:
    gen = GENERATIONS[label]
    version = gen.version or load_fixture(gen.base)["version"]
    return f"emulated TensorRT {version} (onnxruntime)"


def make_standin(label: str = "10.13-strong", remove: dict | None = None, **hooks) -> types.ModuleType:
    """A stand-in TensorRT module of generation ``label`` (``GENERATIONS``); ``hooks`` go to ``State``."""
    gen = GENERATIONS[label]
    members = member_lists(label, remove)
    version = gen.version or members["version"]
    trt = StandInModule(gen.module)
    trt.__version__ = version
    trt.__file__ = f"/emulated/{label}/{gen.module}/__init__.py"
    if gen.module == "ixrt":  # ixRT installs its plugin beside the module: lib/libixrt_plugin.so
        trt.__file__ = str(ixrt_plugin_home() / "ixrt" / "__init__.py")
    trt.__spec__ = importlib.machinery.ModuleSpec(gen.module, None, origin=trt.__file__)  # find_spec() asks
    trt.__emulated__ = emulated_label(label)
    trt._state = st = State(**hooks)
    trt._label = label
    trt._generation = gen
    trt._real_names = frozenset(members["classes"]) | frozenset(members["enums"]) | frozenset(
        members["functions"]) | frozenset(members["values"])
    for name, values in members["enums"].items():
        setattr(trt, name, enum.IntEnum(name, values))
    for name, impl in _behaviours(trt, st, gen).items():
        if name in members["classes"]:
            cls = _RestrictedMeta(name, (impl, _Restricted), {"_allowed": frozenset(members["classes"][name]),
                                                               "_version": version})
            setattr(trt, name, cls)
        elif name in members["functions"]:
            setattr(trt, name, impl)
    return trt


def ixrt_plugin_home() -> Path:
    """A folder holding ``ixrt/lib/libixrt_plugin.so``: an empty shared library (compiled once with gcc) that
    stands in for ixRT's plugin library, so the suite's loader finds it beside the module and dlopens it as on
    an ixRT machine.  It registers no plugin (the stand-in's parser needs none)."""
    import shutil
    import subprocess

    home = Path(tempfile.gettempdir()) / f"albert-ixrt-emulated-{os.getuid()}"
    lib = home / "ixrt" / "lib" / "libixrt_plugin.so"
    if lib.is_file():
        return home
    lib.parent.mkdir(parents=True, exist_ok=True)
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("no C compiler (gcc) to build the stand-in ixRT plugin library")
    src = lib.parent / f"plugin.{os.getpid()}.c"
    tmp = lib.parent / f".libixrt_plugin.{os.getpid()}.so"
    src.write_text("/* stand-in for ixRT's plugin library: loads, registers nothing */\n"
                   "int albert_ixrt_emulated_plugin = 1;\n", encoding="utf-8")
    try:
        subprocess.run([gcc, "-shared", "-fPIC", "-o", str(tmp), str(src)], check=True, capture_output=True,
                       timeout=120)
        tmp.replace(lib)
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return home


def install(label: str) -> types.ModuleType:
    """Put the stand-in of ``label`` into ``sys.modules`` under its module name (what
    tests/support/emulated-tensorrt does before it runs a command)."""
    trt = make_standin(label)
    sys.modules[GENERATIONS[label].module] = trt
    return trt


if __name__ == "__main__":  # pragma: no cover - a quick look: python tests/support/trt_standin.py 11.4
    mod = make_standin(sys.argv[1] if len(sys.argv) > 1 else "10.13-strong")
    print(mod.__emulated__, os.linesep.join(f"  {k}: {v}" for k, v in vars(mod._generation).items()))


#: The environment variable tests/support/emulated-tensorrt sets to the generation it emulates.
GEN_ENV = "ALBERT_IXRT_EMULATED_TRT"
_INSTALLED: dict = {}


def standin_for_import(module_name: str) -> types.ModuleType:
    """The stand-in a placeholder package (tests/support/emulated_site/<name>) becomes: the generation of
    $ALBERT_IXRT_EMULATED_TRT when its module is ``module_name``, else ImportError (an 8.6 stand-in
    has no ``ixrt`` module, the ixRT one no ``tensorrt``)."""
    label = os.environ.get(GEN_ENV, "")
    if label not in GENERATIONS:
        raise ImportError(f"no emulated TensorRT generation {label!r} (${GEN_ENV}; one of "
                          f"{', '.join(CLI_GENERATIONS)})")
    if GENERATIONS[label].module != module_name:
        raise ImportError(f"No module named {module_name!r} (emulated generation {label} provides "
                          f"{GENERATIONS[label].module!r})")
    if label not in _INSTALLED:
        _INSTALLED[label] = make_standin(label)
    return _INSTALLED[label]
