"""The acceptance options: one table (spelling, default, check, help) that both doors read.

``albert-ixrt run`` adds them to its argparse parser and the pytest plugin to pytest's, through the
same ``add_options(addoption, door, ...)`` (pytest-benchmark shares its ``add_*_options`` between
its plugin and its CLI the same way), so a default or a check can never differ between the doors.
``Options`` is what either door parsed, read back by the same table; ``plan.Plan`` derives every
decision from it.

Values are checked while parsing (argparse types: a bad value is one line naming the option, exit 2
in ``run``, a usage error, exit 4, in pytest); what needs two options together is checked by the plan.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable

from ..assets import ENV_MODEL  # the variable naming the model under test when --model is not (both doors)
from ..options import (BACKEND_PRECISIONS, BACKENDS, PRECISIONS, batch_sizes, input_file, model_arg, output_dir,
                       positive_int,
                       tokenizer_arg)

RUN, PYTEST = "run", "pytest"
BOTH = (RUN, PYTEST)
#: Steps ``run --skip`` may leave out (each is then "not judged", and the run NOT SIGNED OFF).
SKIPPABLE = ("convert", "equivalence", "perf")
#: The perf batch sizes at sequence 384: the reference's batch 16, and batch 1.
DEFAULT_PERF_BATCH_SIZES = (1, 16)
#: Features per runner call when evaluating the dev set: the reference row's batch size.
DEFAULT_EVAL_BATCH_SIZE = 16


@dataclass(frozen=True)
class Opt:
    """One option: ``--<name>`` (dest ``<name>`` with ``_``); ``doors`` says who offers it."""

    name: str
    help: str
    default: Any = None
    type: Callable | None = None
    choices: tuple | None = None
    flag: bool = False                 # store_true
    many: bool = False                 # several values: nargs="+", extended (``--x 1 16`` / ``--x 1,16``)
    doors: tuple = BOTH
    aliases: tuple = ()                # older spellings ``run`` still accepts

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def argparse_kwargs(self) -> dict:
        if self.flag:
            return {"action": "store_true", "default": False, "help": self.help}
        # a list option's default is filled in by ``Options.read``: argparse's "extend" would append to it
        kw: dict = {"default": None if self.many else self.default, "help": self.help}
        if self.type is not None:
            kw["type"] = self.type
        if self.choices is not None:
            kw["choices"] = self.choices
        if self.many:
            kw.update(nargs="+", action="extend")
        return kw


OPTIONS: tuple[Opt, ...] = (
    Opt("model", "model under test: hub id (owner/name), Hugging Face directory, TorchScript .pt, config.json "
                 f"(with --random-weights), or tiny; default ${ENV_MODEL}, else the built-in tiny self-test "
                 "(then nothing is signed off)", type=model_arg),
    Opt("onnx", "judge this ONNX file (your own export / optimizer pipeline's) instead of the suite's conversion: "
                "graph checks, equivalence, perf and accuracy through --backend onnxruntime, tensorrt or ixrt; --model "
                "names the torch model it must match (required)", type=input_file("ONNX file")),
    Opt("engine", "judge this prebuilt TensorRT / ixRT engine plan (trtexec, ixrtexec) with --backend tensorrt or "
                  "ixrt; --model names the torch model it must match (required)", type=input_file("engine plan")),
    Opt("random-weights", "allow the seeded random-weight shape twin of a config.json or model directory "
                          "(conversion and speed only: accuracy is then not judged)", flag=True),
    Opt("squad", "SQuAD v1.1 JSON (default: the official dev set from $ALBERT_IXRT_SQUAD, the cache or "
                 "../shared/data; the tiny self-test: its shipped sample)", type=input_file("SQuAD JSON file")),
    Opt("tokenizer", "spiece.model or a model directory holding one (default: the model's own, "
                     "$ALBERT_IXRT_TOKENIZER or ../shared/data/albert-base-v2)", type=tokenizer_arg),
    Opt("backend", "runner under test", default="torch", choices=BACKENDS),
    Opt("precision", "precision of the runner under test (per backend: "
        + "; ".join(f"{b}: {', '.join(ps)}" for b, ps in BACKEND_PRECISIONS.items()) + ")",
        default="fp32", choices=PRECISIONS),
    Opt("device", "device of the runner under test (torch: auto, cpu, cuda, cuda:N; onnxruntime: auto, cpu, cuda, "
                  "tensorrt; engines: auto)", default="auto"),
    Opt("reference-device", "device of the torch fp32 reference every output is judged against (cpu, cuda, "
                            "cuda:N)", default="cpu"),
    Opt("batch-size", "features per runner call when evaluating the dev set (the reference's batch 16)",
        default=DEFAULT_EVAL_BATCH_SIZE, type=positive_int),
    Opt("limit", "evaluate only the first K questions (quick; accuracy is then not judged: NOT SIGNED OFF)",
        type=positive_int),
    Opt("perf-batch-sizes", "batch sizes timed at sequence 384 (default 1 16; '1 16' or '1,16')",
        default=DEFAULT_PERF_BATCH_SIZES, type=batch_sizes, many=True, aliases=("bench-batch-sizes",)),
    Opt("tf32", "tensorrt/ixrt fp32: let the builder use TF32 MatMuls (off by default, as in Polygraphy: a TF32 "
                "engine is not fp32)", flag=True),
    Opt("allow-skips", "exploratory runs: a check that cannot judge the named subject (missing weights, backend, "
                       "GPU) skips instead of failing; the run is then NOT SIGNED OFF", flag=True),
    Opt("no-feature-cache", "build the SQuAD features afresh, neither reading nor writing the feature cache",
        flag=True),
    Opt("workers", "processes that build features (default: the cores this process may use)", type=positive_int),
    # run only
    Opt("skip", f"leave out steps ({', '.join(SKIPPABLE)}); each is then not judged (NOT SIGNED OFF)",
        default=(), choices=SKIPPABLE, many=True, doors=(RUN,)),
    Opt("profile", "tiny: the built-in offline self-test (the default when no model is named; kept for scripts)",
        choices=("tiny",), doors=(RUN,)),
    Opt("out", "results folder (default ./results)", default="results", type=output_dir, doors=(RUN,)),
    Opt("quiet", "no progress bars or per-step lines", flag=True, doors=(RUN,)),
    # pytest only
    Opt("albert-report", "write the sign-off record (report.md, report.json: what run writes) into this folder",
        type=output_dir, doors=(PYTEST,)),
    Opt("strict-assets", "self-tests: fail instead of skipping when ../shared data is missing", flag=True,
        doors=(PYTEST,)),
    Opt("require-gpu", "self-tests: fail instead of skipping when a GPU, TensorRT or another backend is missing",
        flag=True, doors=(PYTEST,)),
)
BY_NAME = {opt.name: opt for opt in OPTIONS}


def offered(door: str) -> tuple[Opt, ...]:
    return tuple(opt for opt in OPTIONS if door in opt.doors)


def add_options(addoption: Callable, door: str, *, spelling: Callable[[Opt], Iterable[str]] | None = None,
                dest_prefix: str = "") -> None:
    """Add every option ``door`` offers through ``addoption(*flags, dest=..., **kwargs)``: argparse's
    ``add_argument`` or pytest's ``group.addoption``.  ``spelling(opt)`` gives the flags (default
    ``--name`` plus the aliases); ``dest_prefix`` keeps the values apart from other plugins' (pytest)."""
    spelling = spelling or (lambda opt: [f"--{opt.name}", *(f"--{a}" for a in opt.aliases)])
    for opt in offered(door):
        addoption(*spelling(opt), dest=dest_prefix + opt.dest, **opt.argparse_kwargs())


