"""User options checked before any work: one sentence per problem, naming the option.

A floor below the commands and the pipeline (it imports only ``errors``), so that argparse type
checks stay cheap (no torch import) and ``run_acceptance`` can refuse a bad call before loading a
model.  argparse's ``choices`` cannot say which precision goes with which backend, nor that a path
given as a file is a directory: those checks live here.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import AlbertIxrtError

#: Backends and the precisions each runner accepts (kept equal to the runners' own lists by a test:
#: torch_runner._DTYPES, ort_runner.ORT_PRECISIONS, engine.ENGINE_PRECISIONS).
BACKEND_PRECISIONS = {
    "torch": ("fp32", "fp16", "bf16"),
    "onnxruntime": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16"),
    "ixrt": ("fp32", "fp16"),
}
BACKENDS = tuple(BACKEND_PRECISIONS)
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: The stage files a manifest.json names, per backend (export.ENGINE_INPUTS / STAGE_FILES).
ONNX_FOR_BACKEND = {"tensorrt/ixrt": "model.sim.onnx", "onnxruntime fp32": "model.fused.onnx",
                    "onnxruntime fp16": "model.fused.fp16.onnx"}


def default_workers() -> int:
    """Processes for building features: the cores this process may run on (``os.sched_getaffinity``,
    which honours taskset and cgroup CPU sets, unlike ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:        # not on Linux
        return max(1, os.cpu_count() or 1)


def check_backend_precision(backend: str, precision: str) -> None:
    if backend not in BACKEND_PRECISIONS:
        raise AlbertIxrtError(f"--backend {backend!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    allowed = BACKEND_PRECISIONS[backend]
    if precision not in allowed:
        raise AlbertIxrtError(f"--precision {precision!r} is not supported by backend {backend}; "
                              f"choose one of {', '.join(allowed)}")


#: --device values per backend (torch: cuda:N too; onnxruntime: its execution-provider choices;
#: TensorRT/ixRT always run on their GPU).
DEVICES = {"torch": ("auto", "cpu", "cuda", "cuda:N"), "onnxruntime": ("auto", "cpu", "cuda", "tensorrt"),
           "tensorrt": ("auto",), "ixrt": ("auto",)}


def check_device(backend: str, device: str) -> None:
    import re

    allowed = DEVICES.get(backend, ("auto",))
    ok = device in allowed or ("cuda:N" in allowed and re.fullmatch(r"cuda:\d+", device))
    if not ok:
        raise AlbertIxrtError(f"--device {device!r} does not apply to backend {backend}; choose one of "
                              f"{', '.join(allowed)}" + (" (it runs on its GPU)" if allowed == ("auto",) else ""))


def check_positive(option: str, value: int | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AlbertIxrtError(f"{option} must be a whole number >= 1, got {value!r}")


def check_input_file(option: str, path: str | os.PathLike | None, *, what: str = "file") -> None:
    """``path`` must be an existing file; a directory is named as such (and, for an ONNX option on a
    conversion folder, the file to pick is suggested)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        hint = ""
        picks = "; ".join(f"{p / name} ({use})" for use, name in ONNX_FOR_BACKEND.items() if (p / name).is_file())
        if (p / "manifest.json").is_file() and picks:
            hint = f"; it holds a conversion (manifest.json): pick one of its files, {picks}"
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise AlbertIxrtError(f"{option} {p}".strip() + f": is a directory, not {article} {what}{hint}")
    if not p.exists():
        raise AlbertIxrtError(f"{option} {p}".strip() + ": file not found")


def check_tokenizer(option: str, path: str | os.PathLike | None) -> None:
    """A spiece.model file, or a directory holding one."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        if not (p / "spiece.model").is_file():
            raise AlbertIxrtError(f"{option} {p}".strip() + ": directory without a spiece.model")
        return
    if not p.exists():
        raise AlbertIxrtError(f"{option} {p}".strip() + ": file not found")


def check_output_dir(option: str, path: str | os.PathLike) -> None:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise AlbertIxrtError(f"{option} {p}".strip() + ": exists and is not a directory")


#: Suffixes of TorchScript model files (model.py imports them from here: checked without importing torch).
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")


def check_model_spec(option: str, spec: str, *, random_weights: bool = False) -> None:
    """A model the user named must be findable as what it looks like, before any model is loaded: a
    TorchScript file or config.json that exists (config.json only with --random-weights), a
    directory, a hub id (owner/name), or "tiny".  Whether a hub id's weights are reachable is the
    loader's question (a skip, or a failure under --strict-assets), not a usage error."""
    p = Path(spec)
    if spec == "tiny" or p.is_dir():
        return
    if p.suffix in TORCHSCRIPT_SUFFIXES or p.suffix == ".json":
        what = "TorchScript file" if p.suffix in TORCHSCRIPT_SUFFIXES else "model config"
        if not p.is_file():
            raise AlbertIxrtError(f"{option} {spec}: {what} not found")
        if p.suffix == ".json" and not random_weights:
            raise AlbertIxrtError(f"{option} {spec}: a config.json holds no weights; add --random-weights for the "
                                  "seeded shape twin, or give a model directory")
        return
    if p.exists() or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise AlbertIxrtError(f"{option} {spec}: not found; give a hub id (owner/name), a model directory, a "
                              f"TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)}), a config.json or tiny")
