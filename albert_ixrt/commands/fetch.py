"""``albert-ixrt fetch``: download the assets once (the dev set, sha256-checked; the real model
into a directory) so later runs, and nightly CI's cache, work offline."""
from __future__ import annotations

import json

from ..config import DEFAULT_MODEL_ID

HELP = "download the SQuAD dev set (sha256-checked) and/or the real model into a directory"


def add_arguments(p):
    p.add_argument("--squad", action="store_true", help="fetch the official SQuAD v1.1 dev set into the cache")
    from . import output_dir

    p.add_argument("--model-dir", type=output_dir, help="download the model's files into this directory")
    p.add_argument("--model-id", default=DEFAULT_MODEL_ID, help="hub id of the model to fetch (default %(default)s)")


def run(args) -> int:
    from .. import assets

    if not args.squad and not args.model_dir:
        raise assets.AssetMissingError("nothing to fetch: give --squad and/or --model-dir DIR")
    done = {}
    if args.squad:
        done["squad"] = str(assets.squad_dev_path(None, download=True))
    if args.model_dir:
        done["model"] = str(assets.fetch_model(args.model_id, args.model_dir))
    print(json.dumps(done, ensure_ascii=False))
    return 0
