"""``albert-ixrt bench``: throughput (sequences/s and batches/s) and latency percentiles of one
runner on real SQuAD features, per batch size and sequence length; JSON for ``albert-ixrt report``.

Also home of the runner/feature setup that ``albert-ixrt loadgen`` shares.
"""
from __future__ import annotations

import argparse
import sys

from ..bench import DEFAULT_BATCH_SIZES, DEFAULT_SEQ_LENS

from . import (add_backend_args, add_model_args, input_file, nonnegative_float, nonnegative_int, output_file,
               positive_float, positive_int, positive_ints, tokenizer_arg)

HELP = "benchmark a runner: sequences/s, batches/s (\"QPS\") and latency p50/p90/p99 per batch size"

DEFAULT_PRECISION = {"torch": "fp32", "onnxruntime": "fp32", "tensorrt": "fp16", "ixrt": "fp16"}
#: SQuAD questions featurized for the inputs: enough distinct features for a batch of 64.
DEFAULT_EXAMPLES = 64


def add_runner_args(p: argparse.ArgumentParser) -> None:
    """Model, backend and data options shared by bench and loadgen."""
    add_model_args(p)
    add_backend_args(p, precision_default=None, precision_help="default: fp16 for tensorrt/ixrt, else fp32")
    p.add_argument("--onnx", type=input_file("ONNX file"),
                   help="ONNX file for onnxruntime/tensorrt/ixrt (default: convert --model, cached)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (torch, onnxruntime); onnxruntime also "
                                                   "tensorrt (its TensorRT execution provider)")
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads (torch intra-op / onnxruntime intra_op_num_threads)")
    p.add_argument("--compile", action="store_true", help="torch: torch.compile (CUDA graphs on a GPU)")
    from . import add_compile_args

    add_compile_args(p)
    p.add_argument("--graph-optimization-level", default="all", choices=("disable", "basic", "extended", "all"),
                   help="onnxruntime graph optimisation level")
    p.add_argument("--engine-cache", help="tensorrt/ixrt: folder of cached engines (default: the user cache)")
    p.add_argument("--plugin", help="ixrt: plugin library (default: lib/libixrt_plugin.so beside the tensorrt "
                   "module, else $IXRT_PLUGIN_PATH, else libixrt_plugin.so)")
    p.add_argument("--squad", type=input_file("SQuAD JSON file"),
                   help="SQuAD v1.1 JSON for the inputs (default: the official dev set)")
    p.add_argument("--tokenizer", type=tokenizer_arg, help="spiece.model or a model directory holding one")
    p.add_argument("--examples", type=positive_int, default=DEFAULT_EXAMPLES,
                   help=f"SQuAD questions featurized for the inputs (default {DEFAULT_EXAMPLES})")


