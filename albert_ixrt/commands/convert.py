"""``albert-ixrt convert``: torch -> ONNX -> onnxsim -> onnxruntime-fused -> FP16 (+ trt_fp16), cached per stage,
with ``manifest.json`` describing every file (hashes, sizes, node counts, fused ops, timings)."""
from __future__ import annotations

import argparse
import os

from . import (add_model_args, add_squad_args, feature_kwargs, load_model_arg, nonnegative_int, output_dir,
               positive_int, reference_model_default, squad_settings)

HELP = "convert the model to ONNX (exported, simplified, fused, fp16, trt_fp16) and write manifest.json"
EQUIVALENCE_NAME = "equivalence.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..export import DEFAULT_OPSET

    add_model_args(p, default=reference_model_default())
    p.add_argument("--out", required=True, metavar="DIR", type=output_dir,
                   help="output directory (stages already there with unchanged inputs are reused)")
    p.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET,
                   help="ONNX opset of the export (default %(default)s)")
    p.add_argument("--no-fp16", dest="fp16", action="store_false", help="skip the FP16 variants (fp16, trt_fp16)")
    p.add_argument("--force", action="store_true", help="rebuild every stage even when cached")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--verify", type=nonnegative_int, default=0, metavar="N",
                   help="then compare every stage with torch fp32 on the features of the first N SQuAD questions "
                   "(Polygraphy); writes equivalence.json")
    p.add_argument("--verify-batch", type=positive_int, default=8, metavar="B",
                   help="batch size of --verify (default 8)")
    add_squad_args(p)


def run(args) -> int:
    from ..export import MANIFEST_NAME, convert, graph_problems, stage_table

    if args.verify:
        squad_settings(args)  # checked before the conversion, not after it
    model = load_model_arg(args)
    print(f"model: {model.name} ({model.label}, source sha256 {model.source_sha256[:16]})")
    manifest = convert(model, args.out, opset=args.opset, fp16=args.fp16, progress=args.progress, force=args.force)
    print(stage_table(manifest))
    print(f"manifest: {os.path.join(args.out, MANIFEST_NAME)}")
    problems = graph_problems(manifest)
    for line in problems:
        print(f"graph check: {line}")
    if args.verify > 0:
        problems += verify(model, manifest, args)
    return 1 if problems else 0


def verify(model, manifest: dict, args) -> list[str]:
    """Equivalence of every stage with torch fp32 on real SQuAD features; returns the failures."""
    from .. import assets
    from ..compare import SquadFeeds, compare_manifest
    from ..fileio import write_json_atomic
    from ..loaders import check_vocab, prepare_data, resolve_tokenizer
    from ..tokenizer import AlbertTokenizer

    tokenizer = AlbertTokenizer(resolve_tokenizer(model, args.tokenizer))
    check_vocab(tokenizer, model)
    _, features = prepare_data(assets.squad_dev_path(args.squad), tokenizer, squad_settings(args),
                               limit=args.verify, progress=False, **feature_kwargs(args))
    result = compare_manifest(model, manifest, args.out, SquadFeeds(features, args.verify_batch))
    print(result.table())
    write_json_atomic(os.path.join(args.out, EQUIVALENCE_NAME), result.to_dict())
    failures = result.failures()
    for line in failures:
        print(f"equivalence: {line}")
    return failures
