"""``albert-ixrt run``: the acceptance pipeline end to end
(load -> features -> convert -> equivalence -> evaluate -> bench -> report).

Default: the real model and the official dev set.  ``--profile tiny``: the embedded self-test
(tiny seeded model, project-made tokenizer and SQuAD sample), offline, in seconds.
"""
from __future__ import annotations

from . import add_model_args

HELP = "run the acceptance pipeline (default: real model + official dev set; --profile tiny: offline self-test)"


def add_arguments(p):
    p.add_argument("--profile", choices=("real", "tiny"), default="real")
    add_model_args(p)
    p.add_argument("--squad", help="SQuAD v1.1 JSON (default: official dev set, or the shipped sample for tiny)")
    p.add_argument("--tokenizer", help="spiece.model or model directory")
    p.add_argument("--backend", default="torch")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, help="only the first K questions")
    p.add_argument("--skip", nargs="*", default=[], choices=("convert", "equivalence", "bench"),
                   help="leave out optional steps")
    p.add_argument("--out", default="results", help="output directory (default: ./results)")
    p.add_argument("--quiet", action="store_true")


def run(args) -> int:
    from ..pipeline import run_acceptance, summarize

    report, result = run_acceptance(profile=args.profile, model_spec=args.model, random_weights=args.random_weights,
                            squad=args.squad, tokenizer=args.tokenizer, backend=args.backend,
                            precision=args.precision, batch_size=args.batch_size, limit=args.limit,
                            out_dir=args.out, progress=not args.quiet, skip=tuple(args.skip))
    print(summarize(report, result))
    print(f"written: {args.out}/report.md (summary), report.json, perf_report.md, throughput.png, "
          "predictions.json, metrics.json, bench.json, equivalence.json, onnx/manifest.json")
    return 0 if report["passed"] else 1
