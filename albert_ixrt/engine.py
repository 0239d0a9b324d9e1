"""TensorRT / ixRT engines: build an FP16 engine from ONNX with one optimization profile, and
cache the serialized plan so a second run deserializes instead of rebuilding (minutes on a GPU).

Layers, from pure to thin (Polygraphy's split of loaders and runners):

- ``ShapeProfile``: min/opt/max batch and sequence length; the profile maths and the check that
  a feed fits, so a wrong shape fails with one sentence before it reaches TensorRT.
- ``EngineKey`` / ``EngineCache``: a plan is only valid for the ONNX bytes, TensorRT version,
  GPU, precision, profile and every builder setting (workspace, network flags, builder flags with
  TF32, typing, plugin library) it was built with, so all of them make the key.  A sidecar JSON holds
  the key and the plan's sha256 and is written last: a half-written or corrupt entry is
  detected, discarded and rebuilt, never deserialized blindly.
- ``TrtLibrary``: the thin layer over the ``tensorrt`` module (NVIDIA's, or Iluvatar ixRT's
  TensorRT-compatible module plus its plugin library).  Only documented TensorRT calls; which
  generation's calls (strong or weak typing, network flags) is asked of ``trt_api.TrtApi``,
  detected once by capability.  Unit tests replace the module with fakes derived from the real
  8.6 / 10.13 / 11.4 bindings' member lists (tests/unit/trt_fakes.py).
- ``load_or_build_engine``: the glue.
"""
from __future__ import annotations

import ctypes
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .config import CACHE_DIR, DEFAULT_SQUAD, REFERENCE_BATCH_SIZE
from .errors import AlbertIxrtError, BackendUnavailable, InputFileError
from .fileio import sha256_bytes, sha256_file, sha256_json, write_bytes_atomic, write_json_atomic
from .model import INPUT_NAMES
from .trt_api import IXRT_PLUGIN_DEFAULT, IXRT_PLUGIN_ENV  # noqa: F401 (re-exported; their home is trt_api)
from .trt_api import TrtApi, check_engine_precision, emulation_label, import_module, plugin_candidates

log = logging.getLogger(__name__)

#: Backends that share this code path: NVIDIA TensorRT and Iluvatar ixRT (TensorRT-compatible API).
FLAVOURS = ("tensorrt", "ixrt")
#: Precisions an engine is built in (int8 would need calibration data: not part of the reference row).
ENGINE_PRECISIONS = ("fp32", "fp16")
#: TensorRT builder workspace: BERT-base-sized attention at batch 16 x 384 fits comfortably.
DEFAULT_WORKSPACE_BYTES = 4 << 30
ENGINE_CACHE_DIR = CACHE_DIR / "engines"


class ShapeOutsideProfile(AlbertIxrtError, ValueError):
    """A feed's [batch, seq] lies outside the engine's optimization profile."""


