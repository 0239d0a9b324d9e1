"""ONNX Runtime: an ``.onnx`` file on the CPU here, on CUDA / TensorRT execution providers where
onnxruntime-gpu is installed.

Precision follows the graph, never the other way round: ``fp32`` runs an fp32 graph, ``fp16`` the
fp16 graph the exporter writes (its weights are float16), ``int8`` the dynamic quantisation of an
fp32 graph (``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations quantised
per batch at run time), cached next to the source graph under a name holding the source's hash,
so a changed graph is never paired with a stale quantisation.  Asking for a precision the graph
does not hold is an error, not a silent fp32 run.

Threads and the graph optimisation level change the numbers, so ``describe()`` records both.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from ..config import CACHE_DIR
from ..errors import BackendUnavailable, InputFileError
from ..onnx_graph import load_onnx
from ..fileio import atomic_path, sha256_file
from ..model import INPUT_NAMES, OUTPUT_NAMES
from ..trt_api import graph_precision
from .base import Feed, Runner, check_feed, register

log = logging.getLogger(__name__)

ORT_PRECISIONS = ("fp32", "fp16", "int8")
#: User-facing names of onnxruntime's graph optimisation levels.
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                       "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
#: Execution providers per ``provider`` choice, in onnxruntime's priority order.
PROVIDER_CHAINS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
#: int8 dynamic quantisation settings: signed int8 weights, one scale per tensor (what the
#: cpu_speed table measured).  They are part of the cached file's name.
INT8_SETTINGS = {"weight_type": "QInt8", "per_channel": False, "reduce_range": False}
_ONNX_TO_NUMPY = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
                  "tensor(float16)": np.float16}


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable("onnxruntime", f"onnxruntime is not installed ({exc})") from None
    return onnxruntime


def choose_providers(provider: str, available: list[str]) -> list[str]:
    """The provider chain for ``provider`` ("auto", "cpu", "cuda", "tensorrt"), or
    ``BackendUnavailable`` naming what is missing.  "auto" takes CUDA when it is there."""
    if provider == "auto":
        provider = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if provider not in PROVIDER_CHAINS:
        raise BackendUnavailable("onnxruntime", f"unknown provider {provider!r}; choose auto, "
                                                f"{', '.join(PROVIDER_CHAINS)}")
    wanted = PROVIDER_CHAINS[provider][0]
    if wanted not in available:
        raise BackendUnavailable("onnxruntime", f"{wanted} is not in this onnxruntime build (has "
                                                f"{', '.join(available)}); install onnxruntime-gpu")
    return [p for p in PROVIDER_CHAINS[provider] if p in available]


def graph_float_type(onnx_path: str | os.PathLike) -> str:
    """"fp16" when ``trt_api.graph_precision`` (the rule engines are judged by: at least
    ``config.FP16_GRAPH_MIN_SHARE`` of the float constants 16-bit, by element) says so, else "fp32"
    (a "mixed" graph too; weights not loaded)."""
    return "fp16" if graph_precision(onnx_path) == "fp16" else "fp32"


def int8_path_for(onnx_path: Path, source_sha256: str) -> Path:
    """Where the int8 quantisation of ``onnx_path`` lives: beside it, named by the source's hash
    and the quantisation settings."""
    flags = "".join(f"-{k}" for k in ("per_channel", "reduce_range") if INT8_SETTINGS[k])
    return onnx_path.with_name(f"{onnx_path.stem}.int8{flags}-{source_sha256[:12]}.onnx")


#: onnxruntime's quantizer logs this on the root logger for every graph not run through its
#: ``quant_pre_process`` (symbolic shape inference + graph optimisation).  The advice does not apply
#: here: the graph is already optimised by onnxruntime's own transformer fusion (model.fused.onnx),
#: and symbolic shape inference does not know the fused contrib ops (hence DefaultTensorType below).
PREPROCESS_ADVICE = "pre-processing before quantization"


class _DropPreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return PREPROCESS_ADVICE not in record.getMessage()


@contextlib.contextmanager
def _without_preprocess_advice():
    """Only that one warning is dropped, and only while quantising; every other record passes."""
    root, only = logging.getLogger(), _DropPreprocessAdvice()
    root.addFilter(only)
    try:
        yield
    finally:
        root.removeFilter(only)


def quantize_int8(onnx_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """(path of the int8 graph, whether it came from the cache).  Written atomically beside the
    source graph, or under ``cache_dir`` (default: the user cache) when that folder is read-only."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = Path(onnx_path)
    if graph_float_type(src) != "fp32":
        raise InputFileError(src, "int8 dynamic quantisation needs the fp32 graph, this one holds fp16 weights")
    dest = int8_path_for(src, sha256_file(src))
    if not os.access(src.parent, os.W_OK):
        dest = Path(cache_dir or CACHE_DIR / "int8") / dest.name
    if dest.is_file():
        return dest, True
    log.info("quantising %s -> %s", src.name, dest.name)
    with atomic_path(dest) as tmp, _without_preprocess_advice():
        quantize_dynamic(src, tmp, weight_type=getattr(QuantType, INT8_SETTINGS["weight_type"]),
                         per_channel=INT8_SETTINGS["per_channel"], reduce_range=INT8_SETTINGS["reduce_range"],
                         # ORT's contrib ops (fused Attention etc.) defeat shape inference: say outputs are float
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return dest, False


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike, precision: str = "fp32", provider: str = "auto",
                 intra_op_threads: int | None = None, graph_optimization_level: str = "all",
                 int8_cache_dir: str | os.PathLike | None = None):
        ort = _ort()
        path = Path(onnx_path)
        load_onnx(path)  # a missing, empty, truncated or corrupt file -> one clear error naming it
        if precision not in ORT_PRECISIONS:
            raise BackendUnavailable("onnxruntime",
                                     f"precision {precision!r} not supported ({', '.join(ORT_PRECISIONS)})")
        if graph_optimization_level not in OPTIMIZATION_LEVELS:
            raise ValueError(f"graph_optimization_level must be one of {list(OPTIMIZATION_LEVELS)}")
        self.precision = precision
        self.source_path = path
        self.int8_cached = None
        self.model_path = self._graph_for(path, precision, int8_cache_dir)
        self.providers = choose_providers(provider, ort.get_available_providers())
        self.intra_op_threads = intra_op_threads or len(os.sched_getaffinity(0))
        self.graph_optimization_level = graph_optimization_level
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        level = OPTIMIZATION_LEVELS[graph_optimization_level]
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        self.session = ort.InferenceSession(str(self.model_path), opts, providers=self.providers)
        self._ort = ort
        self.input_types = {i.name: _ONNX_TO_NUMPY.get(i.type, np.int64) for i in self.session.get_inputs()}
        missing = [n for n in INPUT_NAMES if n not in self.input_types]
        if missing:
            raise InputFileError(path, f"graph inputs {list(self.input_types)} lack {missing}")
        self.device = "cpu" if self.providers[0] == "CPUExecutionProvider" else "cuda"

    def _graph_for(self, path: Path, precision: str, int8_cache_dir) -> Path:
        held = graph_float_type(path)
        if precision == "int8":
            quantized, self.int8_cached = quantize_int8(path, int8_cache_dir)
            return quantized
        if held != precision:
            raise InputFileError(path, f"precision {precision} asked for, but this graph holds {held} weights; "
                                       f"pass the {precision} graph (the exporter writes one per precision)")
        return path

    # -- the runner interface -------------------------------------------------------------------
    def _cast(self, feed: Feed) -> dict[str, np.ndarray]:
        check_feed(feed)
        return {n: np.ascontiguousarray(feed[n], dtype=self.input_types[n]) for n in INPUT_NAMES}

    def infer(self, feed: Feed) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(list(OUTPUT_NAMES), self._cast(feed))
        return start.astype(np.float32, copy=False), end.astype(np.float32, copy=False)

    def to_device(self, feed: Feed):
        """Inputs as OrtValues on the session's device (the copy the benchmark can time apart)."""
        device = "cuda" if self.device == "cuda" else "cpu"
        return {n: self._ort.OrtValue.ortvalue_from_numpy(a, device, 0) for n, a in self._cast(feed).items()}

    def infer_tensors(self, values):
        """Run on OrtValues already on the device; outputs stay there."""
        return self.session.run_with_ort_values(list(OUTPUT_NAMES), values)

    def describe(self) -> dict:
        return {"backend": self.name, "precision": self.precision, "device": self.device,
                "providers": self.session.get_providers(), "intra_op_threads": self.intra_op_threads,
                "graph_optimization_level": self.graph_optimization_level, "onnxruntime": self._ort.__version__,
                "onnx": str(self.model_path), "source_onnx": str(self.source_path),
                **({"int8": {**INT8_SETTINGS, "cached": self.int8_cached}} if self.precision == "int8" else {})}


@register("onnxruntime")
def _make(onnx_path=None, precision: str = "fp32", provider: str | None = None, device: str = "auto",
          intra_op_threads: int | None = None, threads: int | None = None, graph_optimization_level: str = "all",
          int8_cache_dir=None, **_ignored) -> OnnxRuntimeRunner:
    if onnx_path is None:
        raise BackendUnavailable("onnxruntime", "needs an ONNX file (onnx_path)")
    return OnnxRuntimeRunner(onnx_path, precision=precision, provider=provider or device,
                             intra_op_threads=intra_op_threads or threads,
                             graph_optimization_level=graph_optimization_level, int8_cache_dir=int8_cache_dir)
