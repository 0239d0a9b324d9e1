"""A prebuilt TensorRT / ixRT engine plan as the subject: deserialise a user's plan file with the
runtime present and check it before any feature is fed (Polygraphy's ``EngineFromBytes``, plus the
checks this suite needs).  Every refusal is one line naming the plan file:

- the runtime refuses the plan (``deserialize_cuda_engine`` returns None or raises: another TensorRT
  version, another GPU, or bytes that are no plan): the line names the TensorRT version that built
  the plan where its header says it (TensorRT's documented preamble, read as ``trtexec
  --getPlanVersionOnly`` reads it: u32 tag ``PLAN_TAG`` ("ftrt"), u32 serialization version 0, the
  version as four bytes at offsets 24..27) and the runtime's version.  ixRT's plan header is not
  published (its runtime checks an ``IXRT_MAGIC_NUMBER``), so an ixRT plan's version is never guessed;
- the I/O against the QA interface: inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` of
  rank 2 [batch, seq] with an integer type, outputs ``start_logits``, ``end_logits`` of rank 2 with a
  float type; the line names the offending tensor;
- the optimisation profile against the shapes a session will feed (``check_plan_covers``): the line
  names the tensor and the batch sizes / lengths it cannot run.

The precision is read from the engine where its I/O tells: fp16 (or bf16) outputs make an fp16
(bf16) engine; float32 outputs do not tell (an fp32 engine, or fp16 inside with fp32 I/O, as weak
typing and ``keep_io_types`` graphs build), so the precision is "unknown" unless the caller states it,
and ``PlanInfo.precision_source`` says which.  The engine's layer information is not read: its
precisions are only there in plans built with ``ProfilingVerbosity.DETAILED``.

Which TensorRT calls read the engine (tensor names or binding indices, ``get_tensor_profile_shape`` or
``get_profile_shape``) is asked of ``trt_api.TrtApi``, by capability, as everywhere else.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .engine import FLAVOURS, ShapeOutsideProfile, ShapeProfile, TrtLibrary
from .errors import AlbertIxrtError, InputFileError
from .fileio import sha256_bytes
from .model import INPUT_NAMES, OUTPUT_NAMES
from .trt_api import TrtApi

#: TensorRT's plan preamble (samples/common/sampleEngines.cpp, printPlanVersion): the tag every
#: TensorRT plan starts with, the serialization version whose layout is known, the preamble's size
#: and where the four version bytes (major, minor, patch, build) sit in it.
PLAN_TAG, PLAN_SERIALIZATION_VERSION, PLAN_PREAMBLE, PLAN_VERSION_OFFSET = 0x74727466, 0, 28, 24
#: The profile the runner runs (a new execution context starts on profile 0).
RUNNER_PROFILE = 0


class PlanRefused(AlbertIxrtError, ValueError):
    """A plan file that cannot be the subject here (one line naming the file)."""


# --------------------------------------------------------------------------------------------
# The plan's own header
# --------------------------------------------------------------------------------------------
def plan_header_version(data: bytes) -> str | None:
    """"major.minor.patch.build" of the TensorRT that built ``data``, from TensorRT's preamble; None
    when the bytes do not start with it (not a TensorRT plan, an ixRT plan, or another layout)."""
    if len(data) < PLAN_PREAMBLE:
        return None
    tag, serialization = struct.unpack_from("<II", data)
    if tag != PLAN_TAG or serialization != PLAN_SERIALIZATION_VERSION:
        return None
    return ".".join(str(b) for b in data[PLAN_VERSION_OFFSET:PLAN_VERSION_OFFSET + 4])


def same_version(a: str, b: str) -> bool:
    """Whether two TensorRT versions are one release ("8.6.1" is "8.6.1.0")."""
    def parts(v):
        nums = [int(x) for x in v.split("-")[0].split(".") if x.isdigit()]
        return (nums + [0, 0, 0, 0])[:4]
    return parts(a) == parts(b)


def refusal_line(path: Path, data: bytes, lib: TrtLibrary) -> str:
    """Why ``lib``'s runtime refused the plan at ``path``, as far as the bytes tell."""
    runtime = f"{'ixRT' if lib.flavour == 'ixrt' else 'TensorRT'} {lib.version}"
    built = plan_header_version(data)
    if lib.flavour == "ixrt":
        if built:
            return f"{path}: a TensorRT {built} plan (its header says so), not an ixRT plan; {runtime} cannot load it"
        return (f"{path}: {runtime} could not deserialize it: not an ixRT plan, or one built by another ixRT version "
                "or for another GPU (ixRT's plan header is not published, so the version that built it cannot be "
                "read; see ixRT's log above)")
    if built is None:
        return (f"{path}: not a TensorRT engine plan (it does not start with the 'ftrt' tag every TensorRT plan "
                f"starts with); {runtime} could not deserialize it")
    if not same_version(built, lib.version):
        return (f"{path}: built with TensorRT {built} (plan header), but the runtime here is {runtime}, which cannot "
                f"deserialize it; rebuild the plan with TensorRT {lib.version}, or run it where TensorRT {built} is")
    return (f"{path}: {runtime} could not deserialize it although its header says TensorRT {built}: a plan built "
            "for another GPU model, or a corrupt one (see TensorRT's log above)")


