"""``albert-ixrt merge``: join the outputs of sharded ``evaluate --shard I/N`` runs into one
predictions.json + metrics.json, scored on the whole data set."""
from __future__ import annotations

from pathlib import Path

from . import existing_dir, input_file, output_dir, positive_int, write_and_print

HELP = "merge sharded evaluate outputs (predictions.json + metrics.json per directory) and score them"


def add_arguments(p):
    p.add_argument("shards", nargs="+", type=existing_dir, help="output directories of `evaluate --shard I/N`")
    p.add_argument("--squad", type=input_file("SQuAD JSON file"),
                   help="the SQuAD file the shards came from (default: the official dev set)")
    p.add_argument("--limit", type=positive_int, help="the --limit the shards were run with")
    p.add_argument("--out", required=True, type=output_dir, help="output directory for the merged predictions.json "
                   "and metrics.json")


def run(args) -> int:
    from .. import assets
    from ..merge import merge_shards

    merged = merge_shards([Path(d) for d in args.shards], assets.squad_dev_path(args.squad), args.limit)
    s = merged.scores
    return write_and_print(merged, args.out, f"merged {len(args.shards)} shards: {s.questions} questions, "
                                             f"{s.features} features")
