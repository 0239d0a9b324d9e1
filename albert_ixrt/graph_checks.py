"""Static checks of a converted graph: is it valid ONNX, does it keep the engine's interface, is it
free of training-only ops, and can TensorRT's (or ixRT's) ONNX parser take every op?

Which graph goes to which engine (decided here, recorded in the conversion manifest):

* **TensorRT / ixRT build from the simplified graph** (``model.sim.onnx``): standard ONNX ops at
  opset 17 only, with native LayerNormalization; the engine builder does its own fusions
  (multi-head attention, LayerNorm, GELU) and picks precisions itself.
* **onnxruntime runs the fused graph** (``model.fused.onnx`` and its FP16 twin): its
  ``com.microsoft`` contrib ops (Attention, SkipLayerNormalization, FastGelu, ...) are kernels of
  onnxruntime, not ONNX ops; TensorRT's parser would need plugins for them.  They are therefore
  reported separately (``contrib_ops``), and are problems only when the target is TensorRT.
* The fused Attention takes ``mask_index`` = ReduceSum(attention_mask), i.e. it assumes
  right-padded masks (ones then zeros), which is what every SQuAD feature is.
"""
from __future__ import annotations

import collections
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .model import INPUT_NAMES, OUTPUT_NAMES

#: Expected engine interface: int64 token inputs, fp32 logits, dims [batch, sequence].
INPUT_DTYPE = "int64"
OUTPUT_DTYPE = "float32"
DYNAMIC_AXES = ("batch", "sequence")

#: Highest default-domain opset each TensorRT generation's ONNX parser reads (generation by
#: capability: trt_api.TrtApi.generation; within 11.x by version, see ``trt_max_opset``).
#: 8 (TensorRT 8.6): onnx-tensorrt release/8.6 docs/operators.md, "TensorRT 8.6 supports operators up
#:   to Opset 17";
#: 10: onnx-tensorrt README of release/10.0, "opset 9 to opset 20" (later 10.x may read more:
#:   conservative);
#: 11: NVIDIA TensorRT docs, ONNX Opset Guide (reference/onnx-opset-guide.html): opset 25 arrived in
#:   TensorRT 11.5; 11.0-11.4 read at most 24 (``TRT_11_OPSET25_FROM``).
#: ixRT: none of these.  Iluvatar's ixrtexec down-converts every model to opset 11 before parsing, and
#:   ixRT publishes no ceiling of its own, so TensorRT's ceilings say nothing about it: not checked
#:   (``trt_max_opset`` returns None), and the report says so.
#: Our export stays at 17 (see export.EXPORTER_REASON), which every TensorRT generation reads.
TRT_MAX_OPSET_BY_GENERATION = {8: 17, 10: 20, 11: 24}
TRT_11_OPSET25_FROM, TRT_11_LATE_MAX_OPSET = (11, 5), 25


def trt_max_opset(generation: int, version: str = "", flavour: str = "tensorrt") -> int | None:
    """The highest opset the parser of this TensorRT reads, or None where none is published (ixRT)."""
    if flavour == "ixrt":
        return None
    if generation == 11:
        try:
            major, minor = (int(p) for p in str(version).split(".")[:2])
        except ValueError:
            major = minor = None
        if major is not None and (major, minor) >= TRT_11_OPSET25_FROM:
            return TRT_11_LATE_MAX_OPSET
    return TRT_MAX_OPSET_BY_GENERATION[generation]


#: Without an importable TensorRT: checked for 10.x (what the CUDA 12 `gpu` extra installs).
DEFAULT_TRT_GENERATION = 10
TRT_MAX_OPSET = TRT_MAX_OPSET_BY_GENERATION[DEFAULT_TRT_GENERATION]

#: ONNX ops TensorRT's ONNX parser (onnx-tensorrt, ``docs/operators.md``) marks supported.
#: Source: github.com/onnx/onnx-tensorrt docs/operators.md, release/10.x; the TensorRT 8.5 version
#: of the same file (commit 6d0ab7b, "up to Opset 17") lists the same set except
#: LayerNormalization (native from TensorRT 8.6 on), Gelu/GroupNormalization/Mish (later opsets)
#: and the window ops.  Only names are listed: per-op restrictions that matter for this model
#: (constant axes of Slice/Squeeze/Unsqueeze) are checked separately below.
TRT_PARSER_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
BlackmanWindow Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
CumSum DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten
Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish
Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less
LessOrEqual Log LogSoftmax Loop LpNormalization LpPool LRN LSTM MatMul Max MaxPool Mean
MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN
RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

#: Per op, the input the parser needs as a constant: ``axes`` (operators.md restrictions; Slice's
#: starts and ends may be computed, as they are for a dynamic sequence length).
TRT_CONSTANT_AXES = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1}