# --------------------------------------------------------------------------------------------
# What the engine says about its tensors and profiles
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorInfo:
    """One engine I/O tensor: mode, numpy dtype (``trt.nptype``), shape (-1: dynamic), binding index."""

    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple
    index: int

    def as_dict(self) -> dict:
        return {"mode": "input" if self.is_input else "output", "dtype": self.dtype.name, "shape": list(self.shape)}


def numpy_dtype(trt, name: str, dtype) -> np.dtype:
    """The numpy type of an engine tensor (``trt.nptype``); one numpy has none of (bfloat16, fp8: nptype
    raises TypeError) is refused naming the tensor, as its bytes could not be read back."""
    try:
        return np.dtype(trt.nptype(dtype))
    except (TypeError, KeyError):
        raise PlanRefused(f"engine tensor {name!r} is {dtype}, which numpy cannot hold: the suite reads and "
                          f"compares outputs as numpy arrays; build the engine with float16 or float32 I/O") from None


def engine_tensors(trt, engine, api: TrtApi) -> dict[str, TensorInfo]:
    """Every I/O tensor of ``engine``, read with the calls ``api`` names (tensor names, TensorRT >= 8.5;
    else binding indices)."""
    out = {}
    if api.uses_tensor_addresses:
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            out[name] = TensorInfo(name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                                   numpy_dtype(trt, name, engine.get_tensor_dtype(name)),
                                   tuple(int(d) for d in engine.get_tensor_shape(name)), i)
    else:
        for i in range(engine.num_bindings):
            name = engine.get_binding_name(i)
            out[name] = TensorInfo(name, bool(engine.binding_is_input(i)),
                                   numpy_dtype(trt, name, engine.get_binding_dtype(i)),
                                   tuple(int(d) for d in engine.get_binding_shape(i)), i)
    return out


def qa_io_problem(tensors: dict[str, TensorInfo]) -> str | None:
    """The first way ``tensors`` differ from the QA interface (naming the tensor), or None."""
    for name in INPUT_NAMES:
        t = tensors.get(name)
        if t is None or not t.is_input:
            return (f"has no input {name!r} (the QA interface takes {', '.join(INPUT_NAMES)}; the engine's inputs "
                    f"are {[n for n, x in tensors.items() if x.is_input]})")
        if len(t.shape) != 2 or t.dtype.kind not in "iu":
            return (f"input {name!r} is {t.dtype.name} of shape {list(t.shape)}; the QA interface needs integer "
                    "[batch, seq]")
    extra = [n for n, t in tensors.items() if t.is_input and n not in INPUT_NAMES]
    if extra:
        return f"takes inputs {extra} beyond the QA interface's {list(INPUT_NAMES)}; nothing would feed them"
    for name in OUTPUT_NAMES:
        t = tensors.get(name)
        if t is None or t.is_input:
            return (f"has no output {name!r} (the QA interface gives {', '.join(OUTPUT_NAMES)}; the engine's outputs "
                    f"are {[n for n, x in tensors.items() if not x.is_input]})")
        if len(t.shape) != 2 or t.dtype.kind != "f":
            return (f"output {name!r} is {t.dtype.name} of shape {list(t.shape)}; the QA interface needs float "
                    "[batch, seq]")
    return None


