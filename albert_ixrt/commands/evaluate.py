"""``albert-ixrt evaluate``: SQuAD v1.1 dev evaluation of one runner; writes predictions.json and
metrics.json (official and ByteMLPerf-compatible figures, labelled)."""
from __future__ import annotations

import time

from . import (add_backend_args, add_compile_args, add_model_args, add_squad_args, compile_kwargs, feature_kwargs,
               input_file, load_model_arg, output_dir, positive_int, reference_model_default, squad_settings,
               write_and_print)

HELP = "evaluate a model on SQuAD v1.1: writes predictions.json and metrics.json"


def add_arguments(p):
    add_model_args(p, default=reference_model_default())
    add_squad_args(p)
    add_backend_args(p)
    p.add_argument("--onnx", type=input_file("ONNX file"),
                   help="ONNX file for ONNX-based backends (default: convert --model)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="features per runner call (default 8)")
    add_compile_args(p)
    p.add_argument("--limit", type=positive_int, help="only the first K questions")
    p.add_argument("--no-bucket", action="store_true", help="pad every feature to max-seq-length (slower)")
    p.add_argument("--shard", help="I/N: evaluate only the I-th of N contiguous slices of the questions "
                   "(merge the shards with `albert-ixrt merge`)")
    p.add_argument("--out", required=True, type=output_dir, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from .. import assets
    from ..errors import AlbertIxrtError
    from ..evaluate import evaluate
    from ..parallel import parse_shard
    from ..options import check_backend_precision, check_device, check_onnx_backend
    from ..loaders import check_vocab, make_runner, prepare_data, resolve_tokenizer
    from ..tokenizer import AlbertTokenizer

    check_backend_precision(args.backend, args.precision)
    check_device(args.backend, args.device)  # as bench does: a device the backend cannot use, before any work
    check_onnx_backend(args.onnx, args.backend)
    settings = squad_settings(args)
    shard = None
    if args.shard:
        try:
            shard = parse_shard(args.shard)
        except ValueError as exc:
            raise AlbertIxrtError(f"--shard: {exc}") from None
    runner_options = compile_kwargs(args)  # --compile-mode without --compile: refused before any work
    from ..loaders import engine_options

    # tensorrt/ixrt: a profile covering --batch-size at every length up to max_seq_length, before the build
    runner_options.update(engine_options(args.backend, [args.batch_size], max_seq=settings.max_seq_length))
    if args.backend == "onnxruntime":
        runner_options["device"] = args.device  # its execution provider (auto, cpu, cuda, tensorrt)
    model = load_model_arg(args)  # only now: every option above is refused before any work
    tok = AlbertTokenizer(resolve_tokenizer(model, args.tokenizer))
    check_vocab(tok, model)
    t0 = time.perf_counter()
    examples, features = prepare_data(assets.squad_dev_path(args.squad), tok, settings, args.limit,
                                      progress=not args.quiet, shard=shard, **feature_kwargs(args))
    features_s = time.perf_counter() - t0
    with make_runner(args.backend, model, args.precision, args.onnx, **runner_options) as runner:
        result = evaluate(runner, examples, features, batch_size=args.batch_size, bucket=not args.no_bucket,
                          settings=settings, progress=not args.quiet, model_info=model.describe())
    t = result.timings
    t["features_s"] = round(features_s, 3)
    # Wall time after the model is loaded, compile apart (config.GPU_FULL_DEV_EVAL_MAX_S's figure).
    t["wall_after_load_s"] = round(features_s + t["inference_s"] + t["postprocess_s"], 3)
    if shard is not None:
        result.settings["shard"] = {"index": shard[0] + 1, "count": shard[1]}
    s = result.scores
    return write_and_print(result, args.out, f"{model.label}: {s.questions} questions, {s.features} features, "
                                             f"{result.features_per_second:.1f} features/s; "
                                             + ", ".join(f"{k} {v}" for k, v in result.timings.items()))