#: Training-only ops: losses, optimisers, gradients.  Dropout is checked apart (legal at
#: inference only when its training_mode is absent or a constant false).
TRAINING_ONLY_OPS = frozenset({
    "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss", "Gradient", "Momentum", "Adagrad", "Adam",
    "ZeroGradient", "InPlaceAccumulator", "BiasDropout", "BitmaskDropout", "BitmaskBiasDropout",
})
TRAINING_DOMAINS = frozenset({"ai.onnx.preview.training"})
ORT_CONTRIB_DOMAIN = "com.microsoft"


@dataclass
class GraphReport:
    """What a graph holds and what is wrong with it for ``target`` ("tensorrt" or "onnxruntime")."""

    target: str
    opset: int | None
    problems: list[str] = field(default_factory=list)
    contrib_ops: dict[str, int] = field(default_factory=dict)
    unsupported_trt_ops: dict[str, int] = field(default_factory=dict)
    trt_generation: int | None = None       # the TensorRT generation op coverage was judged for
    trt_op_source: str = ""                 # the static operators.md list, or a real parser

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        out = {"target": self.target, "opset": self.opset, "ok": self.ok, "problems": self.problems,
               "contrib_ops": self.contrib_ops, "unsupported_trt_ops": self.unsupported_trt_ops}
        if self.trt_generation is not None:
            out.update(trt_generation=self.trt_generation, trt_op_source=self.trt_op_source)
        return out


@dataclass(frozen=True)
class TrtParserInfo:
    """Which TensorRT parser the op coverage is judged against."""

    generation: int
    supports: Callable[[str], bool] | None = None   # OnnxParser.supports_operator of a real TensorRT
    source: str = "onnx-tensorrt operators.md list"
    version: str = ""
    flavour: str = "tensorrt"

    @property
    def max_opset(self) -> int | None:
        return trt_max_opset(self.generation, self.version, self.flavour)


def trt_parser_info(trt=None, generation: int | None = None) -> TrtParserInfo:
    """The parser of ``trt`` (a ``tensorrt`` module), else of the importable TensorRT, else the
    static list for ``generation`` (default DEFAULT_TRT_GENERATION)."""
    if trt is None:
        return _installed_parser_info(generation)
    from .trt_api import TrtApi

    flavour = "ixrt" if getattr(trt, "__name__", "") == "ixrt" else "tensorrt"
    api = TrtApi.detect(trt, flavour)
    generation = generation or api.generation
    version = str(getattr(trt, "__version__", ""))
    if not api.has_supports_operator:
        return TrtParserInfo(generation, version=version, flavour=flavour)
    try:  # a parser needs a network, hence a builder, hence usually a GPU: without one, the list
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(api.network_flags)
        parser = trt.OnnxParser(network, logger)
    except Exception:  # noqa: BLE001 (CUDA initialisation failures come as several types)
        return TrtParserInfo(generation, version=version, flavour=flavour)
    keep = (builder, network, parser)  # the parser must outlive its network and builder

    def supports(op: str, _keep=keep) -> bool:
        return bool(_keep[2].supports_operator(op))

    return TrtParserInfo(generation, supports, f"OnnxParser.supports_operator (TensorRT {version or '?'})",
                         version, flavour)


@functools.lru_cache(maxsize=None)
def _installed_parser_info(generation: int | None) -> TrtParserInfo:
    try:
        import tensorrt as trt  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return TrtParserInfo(generation or DEFAULT_TRT_GENERATION)
    return trt_parser_info(trt, generation)


def check_graph(model_or_path, *, target: str = "tensorrt", expected_opset: int | None = None,
                trt_generation: int | None = None, trt=None) -> GraphReport:
    """Run every check; ``target="tensorrt"`` also demands parser-supported ops only, judged by
    ``trt``'s (or the importable TensorRT's) ``OnnxParser.supports_operator`` when one can be
    made, else by the operators.md list, with the opset ceiling of ``trt_generation``."""
    if target not in ("tensorrt", "onnxruntime"):
        raise ValueError(f"target must be 'tensorrt' or 'onnxruntime', got {target!r}")
    model = _as_model(model_or_path)
    report = GraphReport(target, default_opset(model))
    report.problems += checker_problems(model)
    report.problems += interface_problems(model)
    report.problems += training_op_problems(model)
    report.problems += opset_problems(model, expected_opset)
    report.contrib_ops = contrib_op_counts(model)
    report.unsupported_trt_ops = unsupported_trt_ops(model)
    if target == "tensorrt":
        parser = trt_parser_info(trt, trt_generation)
        report.trt_generation, report.trt_op_source = parser.generation, parser.source
        if parser.supports is not None:
            report.unsupported_trt_ops = unsupported_trt_ops(model, parser.supports)
        report.problems += trt_problems(model, report, parser.max_opset)
    return report


def _as_model(model_or_path):
    if isinstance(model_or_path, (str, Path)):
        from .onnx_graph import load_onnx

        return load_onnx(model_or_path, check=False)
    return model_or_path


def default_opset(model) -> int | None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return None