def profile_shapes(engine, api: TrtApi, profile: int = RUNNER_PROFILE,
                   names: Iterable[str] = INPUT_NAMES) -> dict[str, tuple]:
    """Input name -> (min, opt, max) shapes in optimisation profile ``profile``
    (``get_tensor_profile_shape(name, profile)``, or 8-style ``get_profile_shape(profile, name)``)."""
    out = {}
    for name in names:
        shapes = (engine.get_tensor_profile_shape(name, profile) if api.uses_tensor_addresses
                  else engine.get_profile_shape(profile, name))
        out[name] = tuple(tuple(int(d) for d in s) for s in shapes)
    return out


def _range(lo: int, hi: int) -> str:
    return f"{lo}..{hi}" if lo != hi else f"{lo}"


def _missing(lo: int, hi: int, need_lo: int, need_hi: int) -> list[str]:
    """The parts of need_lo..need_hi outside lo..hi, as ranges."""
    out = []
    if lo > need_lo:
        out.append(_range(need_lo, min(lo - 1, need_hi)))
    if hi < need_hi:
        out.append(_range(max(hi + 1, need_lo), need_hi))
    return out


def check_plan_covers(engine, batches: Iterable[int], max_seq: int, *, api: TrtApi, plan: str | os.PathLike = "plan",
                      min_seq: int = 1) -> None:
    """Refuse (one line naming ``plan``, the tensor and the shapes) an engine whose runner profile
    cannot run every feed of a session: batches of each size in ``batches`` and any smaller last batch
    (down to 1), padded to any length from ``min_seq`` to ``max_seq`` (``ShapeProfile.for_feeds``)."""
    need = ShapeProfile.for_feeds(batches, max_seq)
    min_seq = min(max(min_seq, 1), max_seq)
    count = int(engine.num_optimization_profiles)
    for name, (lo, _, hi) in profile_shapes(engine, api).items():
        if len(lo) != 2 or len(hi) != 2:
            raise ShapeOutsideProfile(f"{plan}: input {name!r} has profile shapes {list(lo)}..{list(hi)}, not "
                                      "[batch, seq]")
        gaps = {"batch": _missing(lo[0], hi[0], 1, need.max_batch), "seq": _missing(lo[1], hi[1], min_seq, max_seq)}
        short = [f"{what} {', '.join(parts)}" for what, parts in gaps.items() if parts]
        if short:
            raise ShapeOutsideProfile(
                f"{plan}: input {name!r} accepts batch {_range(lo[0], hi[0])} x seq {_range(lo[1], hi[1])} "
                f"(profile {RUNNER_PROFILE} of {count}: min {list(lo)}, max {list(hi)}), but the session feeds batch "
                f"1..{need.max_batch} x seq {min_seq}..{max_seq}: {' and '.join(short)} cannot run")


def runner_profile(shapes: dict[str, tuple], plan) -> ShapeProfile:
    """The [batch, seq] ranges every QA input accepts in the runner's profile, as a ShapeProfile."""
    lo = [max(s[0][k] for s in shapes.values()) for k in (0, 1)]
    hi = [min(s[2][k] for s in shapes.values()) for k in (0, 1)]
    opt = [min(max(shapes[INPUT_NAMES[0]][1][k], lo[k]), hi[k]) for k in (0, 1)]
    if lo[0] < 1 or lo[1] < 1 or lo[0] > hi[0] or lo[1] > hi[1]:
        raise PlanRefused(f"{plan}: its inputs' profile {RUNNER_PROFILE} shapes share no [batch, seq] "
                          f"({ {n: [list(s[0]), list(s[2])] for n, s in shapes.items()} })")
    return ShapeProfile(lo[0], opt[0], hi[0], lo[1], opt[1], hi[1])


