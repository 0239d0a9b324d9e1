"""User options checked before any work: one sentence per problem, naming the option.

A floor below the commands and the pipeline (it imports only ``errors``), so that argparse type
checks stay cheap (no torch import) and the acceptance plan can refuse a bad call before loading a
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


def check_onnx_backend(onnx, backend: str) -> None:
    """--onnx is read by the ONNX backends only: with torch it would be silently ignored."""
    if onnx and backend == "torch":
        raise AlbertIxrtError(f"--onnx {onnx} is read only by the onnxruntime, tensorrt and ixrt backends; with "
                              "--backend torch it would be ignored: add --backend onnxruntime (or another), or "
                              "drop --onnx")


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
        hint = conversion_hint(p)
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise AlbertIxrtError(f"{option} {p}".strip() + f": is a directory, not {article} {what}{hint}")
    if not p.exists():
        raise AlbertIxrtError(f"{option} {p}".strip() + ": file not found")


def conversion_hint(folder: Path) -> str:
    """For an ONNX option given a conversion folder: the graphs it holds and which backend builds from
    each, read from its manifest.json (``engine_inputs``, written by ``export.convert`` from the one
    engine-input decision), so this hint never keeps a second copy of that decision."""
    import json

    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        uses = {str(f): [] for f in manifest.get("engine_inputs", {}).values()}
        for family, f in manifest.get("engine_inputs", {}).items():
            uses[str(f)].append(family)
    except (OSError, ValueError, AttributeError):
        return ""
    picks = "; ".join(f"{folder / f} ({', '.join(families)})" for f, families in uses.items() if (folder / f).is_file())
    return f"; it holds a conversion (manifest.json): pick one of its files, {picks}" if picks else ""


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


def _first_existing(p: Path) -> Path:
    """``p`` or its nearest ancestor that exists (what a mkdir -p of ``p`` would start from)."""
    p = Path(p)
    while not os.path.lexists(p) and p.parent != p:
        p = p.parent
    return p


def _probe_writable(folder: Path) -> str | None:
    """Why a new file cannot be made in ``folder`` (None: it can).  os.access alone is not enough:
    it says yes to root on a read-only file system; so a probe file is made.  ``TemporaryFile`` makes it
    without a name where the file system can (O_TMPFILE), so even Ctrl-C at that moment leaves nothing."""
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        with tempfile.TemporaryFile(prefix=".albert-ixrt-probe-", dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def check_output_dir(option: str, path: str | os.PathLike) -> None:
    """A folder to write into, checked before any work: a folder (or nothing yet), no regular file on
    the way to it, and a place where this user can make files.  Nothing is created."""
    p = Path(path)
    where = f"{option} {path}".strip()
    if p.exists() and not p.is_dir():
        raise AlbertIxrtError(f"{where}: exists and is not a directory")
    base = _first_existing(p)
    if not base.is_dir():
        raise AlbertIxrtError(f"{where}: {base} is a file, so no directory can be made below it")
    why = _probe_writable(base)
    if why:
        raise AlbertIxrtError(f"{where}: cannot write in {base} ({why})")


def check_output_file(option: str, path: str | os.PathLike) -> None:
    """A file to write (atomically, beside its final name), checked before any work: not a directory
    (nor named like one), its folder a folder or makeable, and writable."""
    p = Path(path)
    where = f"{option} {path}".strip()
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        raise AlbertIxrtError(f"{where}: is a directory, not a file name")
    base = _first_existing(p.parent)
    if not base.is_dir():
        raise AlbertIxrtError(f"{where}: {base} is a file, so no file can be made below it")
    why = _probe_writable(base)
    if why:
        raise AlbertIxrtError(f"{where}: cannot write in {base} ({why})")


def os_error_line(exc: OSError) -> str:
    """An OSError as one line naming the path(s): ``PATH: Permission denied``."""
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    what = exc.strerror or str(exc)
    return f"{' -> '.join(map(str, names))}: {what}" if names else what


#: Suffixes of TorchScript model files (model.py imports them from here: checked without importing torch).
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")


#: Every weights file a Hugging Face model directory may hold, in the order transformers'
#: ``from_pretrained`` looks for them (modeling_utils: safetensors, its shard index, the pickle, its
#: shard index).  An index (``save_pretrained`` above ``max_shard_size``) names the shard of every
#: tensor in its ``weight_map``: ``model-00001-of-00003.safetensors`` ...  model.py loads from this list.
MODEL_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                      "pytorch_model.bin.index.json")


def check_model_dir(option: str, p: Path, *, random_weights: bool = False) -> None:
    """A model directory holds config.json and, unless the shape twin is asked for, weights."""
    if not (p / "config.json").is_file():
        held = sorted(x.name for x in p.iterdir())[:5]
        what = f"it holds {', '.join(held)}" if held else "it is empty"
        raise AlbertIxrtError(f"{option} {p}: no config.json in this folder ({what}); a Hugging Face model directory "
                              "needs config.json and its weights")
    if not random_weights and not any((p / name).is_file() for name in MODEL_WEIGHT_FILES):
        raise AlbertIxrtError(f"{option} {p}: has config.json but no weights (looked for "
                              f"{', '.join(MODEL_WEIGHT_FILES)}); add --random-weights for the seeded shape twin")


def looks_like_hub_id(spec: str) -> bool:
    """``owner/name`` that is not a path here: how every reader of --model tells a hub id from a path."""
    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


def check_model_spec(option: str, spec: str, *, random_weights: bool = False) -> None:
    """A model the user named must be findable as what it looks like, before any model is loaded: a
    TorchScript file or config.json that exists (config.json only with --random-weights), a
    directory, a hub id (owner/name), or "tiny".  Whether a hub id is reachable is asked later: offline,
    of the local cache before any test (``acceptance.plan.hub_id_unreachable``); online, by the loader."""
    p = Path(spec)
    if spec == "tiny":
        return
    if p.is_dir():
        check_model_dir(option, p, random_weights=random_weights)
        return
    if p.suffix in TORCHSCRIPT_SUFFIXES or p.suffix == ".json":
        what = "TorchScript file" if p.suffix in TORCHSCRIPT_SUFFIXES else "model config"
        if not p.is_file():
            raise AlbertIxrtError(f"{option} {spec}: {what} not found")
        if p.suffix == ".json" and not random_weights:
            raise AlbertIxrtError(f"{option} {spec}: a config.json holds no weights; add --random-weights for the "
                                  "seeded shape twin, or give a model directory")
        return
    if not looks_like_hub_id(spec):
        raise AlbertIxrtError(f"{option} {spec}: not found; give a hub id (owner/name), a model directory, a "
                              f"TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)}), a config.json or tiny")


# --------------------------------------------------------------------------------------------
# argparse types: a bad value is refused while parsing, before any work, in one line
# (argparse prints "argument --x: <message>"; cli.py keeps it to that one line, exit 2; pytest
# turns it into its usage error).  Shared by the commands and the acceptance option table.
# --------------------------------------------------------------------------------------------
def _int_at_least(text: str, least: int) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def positive_ints(text: str) -> int:
    """One value of a list option (``nargs="+"``): "1,16" is refused with the spelling that works."""
    import argparse

    if "," in text:
        parts = [t.strip() for t in text.split(",") if t.strip()]
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}; give several values separated by spaces, "
                                         f"not commas: {' '.join(parts)}")
    return _int_at_least(text, 1)


def batch_sizes(text: str) -> list[int]:
    """One value of a batch-size list: "16", or several in one value, "1,16" (used with action="extend",
    so "1 16", "1,16" and a repeated option all give [1, 16])."""
    parts = [t.strip() for t in text.split(",")]
    return [_int_at_least(t, 1) for t in parts if t] or [_int_at_least(text, 1)]


def nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0)


def nonnegative_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    import argparse

    value = nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0, got 0")
    return value


def _checked(check, *args):
    import argparse

    def parse(text: str) -> str:
        try:
            check("", text, *args)
        except AlbertIxrtError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return parse


def input_file(what: str = "file"):
    """An existing file (a directory is refused by name, with the file to pick when it is a conversion)."""
    return _checked(lambda opt, text: check_input_file(opt, text, what=what))


def tokenizer_arg(text: str) -> str:
    return _checked(check_tokenizer)(text)


def output_dir(text: str) -> str:
    return _checked(check_output_dir)(text)


def output_file(text: str) -> str:
    return _checked(check_output_file)(text)


def existing_dir(text: str) -> str:
    import argparse

    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: " + ("not a directory" if Path(text).exists() else "not found"))
    return text


def model_arg(text: str) -> str:
    """A model the user names: never empty (an unset variable in a CI line gives ``--model ""``, which
    must not quietly fall back to another model)."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (an unset variable in the command line?); name the model under "
                                         "test, or leave the option out for the built-in tiny self-test")
    return text
