"""``albert-ixrt score``: the official SQuAD v1.1 metric, like ``evaluate-v1.1.py``.

Prints exactly ``{"exact_match": X, "f1": Y}``; unanswered questions score 0 (reported on stderr).
"""
from __future__ import annotations

import json
import sys

from . import input_file, positive_int

HELP = "score a predictions file with the official SQuAD v1.1 metric (prints {\"exact_match\": X, \"f1\": Y})"


def add_arguments(p):
    p.add_argument("--squad", required=True, type=input_file("SQuAD JSON file"),
                   help="SQuAD v1.1 JSON with the gold answers")
    p.add_argument("--predictions", required=True, type=input_file("predictions JSON file"),
                   help="JSON object {question id: answer text}")
    p.add_argument("--features", type=positive_int, default=None,
                   help="also print the ByteMLPerf-compatible figures (sums / this many features) on stderr")


def run(args) -> int:
    from ..squad.data import load_squad
    from ..squad.metrics import score
    from ..squad.predictions import load_predictions

    from ..errors import AlbertIxrtError

    examples = load_squad(args.squad, check_answers=False)
    predictions = load_predictions(args.predictions)
    if predictions and not set(predictions) & {e.qid for e in examples}:
        # Every question would score 0: a wrong pairing, not a bad model.
        raise AlbertIxrtError(f"none of the {len(predictions)} question ids in {args.predictions} is in "
                              f"{args.squad} ({len(examples)} questions): were the predictions made on another "
                              "dev set (SQuAD v1.1 dev-v1.1.json, or --limit/--shard of another file)?")
    result = score(examples, predictions, num_features=args.features)
    unknown = len(set(predictions) - {e.qid for e in examples})
    missing = result.questions - result.answered
    if missing:
        print(f"{missing} of {result.questions} questions have no prediction and score 0", file=sys.stderr)
    if unknown:
        print(f"{unknown} predictions name question ids not in {args.squad}; ignored", file=sys.stderr)
    if args.features:
        print(json.dumps({"bytemlperf_exact_match": result.bytemlperf_exact_match,
                          "bytemlperf_f1": result.bytemlperf_f1, "features": args.features}), file=sys.stderr)
    print(json.dumps(result.official()))
    return 0