def plan_precision(tensors: dict[str, TensorInfo], stated: str | None, plan) -> tuple[str, str]:
    """(precision, how it is known): fp16 from the outputs' type; float32 outputs do not tell, so the
    caller's statement, or "unknown".  A statement the outputs contradict is refused."""
    types = {tensors[n].dtype.name for n in OUTPUT_NAMES}
    read = {"float16": "fp16"}.get(types.pop()) if len(types) == 1 else None
    if read and stated and stated != read:
        raise PlanRefused(f"{plan}: precision {stated} stated, but the engine's outputs are {read}")
    if read:
        return read, f"the engine's outputs are {read}" + (" (as stated)" if stated else "")
    if stated:
        return stated, "stated by the caller (float32 outputs do not tell an engine's precision)"
    return "unknown", ("float32 outputs: an fp32 engine, or one computing in fp16 with fp32 I/O (weak typing, "
                       "keep_io_types graphs); state the precision to record it")


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------
@dataclass
class PlanInfo:
    """What was loaded and what the checks read: recorded by the runner's ``describe()``."""

    path: Path
    sha256: str
    size_bytes: int
    runtime: str                      # TrtLibrary.label: what deserialised it ("emulated ..." for the stand-in)
    plan_version: str | None          # from TensorRT's plan header; None where it cannot be read
    tensors: dict[str, TensorInfo]
    profiles: int                     # num_optimization_profiles
    shapes: dict[str, tuple]          # runner profile: input -> (min, opt, max)
    profile: ShapeProfile
    precision: str
    precision_source: str

    def as_dict(self) -> dict:
        return {"plan": str(self.path), "plan_sha256": self.sha256, "plan_bytes": self.size_bytes,
                "runtime": self.runtime, "plan_tensorrt_version": self.plan_version,
                "io": {n: t.as_dict() for n, t in self.tensors.items()}, "optimization_profiles": self.profiles,
                "profile_shapes": {n: [list(s) for s in v] for n, v in self.shapes.items()},
                "precision": self.precision, "precision_source": self.precision_source}


def read_plan_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(path, "engine plan not found") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read the engine plan ({exc.strerror})") from None
    if not data:
        raise PlanRefused(f"{path}: empty file, not an engine plan")
    return data


def load_plan(path: str | os.PathLike, flavour: str = "tensorrt", *, library: TrtLibrary | None = None,
              plugin_path: str | None = None, precision: str | None = None):
    """(engine, PlanInfo): the plan at ``path`` deserialised by ``library`` (default: the installed
    ``flavour`` runtime, its plugin library loaded for ixRT) and checked against the QA interface;
    ``precision`` states what the I/O cannot tell (see ``plan_precision``)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    path = Path(path)
    data = read_plan_file(path)
    lib = library or TrtLibrary.load(flavour, plugin_path)
    try:
        engine = lib.deserialize(data)
    except Exception:  # noqa: BLE001 (None, or whatever a binding raises: the runtime refused the bytes)
        raise PlanRefused(refusal_line(path, data, lib)) from None
    tensors = engine_tensors(lib.trt, engine, lib.api)
    problem = qa_io_problem(tensors)
    if problem:
        raise PlanRefused(f"{path}: {problem}")
    shapes = profile_shapes(engine, lib.api)
    chosen, source = plan_precision(tensors, precision, path)
    info = PlanInfo(path, sha256_bytes(data), len(data), lib.label, plan_header_version(data), tensors,
                    int(engine.num_optimization_profiles), shapes, runner_profile(shapes, path), chosen, source)
    return engine, info
