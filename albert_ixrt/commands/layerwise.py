"""``albert-ixrt layerwise``: compare one graph (or the TensorRT engine built from it) with torch fp32
layer by layer on real dev features, and name the first layer over tolerance.

Exit codes: 0 no row over tolerance, 1 some row over (the first is named), 2 bad input.
"""
from __future__ import annotations

from . import (add_model_args, add_squad_args, feature_kwargs, input_file, load_model_arg, output_file, positive_int,
               reference_model_default, squad_settings)

HELP = "name the first ALBERT layer where an ONNX graph or TensorRT engine drifts from torch fp32"


def add_arguments(p):
    from ..config import TOLERANCES
    from ..export import STAGE_FILES
    from ..layerwise import BACKENDS

    add_model_args(p, default=reference_model_default())
    which = p.add_mutually_exclusive_group()
    which.add_argument("--onnx", type=input_file("ONNX file"), help="the graph to compare (any conversion stage)")
    which.add_argument("--stage", choices=tuple(STAGE_FILES),
                       help="convert --model (cached per stage) and compare this stage's graph; with --backend "
                            "tensorrt/ixrt and neither --onnx nor --stage: the graph its engine builds from at "
                            "--precision (default fp16), as run / bench / evaluate choose it")
    p.add_argument("--backend", default="onnxruntime", choices=BACKENDS,
                   help="what runs the graph: onnxruntime (CPU), or a TensorRT / ixRT engine built from it by "
                        "the suite's engine builder, every boundary marked as an engine output (default onnxruntime)")
    p.add_argument("--precision", choices=tuple(TOLERANCES),
                   help="tolerances to judge with (config.TOLERANCES / HIDDEN_STATE_TOLERANCES); default: the "
                        "stage's precision, or the --onnx graph's weight precision")
    p.add_argument("--features", type=positive_int, default=4, metavar="N",
                   help="compare on the first N dev features (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=2, help="features per run (default %(default)s)")
    p.add_argument("--json", required=True, metavar="OUT", type=output_file,
                   help="write the rows, tolerances and verdict here")
    add_squad_args(p)


def run(args) -> int:
    from .. import assets
    from ..compare import SquadFeeds
    from ..config import STAGE_PRECISION
    from ..fileio import write_json_atomic
    from ..layerwise import hf_model, layerwise
    from ..loaders import check_vocab, prepare_data, resolve_tokenizer
    from ..tokenizer import AlbertTokenizer

    settings = squad_settings(args)
    if args.onnx is None and args.stage is None and args.backend not in ("tensorrt", "ixrt"):
        from ..errors import AlbertIxrtError

        raise AlbertIxrtError("one of the arguments --onnx --stage is required (or --backend tensorrt/ixrt without "
                              "them: the graph its engine builds from)")
    if args.backend in ("tensorrt", "ixrt"):
        from ..engine import import_tensorrt

        import_tensorrt(args.backend)  # no TensorRT / ixRT here: one line now, not after loading and converting
    model = load_model_arg(args)
    hf_model(model)  # a TorchScript model is refused before any conversion or data work
    onnx, label = args.onnx, args.onnx
    if args.onnx is None and args.stage is None:
        from ..engine_input import engine_graph
        from ..loaders import converted

        args.precision = args.precision or "fp16"
        out, manifest = converted(model)
        onnx = engine_graph(manifest, out, args.backend, args.precision)
        label = f"{args.backend} {args.precision} engine ({onnx.name})"
    elif args.stage:
        from ..export import stage_paths
        from ..loaders import converted

        out, manifest = converted(model)
        onnx, label = stage_paths(manifest, out).get(args.stage), args.stage
        if onnx is None:
            from ..errors import AlbertIxrtError

            raise AlbertIxrtError(f"{out}: the conversion has no {args.stage!r} stage")
    precision = args.precision or (STAGE_PRECISION[args.stage] if args.stage else graph_precision(onnx))
    tokenizer = AlbertTokenizer(resolve_tokenizer(model, args.tokenizer))
    check_vocab(tokenizer, model)
    _, features = prepare_data(assets.squad_dev_path(args.squad), tokenizer, settings, limit=args.features,
                               progress=False, **feature_kwargs(args))
    feeds = SquadFeeds(features[:args.features], args.batch_size)
    result = layerwise(model, onnx, feeds, precision=precision, backend=args.backend, label=label)
    print(result.table())
    write_json_atomic(args.json, result.to_dict())
    print(f"written: {args.json} ({result.seconds:.1f} s)")
    return 0 if result.passed else 1


def graph_precision(onnx) -> str:
    """fp16 for a graph whose weights are mostly fp16 (trt_api.graph_precision), else fp32."""
    from ..trt_api import graph_precision as weight_precision

    return "fp16" if weight_precision(onnx) == "fp16" else "fp32"
