"""``albert-ixrt features``: count examples and features of a SQuAD file (reference algorithm)."""
from __future__ import annotations

import json

from . import add_squad_args, feature_kwargs, squad_settings

HELP = "build SQuAD features and print {\"examples\": N, \"features\": M} as JSON"


def add_arguments(p):
    add_squad_args(p)
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args) -> int:
    from ..assets import squad_dev_path, tokenizer_path
    from ..feature_cache import cached_features
    from ..squad.data import load_squad
    from ..tokenizer import AlbertTokenizer

    settings = squad_settings(args)
    squad = squad_dev_path(args.squad)
    examples = load_squad(squad)
    tokenizer = AlbertTokenizer(tokenizer_path(args.tokenizer))
    features = cached_features(squad, tokenizer, settings, examples=examples, progress=args.progress,
                               **feature_kwargs(args))
    print(json.dumps({"examples": len(examples), "features": len(features), **settings.__dict__}))
    return 0
