"""``albert-ixrt evaluate``: SQuAD v1.1 dev evaluation of one runner; writes predictions.json and
metrics.json (official and ByteMLPerf-compatible figures, labelled)."""
from __future__ import annotations

import os
import time

from . import add_compile_args, add_model_args, add_squad_args, load_model_arg, squad_settings, write_and_print
from . import compile_kwargs

HELP = "evaluate a model on SQuAD v1.1: writes predictions.json and metrics.json"


def add_arguments(p):
    from ..config import DEFAULT_MODEL_ID

    add_model_args(p, default=os.environ.get("ALBERT_IXRT_MODEL") or DEFAULT_MODEL_ID)
    add_squad_args(p)
    p.add_argument("--backend", default="torch", help="torch, onnxruntime, tensorrt, ixrt")
    p.add_argument("--precision", default="fp32", help="fp32, fp16, bf16, int8 (what the backend supports)")
    p.add_argument("--onnx", help="ONNX file for ONNX-based backends (default: convert --model)")
    p.add_argument("--batch-size", type=int, default=8)
    add_compile_args(p)
    p.add_argument("--limit", type=int, help="only the first K questions")
    p.add_argument("--no-bucket", action="store_true", help="pad every feature to max-seq-length (slower)")
    p.add_argument("--shard", help="I/N: evaluate only the I-th of N contiguous slices of the questions "
                   "(merge the shards with `albert-ixrt merge`)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from .. import assets
    from ..errors import AlbertIxrtError
    from ..evaluate import evaluate
    from ..parallel import parse_shard
    from ..pipeline import check_vocab, make_runner, prepare_data, resolve_tokenizer
    from ..tokenizer import AlbertTokenizer

    model = load_model_arg(args)
    tok = AlbertTokenizer(resolve_tokenizer(model, args.tokenizer))
    check_vocab(tok, model)
    shard = None
    if args.shard:
        try:
            shard = parse_shard(args.shard)
        except ValueError as exc:
            raise AlbertIxrtError(str(exc)) from None
    t0 = time.perf_counter()
    examples, features = prepare_data(assets.squad_dev_path(args.squad), tok, squad_settings(args), args.limit,
                                      progress=not args.quiet, shard=shard)
    features_s = time.perf_counter() - t0
    with make_runner(args.backend, model, args.precision, args.onnx, **compile_kwargs(args)) as runner:
        result = evaluate(runner, examples, features, batch_size=args.batch_size, bucket=not args.no_bucket,
                          settings=squad_settings(args), progress=not args.quiet, model_info=model.describe())
    t = result.timings
    t["features_s"] = round(features_s, 3)
    # Wall time after the model is loaded, compile apart (the GPU target of issue 9).
    t["wall_after_load_s"] = round(features_s + t["inference_s"] + t["postprocess_s"], 3)
    if shard is not None:
        result.settings["shard"] = {"index": shard[0] + 1, "count": shard[1]}
    s = result.scores
    return write_and_print(result, args.out, f"{model.label}: {s.questions} questions, {s.features} features, "
                                             f"{result.features_per_second:.1f} features/s; "
                                             + ", ".join(f"{k} {v}" for k, v in result.timings.items()))