def _flat(values) -> list:
    """``[[1, 16], [4]]`` (one list per value of ``batch_sizes``) -> ``[1, 16, 4]``."""
    out: list = []
    for v in values:
        out.extend(v if isinstance(v, (list, tuple)) else [v])
    return out


@dataclass(frozen=True)
class Options:
    """The values of one invocation, whichever door parsed them (defaults from the table)."""

    door: str = RUN
    model: str | None = None
    onnx: str | None = None
    engine: str | None = None
    random_weights: bool = False
    squad: str | None = None
    tokenizer: str | None = None
    backend: str = "torch"
    precision: str = "fp32"
    device: str = "auto"
    reference_device: str = "cpu"
    batch_size: int = DEFAULT_EVAL_BATCH_SIZE
    limit: int | None = None
    perf_batch_sizes: tuple[int, ...] = DEFAULT_PERF_BATCH_SIZES
    tf32: bool = False
    allow_skips: bool = False
    no_feature_cache: bool = False
    workers: int | None = None
    skip: tuple[str, ...] = ()
    profile: str | None = None
    out: str = "results"
    quiet: bool = False
    albert_report: str | None = None
    strict_assets: bool = False
    require_gpu: bool = False
    #: $ALBERT_IXRT_MODEL as this invocation saw it (None: unset)
    env_model: str | None = field(default=None)

    @classmethod
    def read(cls, get: Callable[[str], Any], door: str, environ=None) -> "Options":
        """The options of ``door`` by their dests (``get(dest)``), the rest at their defaults."""
        environ = os.environ if environ is None else environ
        values: dict = {"door": door, "env_model": environ.get(ENV_MODEL)}
        known = {f.name for f in fields(cls)}
        for opt in offered(door):
            if opt.dest in known:
                value = get(opt.dest)
                if opt.many:
                    value = tuple(dict.fromkeys(_flat(value if value is not None else opt.default)))
                values[opt.dest] = value
        return cls(**values)

    @classmethod
    def from_namespace(cls, ns, door: str = RUN, environ=None) -> "Options":
        return cls.read(lambda dest: getattr(ns, dest, BY_NAME[dest.replace("_", "-")].default), door, environ)

    def given(self) -> dict:
        """Options that differ from the table's defaults (for the record: what the user asked for)."""
        out = {}
        for opt in offered(self.door):
            value = getattr(self, opt.dest, None)
            default = tuple(opt.default) if opt.many else (False if opt.flag else opt.default)
            if value != default:
                out[opt.name] = list(value) if isinstance(value, tuple) else value
        return out
