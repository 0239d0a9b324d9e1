"""Sub-commands of ``albert-ixrt``, one module each, plus the argument groups they share."""
from __future__ import annotations

import argparse

from ..config import DEFAULT_SQUAD
from ..options import BACKENDS, PRECISIONS


# argparse types live on the options floor (the acceptance option table shares them); re-exported here.
from ..options import (existing_dir, input_file, nonnegative_float, nonnegative_int, output_dir,  # noqa: F401
                       output_file, positive_float, positive_int, positive_ints, tokenizer_arg)


def add_backend_args(p: argparse.ArgumentParser, precision_default: str | None = "fp32",
                     precision_help: str = "") -> None:
    """--backend and --precision with their choices; which precision a backend takes is checked
    by ``check_backend_precision`` (argparse cannot relate two options)."""
    from ..options import BACKEND_PRECISIONS

    table = "; ".join(f"{b}: {', '.join(ps)}" for b, ps in BACKEND_PRECISIONS.items())
    p.add_argument("--backend", default="torch", choices=BACKENDS, help="runner backend (default: torch)")
    p.add_argument("--precision", default=precision_default, choices=PRECISIONS,
                   help=(precision_help or f"default {precision_default}") + f" (per backend: {table})")


def reference_model_default() -> str:
    """The model the tools (evaluate, convert, layerwise) work on when --model is not given: the one
    $ALBERT_IXRT_MODEL names, else the reference checkpoint.  (The acceptance session's subject is the
    plan's decision: acceptance/plan.py named_model.)"""
    import os

    from ..assets import ENV_MODEL
    from ..config import DEFAULT_MODEL_ID

    return os.environ.get(ENV_MODEL) or DEFAULT_MODEL_ID


def add_model_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--model", default=default, help="hub id, Hugging Face directory, TorchScript .pt, "
                   "a config.json (with --random-weights), or 'tiny'")
    p.add_argument("--random-weights", action="store_true",
                   help="build the seeded random-weight shape twin (speed/conversion only, never accuracy)")


def add_compile_args(p: argparse.ArgumentParser) -> None:
    """torch-only options: device, torch.compile and its mode, attention kernel."""
    from ..config import COMPILE_MODES

    if not any("--device" in a.option_strings for a in p._actions):
        p.add_argument("--device", default="auto", help="auto, cpu, cuda (torch: cuda:N too); onnxruntime also "
                                                       "tensorrt (its TensorRT execution provider)")
    if not any("--compile" in a.option_strings for a in p._actions):
        p.add_argument("--compile", action="store_true", help="torch: torch.compile (CUDA graphs on a GPU), "
                                                             "batches padded to shape buckets (config.py)")
    p.add_argument("--compile-mode", choices=COMPILE_MODES,
                   help="torch.compile mode (default: reduce-overhead on a GPU, default on the CPU); "
                        "max-autotune for peak throughput at a longer compile")
    p.add_argument("--attention", default="sdpa", choices=("sdpa", "eager"),
                   help="torch attention kernel for inference (default sdpa; export always uses eager)")


def compile_kwargs(args) -> dict:
    """Runner keyword arguments of add_compile_args' options (torch backend only)."""
    if getattr(args, "backend", "torch") != "torch":
        return {}
    if getattr(args, "compile_mode", None) and not args.compile:
        from ..errors import AlbertIxrtError

        raise AlbertIxrtError("--compile-mode needs --compile")
    return {"device": args.device, "compile": args.compile, "compile_mode": args.compile_mode,
            "attention": args.attention}


def add_squad_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--squad", required=required, type=input_file("SQuAD JSON file"),
                   help="SQuAD v1.1 JSON (default: the official dev set)")
    p.add_argument("--tokenizer", type=tokenizer_arg, help="spiece.model or a model directory holding one")
    p.add_argument("--max-seq-length", type=positive_int, default=DEFAULT_SQUAD.max_seq_length,
                   help="tokens per feature (default %(default)s)")
    p.add_argument("--doc-stride", type=positive_int, default=DEFAULT_SQUAD.doc_stride,
                   help="tokens between the starts of a long context's windows (default %(default)s)")
    p.add_argument("--max-query-length", type=positive_int, default=DEFAULT_SQUAD.max_query_length,
                   help="question tokens kept (default %(default)s)")
    add_feature_args(p)


def add_feature_args(p: argparse.ArgumentParser) -> None:
    """How features are built: the feature cache (albert_ixrt/feature_cache.py) and processes."""
    p.add_argument("--no-feature-cache", action="store_true",
                   help="build the SQuAD features afresh, neither reading nor writing the feature cache")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes that build features (default: the cores this process may use)")


def feature_kwargs(args) -> dict:
    """``prepare_data`` keywords from ``add_feature_args`` options."""
    from ..options import default_workers

    return {"use_cache": not getattr(args, "no_feature_cache", False),
            "workers": getattr(args, "workers", None) or default_workers()}


def squad_settings(args):
    from ..config import SquadSettings
    from ..errors import AlbertIxrtError

    s = SquadSettings(max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                      max_query_length=args.max_query_length)
    if s.doc_stride < 1 or s.max_query_length < 1:
        raise AlbertIxrtError(f"--doc-stride and --max-query-length must be >= 1, got {s.doc_stride}, "
                              f"{s.max_query_length}")
    if s.max_seq_length < s.max_query_length + 4:
        raise AlbertIxrtError(f"--max-seq-length {s.max_seq_length} leaves no room for context after a "
                              f"{s.max_query_length}-token question and 3 special tokens")
    return s


def write_and_print(result, out_dir: str, headline: str) -> int:
    """Write an evaluation's predictions.json and metrics.json, and print both metrics, labelled."""
    import json
    from pathlib import Path

    pred, met = result.write(Path(out_dir))
    print(headline)
    print("\n".join(result.scores.summary_lines()))
    print(json.dumps({"predictions": str(pred), "metrics": str(met)}, ensure_ascii=False))  # paths as they are
    return 0


def load_model_arg(args):
    from ..model import load_model

    return load_model(args.model, random_weights=args.random_weights)
