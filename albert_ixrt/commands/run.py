"""``albert-ixrt run``: the acceptance pipeline end to end
(load -> features -> convert -> equivalence -> evaluate -> bench -> report).

Default: the real model and the official dev set.  ``--profile tiny``: the embedded self-test
(tiny seeded model, project-made tokenizer and SQuAD sample), offline, in seconds.
"""
from __future__ import annotations

from . import (add_backend_args, add_feature_args, add_model_args, feature_kwargs, input_file, output_dir, positive_int,
               positive_ints, tokenizer_arg)

HELP = "run the acceptance pipeline (default: real model + official dev set; --profile tiny: offline self-test)"


def add_arguments(p):
    from ..pipeline import OPTIONAL_STEPS
    from ..steps import BENCH_BATCH_SIZES

    p.add_argument("--profile", choices=("real", "tiny"), default="real",
                   help="real: the real model and the official dev set (default); tiny: the embedded offline "
                        "self-test (tiny seeded model, own tokenizer and 12-question sample), in seconds")
    add_model_args(p)
    p.add_argument("--squad", type=input_file("SQuAD JSON file"),
                   help="SQuAD v1.1 JSON (default: official dev set, or the shipped sample for tiny)")
    p.add_argument("--tokenizer", type=tokenizer_arg, help="spiece.model or model directory")
    add_feature_args(p)
    add_backend_args(p)
    p.add_argument("--batch-size", type=positive_int, default=8, help="features per runner call in the evaluate "
                   "step (default 8)")
    p.add_argument("--limit", type=positive_int, help="only the first K questions (shortens features and evaluate; "
                   "the accuracy thresholds are then not judged)")
    p.add_argument("--skip", nargs="*", default=[], choices=OPTIONAL_STEPS,
                   help="leave out optional steps (each is shown as skipped in the report)")
    p.add_argument("--bench-batch-sizes", type=positive_ints, nargs="+", default=list(BENCH_BATCH_SIZES),
                   help="batch sizes of the bench step (default: %(default)s; fewer or smaller is faster)")
    p.add_argument("--tf32", action="store_true",
                   help="tensorrt/ixrt fp32: let the builder use TF32 MatMuls (off by default, as in Polygraphy: every "
                        "TensorRT builder config starts with TF32 on, and a TF32 engine is not fp32; labelled in the "
                        "report's builder flags)")
    p.add_argument("--out", default="results", type=output_dir, help="output directory (default: ./results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-step lines")


def run(args) -> int:
    from ..errors import AlbertIxrtError
    from ..pipeline import run_acceptance
    from ..run_report import files_line, summarize

    report, result = run_acceptance(profile=args.profile, model_spec=args.model, random_weights=args.random_weights,
                                    squad=args.squad, tokenizer=args.tokenizer, backend=args.backend,
                                    precision=args.precision, batch_size=args.batch_size, limit=args.limit,
                                    out_dir=args.out, progress=not args.quiet, skip=tuple(args.skip),
                                    bench_batch_sizes=tuple(args.bench_batch_sizes),
                                    feature_options=feature_kwargs(args), tf32=args.tf32)
    print(summarize(report, result))
    print(f"written: {files_line(report, args.out)}")
    failure = report.get("failure")
    if failure and failure["input"]:  # bad input found while running (the report says so too): one line, exit 2
        raise AlbertIxrtError(failure["message"])
    return 0 if report["passed"] else 1