# --------------------------------------------------------------------------------------------
# Profile maths
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapeProfile:
    """One TensorRT optimization profile for the three [batch, seq] inputs.

    TensorRT picks kernels for ``opt`` and accepts any shape between ``min`` and ``max``; the
    defaults cover batch 1..16 tuned for 16 (the reference row) and any sequence up to 384,
    tuned for 384, so both the benchmark and bucketed evaluation fit one engine.
    """

    min_batch: int = 1
    opt_batch: int = REFERENCE_BATCH_SIZE
    max_batch: int = REFERENCE_BATCH_SIZE
    min_seq: int = 1
    opt_seq: int = DEFAULT_SQUAD.max_seq_length
    max_seq: int = DEFAULT_SQUAD.max_seq_length

    def __post_init__(self):
        for what, lo, mid, hi in (("batch", self.min_batch, self.opt_batch, self.max_batch),
                                  ("sequence length", self.min_seq, self.opt_seq, self.max_seq)):
            if not 1 <= lo <= mid <= hi:
                raise ValueError(f"profile {what} must satisfy 1 <= min <= opt <= max, got {lo}/{mid}/{hi}")

    @classmethod
    def covering(cls, batch_sizes: Iterable[int], seq_lens: Iterable[int], *, opt_batch: int | None = None,
                 opt_seq: int | None = None, min_seq: int | None = None) -> "ShapeProfile":
        """The smallest profile holding every (batch, seq) pair asked for; tuned for the largest
        of each unless told otherwise (throughput is measured at the largest batch)."""
        batches, seqs = sorted(set(batch_sizes)), sorted(set(seq_lens))
        if not batches or not seqs:
            raise ValueError("a profile needs at least one batch size and one sequence length")
        return cls(min_batch=batches[0], opt_batch=opt_batch or batches[-1], max_batch=batches[-1],
                   min_seq=seqs[0] if min_seq is None else min_seq, opt_seq=opt_seq or seqs[-1], max_seq=seqs[-1])

    def triplet(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(min, opt, max) shapes of one [batch, seq] input."""
        return ((self.min_batch, self.min_seq), (self.opt_batch, self.opt_seq), (self.max_batch, self.max_seq))

    def input_shapes(self, names: Sequence[str] = INPUT_NAMES) -> dict[str, tuple]:
        """Per input name the (min, opt, max) triplet, as ``IOptimizationProfile.set_shape`` takes it."""
        return {name: self.triplet() for name in names}

    def contains(self, batch: int, seq: int) -> bool:
        return self.min_batch <= batch <= self.max_batch and self.min_seq <= seq <= self.max_seq

    def check(self, batch: int, seq: int) -> None:
        if not self.contains(batch, seq):
            raise ShapeOutsideProfile(
                f"input [batch={batch}, seq={seq}] is outside the engine's profile "
                f"(batch {self.min_batch}..{self.max_batch}, seq {self.min_seq}..{self.max_seq}); rebuild with a "
                "profile that covers it (e.g. --batch-size/--seq-len of the bench command)")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_feeds(cls, batch_sizes: Iterable[int], max_seq: int) -> "ShapeProfile":
        """The profile of a run that feeds batches of up to each of ``batch_sizes`` (a last batch may
        be smaller, down to 1) padded to any length up to ``max_seq``: decided before the build, so a
        shape the run will feed can never be refused after minutes of building."""
        sizes = [int(b) for b in batch_sizes]
        if not sizes or min(sizes) < 1 or max_seq < 1:
            raise ValueError(f"a profile needs batch sizes >= 1 and a length >= 1, got {sizes} / {max_seq}")
        return cls.covering([1, *sizes], [1, max_seq])

    def label(self) -> str:
        return (f"batch {self.min_batch}/{self.opt_batch}/{self.max_batch}, "
                f"seq {self.min_seq}/{self.opt_seq}/{self.max_seq} (min/opt/max)")


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized plan depends on.  Change any field and the plan must be rebuilt."""

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    precision: str
    profile: ShapeProfile
    flavour: str = "tensorrt"
    typing: str = "weak"     # trt_api.STRONG (precision from the graph) or WEAK (from BuilderFlag.FP16)
    graph: str = ""          # file name of the ONNX graph the engine was built from
    #: Every builder setting (``TrtLibrary.builder_settings``): workspace, network flags, builder
    #: flags (TF32 among them), plugin library.  A change of any of them is another plan.
    build_settings: tuple = ()

    def as_dict(self) -> dict:
        return {"onnx_sha256": self.onnx_sha256, "trt_version": self.trt_version, "gpu_name": self.gpu_name,
                "precision": self.precision, "profile": self.profile.as_dict(), "flavour": self.flavour,
                "typing": self.typing, "graph": self.graph,
                "build_settings": {k: list(v) if isinstance(v, tuple) else v for k, v in self.build_settings}}

    def digest(self) -> str:
        return sha256_json(self.as_dict())

    def stem(self) -> str:
        """A file name a person can read (flavour, precision, batch/seq max) and a unique hash."""
        p = self.profile
        return f"{self.flavour}-{self.precision}-b{p.max_batch}-s{p.max_seq}-{self.digest()[:16]}"


class EngineCache:
    """Serialized plans on disk: ``<stem>.plan`` plus ``<stem>.json`` (the key and the plan's
    sha256).  Both are written atomically, the JSON last, so it marks a finished entry."""

    def __init__(self, root: str | os.PathLike = ENGINE_CACHE_DIR):
        self.root = Path(root)

    def plan_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem()}.plan"

    def meta_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem()}.json"

    def lookup(self, key: EngineKey) -> bytes | None:
        """The cached plan, or None when absent; an entry that fails its checks is discarded."""
        plan_path, meta_path = self.plan_path(key), self.meta_path(key)
        if not meta_path.is_file():
            return None
        problem = self._problem(key, plan_path, meta_path)
        if problem:
            log.warning("engine cache entry %s discarded: %s", plan_path.name, problem)
            self.discard(key)
            return None
        return plan_path.read_bytes()

    @staticmethod
    def _problem(key: EngineKey, plan_path: Path, meta_path: Path) -> str | None:
        import json

        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return f"unreadable metadata ({exc})"
        if not isinstance(meta, dict) or meta.get("key") != key.as_dict():
            return "metadata describes another build"
        if not plan_path.is_file():
            return "plan file missing"
        if sha256_file(plan_path) != meta.get("plan_sha256"):
            return "plan bytes do not match their recorded sha256 (truncated or corrupt)"
        return None

    def store(self, key: EngineKey, plan: bytes, **extra: Any) -> Path:
        write_bytes_atomic(self.plan_path(key), plan)
        write_json_atomic(self.meta_path(key), {"key": key.as_dict(), "plan_sha256": sha256_bytes(plan),
                                                "plan_bytes": len(plan), **extra})
        return self.plan_path(key)

    def discard(self, key: EngineKey) -> None:
        for p in (self.meta_path(key), self.plan_path(key)):
            p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The thin TensorRT layer
