"""The real TensorRT Python bindings, introspected on a CPU-only machine.

TensorRT's Python module is a pybind11 extension (``tensorrt_bindings/tensorrt.so``) that links
against libnvinfer / libnvinfer_plugin / libnvonnxparser (and, on 8.x, libnvparsers).  Those
native libraries need a GPU driver to do anything, but *importing* the module only needs the
loader to find their sonames and the dozen C entry points the extension imports.  So:

1. ``fetch_wheel``: ``pip download --no-deps`` the bindings wheel into a cache folder (reused).
2. ``build_stand_ins``: compile, with gcc, tiny libraries of the right sonames that define those
   entry points as ``abort()`` (found with ``nm -D --undefined-only`` on the extension; listed in
   ``STAND_IN_SYMBOLS``).  Calling any of them kills the process: nothing may be executed through
   a stand-in, only imported and introspected.
3. ``dump_members``: in a *subprocess* (so the real module never enters the caller's process),
   ``sys.setdlopenflags(os.RTLD_LAZY | os.RTLD_GLOBAL)``, import the module and list every
   top-level class, enum (member -> int value) and class member, plus the pybind11 signature of
   each member the project names (``trt_api.USED_API``).

``python -m albert_ixrt.trt_bindings --write fixtures/tensorrt_api`` regenerates the committed
member lists that the unit tests' fake ``tensorrt`` modules are derived from.

Hand-written because no library does this: Polygraphy and TensorRT's own tools need the real
native libraries.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: Names a folder of its own for the downloaded wheels, unpacked modules and stand-in libraries.
BINDINGS_ENV = "ALBERT_IXRT_TRT_BINDINGS"
#: The committed member lists (one JSON per version), relative to the repository root.
FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "tensorrt_api"


@dataclass(frozen=True)
class BindingsRelease:
    """One bindings wheel on the package index and the native libraries its extension needs."""

    label: str            # the generation it stands for in tests
    requirement: str      # pip requirement
    version: str
    sonames: tuple        # NEEDED entries of tensorrt.so that TensorRT ships
    symbols: dict         # soname -> C symbols the extension imports from it


_CORE = ("createInferBuilder_INTERNAL", "createInferRefitter_INTERNAL", "createInferRuntime_INTERNAL",
         "getBuilderPluginRegistry", "getPluginRegistry")
_PARSER = ("createNvOnnxParser_INTERNAL", "getNvOnnxParserVersion")


def _release(label, requirement, version, major, *, parser_refitter=True, nvparsers=False):
    parser = _PARSER + (("createNvOnnxParserRefitter_INTERNAL",) if parser_refitter else ())
    symbols = {f"libnvinfer.so.{major}": _CORE, f"libnvinfer_plugin.so.{major}": ("initLibNvInferPlugins",),
               f"libnvonnxparser.so.{major}": parser}
    if nvparsers:  # TensorRT 8's UFF / Caffe parsers (C++ entry points, mangled names are valid C names)
        symbols[f"libnvparsers.so.{major}"] = (
            "_ZN11nvuffparser15createUffParserEv", "_ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi",
            "_ZN14nvcaffeparser117createCaffeParserEv", "_ZN14nvcaffeparser123shutdownProtobufLibraryEv")
    return BindingsRelease(label, requirement, version, tuple(symbols), symbols)


#: The releases the conformance tests load (symbols found with ``nm -D --undefined-only`` on each
#: wheel's tensorrt.so; a missing one makes the import fail, so the list is checked by use).
RELEASES = {
    "trt8": _release("trt8", "tensorrt-bindings==8.6.1", "8.6.1", 8, parser_refitter=False, nvparsers=True),
    "trt10": _release("trt10", "tensorrt-cu12-bindings==10.13.3.9", "10.13.3.9", 10),
    "trt11": _release("trt11", "tensorrt-cu12-bindings==11.4.0.106", "11.4.0.106", 11),
}


class BindingsUnavailable(RuntimeError):
    """The wheel could not be fetched or imported here (offline, no gcc, another Python)."""


def bindings_cache() -> Path:
    """Where the downloaded wheels, unpacked modules and stand-in libraries are kept between runs:
    ``$ALBERT_IXRT_TRT_BINDINGS``, else ``trt-bindings/`` in the package's cache folder (config.CACHE_DIR:
    ``$ALBERT_IXRT_CACHE``, by default ~/.cache/albert_ixrt)."""
    from . import config

    override = os.environ.get(BINDINGS_ENV)
    return Path(override) if override else Path(config.CACHE_DIR) / "trt-bindings"


def fetch_wheel(release: BindingsRelease, cache: Path | None = None) -> Path:
    """The unpacked wheel folder (holding ``tensorrt_bindings/``), downloading it once (``cache``:
    default ``bindings_cache()``)."""
    cache = cache or bindings_cache()
    unpacked = cache / f"{release.label}-{release.version}"
    if (unpacked / "tensorrt_bindings" / "tensorrt.so").is_file():
        return unpacked
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name = release.requirement.split("==")[0].replace("-", "_")
    found = sorted(wheels.glob(f"{name}-{release.version}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(wheels),
               release.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        found = sorted(wheels.glob(f"{name}-{release.version}-*.whl"))
        if proc.returncode != 0 or not found:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise BindingsUnavailable(f"cannot download {release.requirement} ({last})")
    tmp = Path(tempfile.mkdtemp(prefix=unpacked.name + ".", dir=cache))
    try:
        with zipfile.ZipFile(found[-1]) as zf:
            zf.extractall(tmp)
        if not (tmp / "tensorrt_bindings" / "tensorrt.so").is_file():
            raise BindingsUnavailable(f"{found[-1].name} holds no tensorrt_bindings/tensorrt.so")
        try:
            tmp.rename(unpacked)
        except OSError:  # another process (xdist worker) unpacked it first
            if not (unpacked / "tensorrt_bindings" / "tensorrt.so").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return unpacked


def build_stand_ins(release: BindingsRelease, cache: Path | None = None) -> Path:
    """A folder with abort()-only libraries of the sonames ``release`` needs (compiled once)."""
    cache = cache or bindings_cache()
    out = cache / f"stand-ins-{release.label}"
    if all((out / soname).is_file() for soname in release.sonames):
        return out
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise BindingsUnavailable("no C compiler (gcc) to build the stand-in TensorRT libraries")
    out.mkdir(parents=True, exist_ok=True)
    for soname, symbols in release.symbols.items():
        src = out / f"{soname}.{os.getpid()}.c"
        body = "".join(f"void {s}(void) {{ abort(); }}\n" for s in symbols)
        src.write_text("/* stand-in: import and introspection only, never executed */\n"
                       "#include <stdlib.h>\n" + body, encoding="utf-8")
        tmp = out / f".{soname}.{os.getpid()}.tmp"
        proc = subprocess.run([gcc, "-shared", "-fPIC", "-o", str(tmp), f"-Wl,-soname,{soname}", str(src)],
                              capture_output=True, text=True, timeout=120)
        src.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise BindingsUnavailable(f"gcc failed on the {soname} stand-in: {proc.stderr.strip()[:200]}")
        tmp.replace(out / soname)
    return out


#: Runs in the subprocess: import the real module over the stand-ins and list its members.
_DUMP = r"""
import enum, json, os, sys
sys.setdlopenflags(os.RTLD_LAZY | os.RTLD_GLOBAL)
sys.path.insert(0, sys.argv[1])
import tensorrt_bindings as trt
used = json.loads(sys.argv[2])