def checker_problems(model) -> list[str]:
    """onnx.checker with full_check (strict shape inference included)."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return [f"ONNX checker: {str(exc).strip().splitlines()[0]}"]
    return []


def interface_problems(model) -> list[str]:
    """Names, order, dtypes and dynamic [batch, sequence] dims of the inputs and outputs."""
    problems = []
    for kind, values, names, dtype in (("input", model.graph.input, INPUT_NAMES, INPUT_DTYPE),
                                       ("output", model.graph.output, OUTPUT_NAMES, OUTPUT_DTYPE)):
        got = [v.name for v in values]
        if got != list(names):
            problems.append(f"{kind}s are {got}, expected {list(names)}")
        for v in values:
            problems += value_problems(kind, v, dtype)
    return problems


def value_problems(kind: str, value, dtype: str) -> list[str]:
    import onnx

    tensor_type = value.type.tensor_type
    got_dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name if tensor_type.elem_type else "?"
    problems = []
    if got_dtype != dtype:
        problems.append(f"{kind} {value.name!r} is {got_dtype}, expected {dtype}")
    dims = list(tensor_type.shape.dim)
    if len(dims) != 2:
        return problems + [f"{kind} {value.name!r} has rank {len(dims)}, expected 2 [batch, sequence]"]
    for axis, (dim, expected) in enumerate(zip(dims, DYNAMIC_AXES)):
        if dim.HasField("dim_value"):
            problems.append(f"{kind} {value.name!r} axis {axis} is fixed to {dim.dim_value}, expected dynamic "
                            f"{expected!r}")
        elif dim.dim_param != expected:
            problems.append(f"{kind} {value.name!r} axis {axis} is {dim.dim_param!r}, expected {expected!r}")
    return problems


def training_op_problems(model) -> list[str]:
    problems = []
    constants = constant_values(model)
    for node in model.graph.node:
        if node.domain in TRAINING_DOMAINS or node.op_type in TRAINING_ONLY_OPS or node.op_type.endswith("Grad"):
            problems.append(f"training-only op {node.op_type} ({node.name or 'unnamed'})")
        elif node.op_type == "Dropout" and dropout_in_training_mode(node, constants):
            problems.append(f"Dropout {node.name or 'unnamed'} is in training mode")
        elif node.op_type == "BatchNormalization" and any(a.name == "training_mode" and a.i for a in node.attribute):
            problems.append(f"BatchNormalization {node.name or 'unnamed'} is in training mode")
    return problems


def dropout_in_training_mode(node, constants: dict) -> bool:
    """Opset >= 12: input 2 (training_mode); absent or constant false means inference."""
    if len(node.input) < 3 or not node.input[2]:
        return False
    value = constants.get(node.input[2])
    return value is None or bool(value.reshape(-1)[0])


def constant_values(model) -> dict:
    """Initializers and Constant-node outputs, as numpy arrays, by tensor name."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def opset_problems(model, expected: int | None) -> list[str]:
    got = default_opset(model)
    if expected is not None and got != expected:
        return [f"default-domain opset is {got}, expected {expected}"]
    return []


def contrib_op_counts(model) -> dict[str, int]:
    counts = collections.Counter(n.op_type for n in model.graph.node if n.domain == ORT_CONTRIB_DOMAIN)
    return dict(sorted(counts.items()))


def unsupported_trt_ops(model, supports: Callable[[str], bool] | None = None) -> dict[str, int]:
    """Ops TensorRT's ONNX parser cannot take (custom-domain ops as ``domain:Op``): by the parser's
    own ``supports`` when given, else by the operators.md list."""
    counts = collections.Counter()
    known = supports or TRT_PARSER_OPS.__contains__
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            counts[f"{node.domain}:{node.op_type}"] += 1
        elif not known(node.op_type):
            counts[node.op_type] += 1
    return dict(sorted(counts.items()))


def trt_problems(model, report: GraphReport, max_opset: int | None = TRT_MAX_OPSET) -> list[str]:
    problems = []
    if report.opset is not None and max_opset is not None and report.opset > max_opset:
        problems.append(f"opset {report.opset} is above {max_opset}, the highest TensorRT "
                        f"{report.trt_generation or DEFAULT_TRT_GENERATION}.x's ONNX parser reads")
    if report.unsupported_trt_ops:
        listed = ", ".join(f"{k} x{v}" for k, v in report.unsupported_trt_ops.items())
        problems.append(f"ops TensorRT's ONNX parser does not support: {listed} (build TensorRT engines from the "
                        "simplified graph, not the onnxruntime-fused one)")
    problems += non_constant_axes(model)
    return problems


def non_constant_axes(model) -> list[str]:
    constant_names = {t.name for t in model.graph.initializer}
    constant_names |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    problems = []
    for node in model.graph.node:
        index = TRT_CONSTANT_AXES.get(node.op_type)
        if index is not None and index < len(node.input) and node.input[index] \
                and node.input[index] not in constant_names:
            problems.append(f"{node.op_type} {node.name or 'unnamed'}: axes input {node.input[index]!r} must be "
                            "a constant for TensorRT")
    return problems
