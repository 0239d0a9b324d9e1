"""``albert-ixrt loadgen``: MLPerf LoadGen SingleStream / Offline over a runner and real SQuAD features."""
from __future__ import annotations

import json
import sys

from . import nonnegative_int, positive_float, positive_int
from .bench import add_runner_args, build_runner, features_for, load_model_for, model_info_for, precision_of

HELP = "MLPerf LoadGen SingleStream/Offline performance run of a runner on SQuAD features"


def add_arguments(p):
    add_runner_args(p)
    p.add_argument("--scenario", nargs="+", default=["SingleStream", "Offline"], choices=("SingleStream", "Offline"),
                   help="LoadGen scenarios to run, in order (default: both)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="Offline: samples per runner call (default 16)")
    p.add_argument("--seq-len", type=positive_int, help="pad every sample to this length (default: the features' 384)")
    p.add_argument("--min-query-count", type=positive_int, default=32, help="LoadGen min_query_count (default 32)")
    p.add_argument("--min-duration-ms", type=nonnegative_int, default=1000,
                   help="LoadGen min_duration in ms (default 1000)")
    p.add_argument("--max-duration-ms", type=positive_int, default=60_000,
                   help="LoadGen max_duration in ms (default 60000)")
    p.add_argument("--expected-latency-ms", type=positive_float, default=10.0, help="SingleStream hint to LoadGen")
    p.add_argument("--expected-qps", type=positive_float, default=100.0,
                   help="Offline hint: LoadGen issues about expected_qps x min_duration samples")
    p.add_argument("--out", help="folder for LoadGen's logs and loadgen_<scenario>.json (default: a temp folder, "
                                 "results printed only)")


def run(args) -> int:
    from pathlib import Path

    from ..config import DEFAULT_SQUAD
    from ..loadgen import LoadgenSettings, run_loadgen, write_result

    precision_of(args)  # a precision the backend lacks is refused before the model loads
    model = load_model_for(args)
    info = model_info_for(args, model)
    seq = args.seq_len or DEFAULT_SQUAD.max_seq_length
    with build_runner(args, model, (1, args.batch_size), (seq,)) as runner:  # first: a missing backend fails fast
        features, vocab = features_for(args, model)
        for scenario in args.scenario:
            settings = LoadgenSettings(scenario=scenario, batch_size=args.batch_size, seq_len=args.seq_len,
                                       min_query_count=args.min_query_count, min_duration_ms=args.min_duration_ms,
                                       max_duration_ms=args.max_duration_ms,
                                       expected_latency_ms=args.expected_latency_ms, expected_qps=args.expected_qps)
            log_dir = Path(args.out) / scenario if args.out else None
            result = run_loadgen(runner, features, settings, log_dir=log_dir, vocab_size=vocab)
            result.settings["model"] = info
            line = {"scenario": scenario, "valid": result.valid, "samples_per_second": result.samples_per_second,
                    "p90_latency_ms": (result.latency_ns.get("90.00") or 0) / 1e6, "samples": result.samples_issued,
                    "weights": info.get("weights")}
            print(json.dumps(line))
            if args.out:
                print(f"wrote {write_result(result, Path(args.out) / f'loadgen_{scenario}.json')}", file=sys.stderr)
    return 0