# --------------------------------------------------------------------------------------------
def import_tensorrt(flavour: str):
    """The TensorRT-API module of ``flavour`` (``trt_api.MODULE_NAMES``: ixRT's ``ixrt``, or the
    ``tensorrt`` of older ixRT SDKs), or ``BackendUnavailable`` saying why not."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    try:
        trt, _ = import_module(flavour)
    except ImportError as exc:
        what = ("Iluvatar ixRT's Python module (ixrt, or tensorrt in older SDKs)" if flavour == "ixrt"
                else "TensorRT (pip install '.[gpu-cu12]' or '.[gpu-cu13]', matching torch's CUDA)")
        raise BackendUnavailable(flavour, f"{what} is not importable here ({exc})") from None
    return trt


def major_version(version: str) -> int:
    """The leading number of a version string (for reports; capabilities decide behaviour)."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def resolve_plugin_path(option: str | None, trt=None) -> str:
    """ixRT's plugin library: the option, else the library beside the imported module, else
    $IXRT_PLUGIN_PATH, else the bare soname (found through the loader's search path)."""
    return plugin_candidates(option, getattr(trt, "__file__", None), os.environ)[0]


def load_plugin_library(path: str, flavour: str = "ixrt", loader=ctypes.CDLL):
    """Load a plugin library globally so TensorRT's plugin registry sees its creators."""
    try:
        return loader(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise BackendUnavailable(flavour, f"cannot load plugin library {path!r} ({exc}); set ${IXRT_PLUGIN_ENV} "
                                          "or pass --plugin") from None


class TrtLibrary:
    """The ``tensorrt`` module wrapped with the few calls this project needs."""

    def __init__(self, trt, flavour: str = "tensorrt", device_name: str = "unknown GPU",
                 workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, tf32: bool = False, plugin: str | None = None):
        self.trt = trt
        self.flavour = flavour
        self.version = str(getattr(trt, "__version__", "unknown"))
        self.device_name = device_name
        self.workspace_bytes = workspace_bytes
        self.tf32 = tf32          # fp32 engines: TF32 MatMuls only when asked (--tf32); cleared otherwise
        self.plugin = plugin      # the plugin library loaded for it (ixRT), part of the cache key
        self.api = TrtApi.detect(trt, flavour)
        self.emulated = emulation_label(trt)
        self.logger = trt.Logger(trt.Logger.WARNING)

    @property
    def label(self) -> str:
        """What built and runs the engines, as reports and JSON name it."""
        name = "ixRT" if self.flavour == "ixrt" else "TensorRT"
        return self.emulated or f"{name} {self.version}"

    @classmethod
    def load(cls, flavour: str = "tensorrt", plugin_path: str | None = None, device_name: str = "unknown GPU",
             **kw) -> "TrtLibrary":
        trt = import_tensorrt(flavour)
        problem = TrtApi.detect(trt, flavour).unavailable_reason()
        if problem:
            raise BackendUnavailable(flavour, f"the {getattr(trt, '__name__', 'tensorrt')} module "
                                              f"{getattr(trt, '__version__', '?')} found cannot be used: {problem}")
        plugin = None
        if flavour == "ixrt":  # RTLD_GLOBAL, before the registry is initialised, so it sees the creators
            plugin = resolve_plugin_path(plugin_path, trt)
            load_plugin_library(plugin, flavour)
        lib = cls(trt, flavour, device_name, plugin=plugin, **kw)
        if lib.api.has_init_plugins:
            trt.init_libnvinfer_plugins(lib.logger, "")
        return lib

    def builder_flags(self, precision: str) -> tuple[str, ...]:
        """The BuilderFlag names set on the config: FP16 for a weakly typed fp16 build; TF32 only
        when asked (every real IBuilderConfig starts with TF32 set; Polygraphy clears it unless
        --tf32, and so does this builder, so an "fp32" engine computes its MatMuls in fp32)."""
        flags = []
        if precision == "fp16" and self.api.uses_fp16_flag:  # strong typing: the graph's types decide
            flags.append("FP16")
        if self.api.has_tf32_flag and self.tf32:
            flags.append("TF32")
        return tuple(flags)

    def builder_settings(self, precision: str) -> tuple:
        """Every setting the builder is given, as the engine cache key records it."""
        plugin = self.plugin
        if plugin and Path(plugin).is_file():
            plugin = f"{plugin} sha256:{sha256_file(plugin)[:16]}"
        return (("workspace", self.workspace_bytes if self.api.has_memory_pool else None),
                ("network_flags", self.api.network_flags), ("builder_flags", self.builder_flags(precision)),
                ("typing", self.api.typing), ("plugin", plugin), ("emulated", self.emulated))

    def _dims(self, shape):
        """``trt.Dims`` where the module has it (ixRT's set_shape takes only Dims), else a tuple."""
        return self.trt.Dims(tuple(shape)) if self.api.has_dims else tuple(shape)

    def build(self, onnx_path: str | os.PathLike, profile: ShapeProfile, precision: str,
              input_names: Sequence[str] = INPUT_NAMES) -> bytes:
        """Parse the ONNX file and build a serialized engine (documented TensorRT builder API)."""
        trt = self.trt
        if precision not in ENGINE_PRECISIONS:
            raise ValueError(f"engine precision must be one of {ENGINE_PRECISIONS}, got {precision!r}")
        check_engine_precision(self.api, onnx_path, precision, self.version)
        builder = trt.Builder(self.logger)
        network = builder.create_network(self.api.network_flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise AlbertIxrtError(f"{onnx_path}: TensorRT's ONNX parser failed: {'; '.join(errors) or 'no detail'}")
        config = builder.create_builder_config()
        if self.api.has_memory_pool:  # no public ixRT code sets a pool limit; its 8-style module may lack it
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        flags = self.builder_flags(precision)
        if self.api.has_tf32_flag and "TF32" not in flags:
            config.clear_flag(trt.BuilderFlag.TF32)  # on by default in every real IBuilderConfig
        for flag in flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        opt_profile = builder.create_optimization_profile()
        for name, (lo, mid, hi) in profile.input_shapes(input_names).items():
            opt_profile.set_shape(name, self._dims(lo), self._dims(mid), self._dims(hi))
        config.add_optimization_profile(opt_profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise AlbertIxrtError(f"{onnx_path}: TensorRT could not build an engine (see the TensorRT log above)")
        return bytes(plan)

    def deserialize(self, plan: bytes):
        runtime = self.trt.Runtime(self.logger)
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise AlbertIxrtError("TensorRT could not deserialize the engine plan")
        self._runtime = runtime  # the runtime must outlive its engines
        return engine


@dataclass
class EngineInfo:
    """How the engine came to be: recorded by the runner's ``describe()``."""

    key: EngineKey
    plan_path: Path
    source: str           # "built" | "cache" | "rebuilt (corrupt cache entry)"
    build_seconds: float = 0.0


def engine_key(lib: TrtLibrary, onnx_path: str | os.PathLike, profile: ShapeProfile, precision: str) -> EngineKey:
    return EngineKey(onnx_sha256=sha256_file(onnx_path), trt_version=lib.version, gpu_name=lib.device_name,
                     precision=precision, profile=profile, flavour=lib.flavour, typing=lib.api.typing,
                     graph=Path(onnx_path).name, build_settings=lib.builder_settings(precision))


def load_or_build_engine(lib: TrtLibrary, onnx_path: str | os.PathLike, profile: ShapeProfile, precision: str,
                         cache: EngineCache, input_names: Sequence[str] = INPUT_NAMES):
    """(engine, EngineInfo): the cached plan when it is intact and deserializes, else a fresh build."""
    if not Path(onnx_path).is_file():
        raise InputFileError(onnx_path, "ONNX file not found")
    if precision not in ENGINE_PRECISIONS:
        raise ValueError(f"engine precision must be one of {ENGINE_PRECISIONS}, got {precision!r}")
    check_engine_precision(lib.api, onnx_path, precision, lib.version)  # before a cached plan is trusted
    key = engine_key(lib, onnx_path, profile, precision)
    plan = cache.lookup(key)
    source = "built"
    if plan is not None:
        try:
            return lib.deserialize(plan), EngineInfo(key, cache.plan_path(key), "cache")
        except Exception as exc:  # a plan TensorRT rejects is as good as missing: rebuild it
            log.warning("cached engine %s does not deserialize (%s); rebuilding", cache.plan_path(key).name, exc)
            cache.discard(key)
            source = "rebuilt (corrupt cache entry)"
    t0 = time.perf_counter()
    plan = lib.build(onnx_path, profile, precision, input_names)
    seconds = time.perf_counter() - t0
    path = cache.store(key, plan, build_seconds=round(seconds, 3), api=lib.api.as_dict())
    return lib.deserialize(plan), EngineInfo(key, path, source, seconds)
