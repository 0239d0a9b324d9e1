"""``albert-ixrt known-answer``: write a known-answer TorchScript model (answers from a table built
from the dev set, a seeded fraction of the questions wrong) to prove the accuracy gate both ways."""
from __future__ import annotations

from . import add_squad_args, feature_kwargs, output_file, squad_settings

HELP = ("write a known-answer model: gold answers except a seeded --wrong fraction of questions, to check "
        "that the accuracy gate passes and fails as it should (not a real model)")


def add_arguments(p):
    add_squad_args(p)
    p.add_argument("--wrong", type=float, required=True, help="fraction of the questions answered wrongly (0..1)")
    p.add_argument("--seed", type=int, default=0, help="which questions are wrong (default 0)")
    p.add_argument("--out", required=True, type=output_file, help="TorchScript file to write (.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    import json

    from .. import assets
    from ..known_answer import build_known_answer, check_request
    from ..loaders import prepare_data
    from ..tokenizer import AlbertTokenizer
    from ..verdicts import reference_thresholds

    check_request(args.wrong, args.seed, args.out)
    settings = squad_settings(args)  # refused before the tokenizer or the data is read
    tok = AlbertTokenizer(assets.tokenizer_path(args.tokenizer))
    examples, features = prepare_data(assets.squad_dev_path(args.squad), tok, settings, progress=not args.quiet,
                                      **feature_kwargs(args))
    path, table, expected = build_known_answer(examples, features, args.wrong, args.out, seed=args.seed,
                                               pad_id=tok.pad_id, settings=settings)
    print(f"known-answer model (not real weights): {table.meta['wrong_questions']} of {len(examples)} questions "
          f"answered wrongly (--wrong {args.wrong}, --seed {args.seed}), {len(features)} features")
    print("expected, if the suite measures it right:")
    print("\n".join("  " + line for line in expected.summary_lines()))
    print("  " + reference_thresholds(expected).message)
    print(json.dumps({"model": str(path)}, ensure_ascii=False))
    return 0
