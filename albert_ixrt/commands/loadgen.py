"""``albert-ixrt loadgen``: MLPerf LoadGen SingleStream / Offline over a runner and real SQuAD features.

Two modes: quick (the default: small counts, seconds on the tiny model, not meant to be VALID) and
``--mlperf-valid`` (MLPerf's duration and query-count rules, config.MLPERF_*: ten minutes or more per
scenario).  Either way the console says LoadGen's verdict and why, and LoadGen's own logs stay in
``--out``.
"""
from __future__ import annotations

import json
import sys

from . import nonnegative_int, output_dir, positive_float, positive_int
from .bench import DEFAULT_EXAMPLES, add_runner_args, build_runner, features_for, load_model_for, model_info_for, precision_of

HELP = "MLPerf LoadGen SingleStream/Offline performance run of a runner on SQuAD features"
#: Quick-mode defaults (seconds on the tiny model); --mlperf-valid replaces them by MLPerf's rules.
QUICK = {"min_query_count": 32, "min_duration_ms": 1000, "max_duration_ms": 60_000}


def add_arguments(p):
    from ..config import MLPERF_MIN_DURATION_MS, MLPERF_MIN_QUERY_COUNT

    add_runner_args(p)
    p.set_defaults(examples=None)   # quick mode: DEFAULT_EXAMPLES; --mlperf-valid: the whole dev set
    p.add_argument("--scenario", nargs="+", default=["SingleStream", "Offline"], choices=("SingleStream", "Offline"),
                   help="LoadGen scenarios to run, in order (default: both)")
    p.add_argument("--mlperf-valid", action="store_true",
                   help=f"follow MLPerf's rules for a run meant to be VALID: min duration "
                        f"{MLPERF_MIN_DURATION_MS // 1000} s, >= {MLPERF_MIN_QUERY_COUNT['SingleStream']} SingleStream "
                        f"queries, >= {MLPERF_MIN_QUERY_COUNT['Offline']} Offline samples, no duration cap, every "
                        "dev-set question unless --examples (10+ minutes a scenario); exit 1 if LoadGen says INVALID. "
                        "Without it: a quick run, not meant to be VALID")
    p.add_argument("--batch-size", type=positive_int, default=16, help="Offline: samples per runner call (default 16)")
    p.add_argument("--seq-len", type=positive_int, help="pad every sample to this length (default: the features' 384)")
    p.add_argument("--min-query-count", type=positive_int,
                   help=f"SingleStream queries / Offline samples at least (quick default {QUICK['min_query_count']}; "
                        "with --mlperf-valid only a higher value is taken)")
    p.add_argument("--min-duration-ms", type=nonnegative_int,
                   help=f"run at least this long (quick default {QUICK['min_duration_ms']}; with --mlperf-valid "
                        "only a higher value is taken)")
    p.add_argument("--max-duration-ms", type=nonnegative_int,
                   help=f"stop after this long, 0 = no cap (quick default {QUICK['max_duration_ms']}; "
                        "--mlperf-valid: 0)")
    p.add_argument("--expected-latency-ms", type=positive_float, default=10.0,
                   help="SingleStream hint: LoadGen pre-generates about min_duration / this many queries (default 10)")
    p.add_argument("--expected-qps", type=positive_float, default=100.0,
                   help="Offline hint: LoadGen issues about 1.1 x expected_qps x min_duration samples (default 100); "
                        "too low and the run ends early, INVALID")
    p.add_argument("--out", default="results/loadgen", type=output_dir,
                   help="folder for LoadGen's logs (OUT/<scenario>/mlperf_log_summary.txt, mlperf_log_detail.txt) "
                        "and loadgen_<scenario>.json (default results/loadgen)")


def scenario_settings(args, scenario: str):
    """The LoadgenSettings of one scenario: quick defaults, or MLPerf's rules with --mlperf-valid."""
    from ..errors import AlbertIxrtError
    from ..loadgen import LoadgenSettings

    given = {k: getattr(args, k) for k in QUICK if getattr(args, k) is not None}
    common = dict(batch_size=args.batch_size, seq_len=args.seq_len, expected_latency_ms=args.expected_latency_ms,
                  expected_qps=args.expected_qps)
    try:
        if args.mlperf_valid:
            return LoadgenSettings.mlperf_valid(scenario, **common, **given)
        return LoadgenSettings(scenario=scenario, **common, **{**QUICK, **given})
    except ValueError as exc:
        hint = "; drop those options or --mlperf-valid" if args.mlperf_valid else ""
        raise AlbertIxrtError(f"loadgen {scenario}: {exc}{hint}") from None


def run(args) -> int:
    from pathlib import Path

    from ..config import DEFAULT_SQUAD
    from ..loadgen import QUICK_NOTE, run_loadgen, write_result

    precision_of(args)  # a precision the backend lacks is refused before the model loads
    settings = {scenario: scenario_settings(args, scenario) for scenario in args.scenario}  # bad options: no work
    if args.examples is None and not args.mlperf_valid:
        args.examples = DEFAULT_EXAMPLES
    model = load_model_for(args)
    info = model_info_for(args, model)
    seq = args.seq_len or DEFAULT_SQUAD.max_seq_length
    invalid = []
    with build_runner(args, model, (1, args.batch_size), (seq,)) as runner:  # first: a missing backend fails fast
        features, vocab = features_for(args, model)
        for scenario in args.scenario:
            result = run_loadgen(runner, features, settings[scenario], log_dir=Path(args.out) / scenario,
                                 vocab_size=vocab)
            result.settings["model"] = info
            print("\n".join(result.console_lines()))
            line = {"scenario": scenario, "valid": result.valid, "mode": result.mode,
                    "invalid_reasons": result.invalid_reasons,
                    "samples_per_second": result.samples_per_second,
                    "p90_latency_ms": (result.latency_ns.get("90.00") or 0) / 1e6, "samples": result.samples_issued,
                    "weights": info.get("weights"), "log_dir": result.log_dir}
            print(json.dumps(line, ensure_ascii=False))
            print(f"wrote {write_result(result, Path(args.out) / f'loadgen_{scenario}.json')}", file=sys.stderr)
            if result.valid is not True:
                invalid.append(scenario)
    if not args.mlperf_valid:
        print(f"note: {QUICK_NOTE}")
        return 0
    if invalid:
        print(f"--mlperf-valid: LoadGen says INVALID for {', '.join(invalid)} (reasons above)", file=sys.stderr)
        return 1
    return 0
