"""``albert-ixrt features``: count examples and features of a SQuAD file (reference algorithm)."""
from __future__ import annotations

import json

from . import add_squad_args, squad_settings

HELP = "build SQuAD features and print {\"examples\": N, \"features\": M} as JSON"


def add_arguments(p):
    add_squad_args(p)
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args) -> int:
    from ..assets import squad_dev_path, tokenizer_path
    from ..squad.data import load_squad
    from ..squad.features import build_features
    from ..tokenizer import AlbertTokenizer

    settings = squad_settings(args)
    examples = load_squad(squad_dev_path(args.squad))
    tokenizer = AlbertTokenizer(tokenizer_path(args.tokenizer))
    features = build_features(examples, tokenizer, settings, progress=args.progress)
    print(json.dumps({"examples": len(examples), "features": len(features), **settings.__dict__}))
    return 0