def add_arguments(p):
    add_runner_args(p)
    p.add_argument("--batch-size", type=positive_ints, nargs="+", default=list(DEFAULT_BATCH_SIZES),
                   help="batch sizes (default: 1 16)")
    p.add_argument("--seq-len", type=positive_ints, nargs="+", default=list(DEFAULT_SEQ_LENS),
                   help="sequence lengths (default: 384)")
    p.add_argument("--sweep", action="store_true", help="batch sizes 1 2 4 8 16 32 (overrides --batch-size)")
    p.add_argument("--warmup", type=nonnegative_int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--iterations", type=positive_int, default=20, help="timed calls per point, at least (default 20)")
    p.add_argument("--min-seconds", type=nonnegative_float, default=0.0, help="time each point at least this long")
    p.add_argument("--max-seconds", type=positive_float, default=60.0, help="stop a point after this long (default 60)")
    p.add_argument("--transfers", default="auto", choices=("auto", "with_copies", "device_only", "both"),
                   help="time with host<->device copies, without, or both (auto: both on a GPU)")
    p.add_argument("--json", type=output_file, help="write the results here (input of `albert-ixrt report`)")


def precision_of(args) -> str:
    from ..options import check_backend_precision, check_device, check_onnx_backend

    precision = args.precision or DEFAULT_PRECISION[args.backend]
    check_backend_precision(args.backend, precision)
    check_onnx_backend(args.onnx, args.backend)
    check_device(args.backend, args.device)
    return precision


def load_model_for(args):
    """The model, unless only an ONNX file was given (then nothing to load)."""
    from ..config import DEFAULT_MODEL_ID
    from ..model import load_model

    if args.onnx and args.backend != "torch" and not args.model:
        return None
    return load_model(args.model or DEFAULT_MODEL_ID, random_weights=args.random_weights)


def model_info_for(args, model) -> dict:
    if model is not None:
        return model.describe()
    return {"model": args.onnx, "weights": "random" if args.random_weights else "unknown",
            "label": "ONNX file given directly; weights not checked"}


def build_runner(args, model, batch_sizes=(1, 16), seq_lens=(384,)):
    """The runner ``args`` describe; ONNX backends convert ``model`` (cached) when no --onnx is given.
    A TensorRT/ixRT engine's profile covers the batch sizes to be timed at any length up to the longest
    (``ShapeProfile.for_feeds``, the one profile rule)."""
    from ..loaders import make_runner

    if args.backend == "torch":
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        from . import compile_kwargs

        kw = compile_kwargs(args)
    elif args.backend == "onnxruntime":
        kw = {"device": args.device, "intra_op_threads": args.threads,
              "graph_optimization_level": args.graph_optimization_level}
    else:
        from ..loaders import engine_options

        kw = {"cache_dir": args.engine_cache, "plugin_path": args.plugin,
              **engine_options(args.backend, batch_sizes, max(seq_lens))}
    return make_runner(args.backend, model, precision_of(args), args.onnx, **kw)


def features_for(args, model, settings=None):
    """(features, vocab_size to fold ids into or None) from the first ``--examples`` questions."""
    from .. import assets
    from ..loaders import prepare_data, resolve_tokenizer
    from ..tokenizer import AlbertTokenizer

    tok_path = resolve_tokenizer(model, args.tokenizer) if model is not None else assets.tokenizer_path(args.tokenizer)
    tok = AlbertTokenizer(tok_path)
    _, features = prepare_data(assets.squad_dev_path(args.squad), tok, limit=args.examples, progress=False,
                               **({"settings": settings} if settings else {}))
    if model is not None:
        vocab = model.config.get("vocab_size")
    else:
        from ..bench import onnx_vocab_size

        vocab = onnx_vocab_size(args.onnx)
    if vocab and tok.vocab_size > vocab:
        print(f"note: tokenizer has {tok.vocab_size} pieces, model {vocab}: ids folded into the model's vocabulary "
              "(speed only)", file=sys.stderr)
        return features, vocab
    return features, None


def run(args) -> int:
    from dataclasses import asdict

    from ..bench import BenchReport, BenchSettings, environment, format_table, run_benchmark
    from ..config import DEFAULT_SQUAD, SquadSettings

    batch_sizes = (1, 2, 4, 8, 16, 32) if args.sweep else tuple(args.batch_size)
    seq_lens = tuple(args.seq_len)
    settings = BenchSettings(batch_sizes=batch_sizes, seq_lens=seq_lens, warmup=args.warmup,
                             iterations=args.iterations, min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                             transfers=args.transfers)
    precision_of(args)  # a precision the backend lacks is refused before the model loads
    model = load_model_for(args)
    info = model_info_for(args, model)
    squad = SquadSettings(max_seq_length=max(max(seq_lens), DEFAULT_SQUAD.max_seq_length))
    with build_runner(args, model, batch_sizes, seq_lens) as runner:  # first: a missing backend fails fast
        features, vocab = features_for(args, model, squad)
        print(f"{runner.describe()}", file=sys.stderr)
        done = []

        def on_result(r):
            print(f"  batch {r.batch_size:>3} seq {r.seq_len} {r.transfer}: {r.sequences_per_s:.1f} seq/s, "
                  f"{r.latency.mean_ms:.3f} ms mean", file=sys.stderr)
            done.append(r)
            if args.json:  # after every point, so a run stopped by a time limit keeps what it measured
                BenchReport(list(done), environment(), info, asdict(settings)).write(args.json)

        report = run_benchmark(runner, features, settings, model_info=info, vocab_size=vocab, on_result=on_result)
    desc = runner.describe()
    if desc.get("compile_mode"):
        print(f"torch.compile mode {desc['compile_mode']}: {desc['compile_seconds']:.1f} s compiling "
              f"{len(desc['compiled_shapes'])} shapes (not in the timings)", file=sys.stderr)
    if info.get("weights") == "random":
        print("random weights: speed only", file=sys.stderr)
    print(format_table(report.results))
    if args.json:
        print(f"wrote {report.write(args.json)}")
    return 0