def is_enum(obj):  # pybind11 enums (and Python ones) carry a __members__ mapping
    return isinstance(getattr(obj, "__members__", None), (dict, type(enum.Enum.__members__)))

out = {"version": trt.__version__, "functions": [], "values": {}, "classes": {}, "enums": {}, "signatures": {}}
for name in sorted(dir(trt)):
    if name.startswith("_"):
        continue
    obj = getattr(trt, name)
    if isinstance(obj, type) and is_enum(obj):
        out["enums"][name] = {k: int(v) for k, v in obj.__members__.items()}
    elif isinstance(obj, type):
        out["classes"][name] = sorted(m for m in dir(obj) if not m.startswith("_"))
    elif callable(obj):
        out["functions"].append(name)
    elif isinstance(obj, (int, float, str, bool)):
        out["values"][name] = obj
for path in used:
    head, _, tail = path.partition(".")
    obj = getattr(trt, head, None)
    for part in (tail.split(".") if tail else []):
        obj = getattr(obj, part, None)
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if obj is None or not callable(obj) or not doc:
        continue
    name = path.rsplit(".", 1)[-1]
    # pybind11: "name(self: T, a: U = 0) -> R", or "Overloaded function." then "1. name(...)" lines
    sigs = [l.strip().split(". ", 1)[1] for l in doc.splitlines()
            if l.strip()[:1].isdigit() and ". " + name + "(" in l.strip()[:len(name) + 6]]
    first = doc.splitlines()[0].strip()
    out["signatures"][path] = sigs or ([first] if first.startswith(name + "(") else [])
print(json.dumps(out))
"""


def dump_members(release: BindingsRelease, used: list[str] | None = None,
                 cache: Path | None = None) -> tuple[dict, float]:
    """(member lists, seconds): the member lists of the real module (fetched and imported in a subprocess).  Adds
    ``fetch_import_seconds``: wall time of fetch (0 when cached) + stand-ins + import + dump."""
    if used is None:
        from .trt_api import USED_API

        used = sorted(USED_API)
    t0 = time.perf_counter()
    cache = cache or bindings_cache()
    module_dir = fetch_wheel(release, cache)
    libs = build_stand_ins(release, cache)
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(libs),
                                                                           os.environ.get("LD_LIBRARY_PATH")]))}
    proc = subprocess.run([sys.executable, "-c", _DUMP, str(module_dir), json.dumps(used)], capture_output=True,
                          text=True, env=env, timeout=120)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise BindingsUnavailable(f"importing {release.requirement} over stand-in libraries failed: {last}")
    members = json.loads(proc.stdout)
    members["requirement"] = release.requirement
    return members, round(time.perf_counter() - t0, 3)


def fixture_path(label: str, fixture_dir: Path = FIXTURE_DIR) -> Path:
    return fixture_dir / f"{label}.json"


def load_fixture(label: str, fixture_dir: Path = FIXTURE_DIR) -> dict:
    return json.loads(fixture_path(label, fixture_dir).read_text(encoding="utf-8"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Dump the real TensorRT bindings' member lists (CPU, stand-in libs)")
    ap.add_argument("--write", type=Path, default=None, help="write <label>.json files into this folder")
    ap.add_argument("labels", nargs="*", default=list(RELEASES))
    args = ap.parse_args(argv)
    for label in args.labels:
        members, seconds = dump_members(RELEASES[label])
        print(f"{label}: TensorRT {members['version']}: {len(members['classes'])} classes, "
              f"{len(members['enums'])} enums, fetch+import {seconds:.2f} s")
        if args.write:
            from .fileio import write_json_atomic

            write_json_atomic(fixture_path(label, args.write), members)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
