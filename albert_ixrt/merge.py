"""Merge sharded evaluations: the predictions of disjoint question slices, re-scored as one run."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InputFileError
from .evaluate import EvalResult
from .squad.data import load_squad
from .squad.metrics import score
from .squad.predictions import load_predictions


def _read_metrics(path: Path) -> dict:
    if not path.is_file():
        raise InputFileError(path, "missing: not an `albert-ixrt evaluate` output directory")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["scores"]["features"], doc["settings"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"not an evaluate metrics file ({exc})") from None
    return doc


def merge_shards(dirs: list[Path], squad: Path, limit: int | None = None) -> EvalResult:
    examples = load_squad(squad)[:limit] if limit else load_squad(squad)
    predictions: dict[str, str] = {}
    features = 0
    seconds = 0.0
    metas = []
    shards_seen = set()
    for d in dirs:
        meta = _read_metrics(d / "metrics.json")
        shard = meta["settings"].get("shard")
        key = (shard or {}).get("index")
        if key in shards_seen:
            raise InputFileError(d, f"shard {key} given twice")
        shards_seen.add(key)
        part = load_predictions(d / "predictions.json")
        overlap = predictions.keys() & part.keys()
        if overlap:
            raise InputFileError(d / "predictions.json", f"{len(overlap)} question ids also in another shard")
        predictions.update(part)
        features += meta["scores"]["features"]
        seconds += meta.get("seconds", 0.0)
        metas.append(meta)
    counts = {(m["settings"].get("shard") or {}).get("count") for m in metas}
    if len(counts) != 1 or None in counts or len(dirs) != counts.pop():
        raise InputFileError(dirs[0], f"expected every shard of one I/N split, got {len(dirs)} directories "
                                      f"with shard settings {[m['settings'].get('shard') for m in metas]}")
    unknown = predictions.keys() - {e.qid for e in examples}
    if unknown:
        raise InputFileError(squad, f"{len(unknown)} merged question ids are not in this file (wrong --squad?)")
    first = metas[0]
    settings = {k: v for k, v in first["settings"].items() if k != "shard"}
    settings["merged_shards"] = len(dirs)
    return EvalResult(predictions, score(examples, predictions, num_features=features), seconds, features,
                      first["runner"], first.get("model", {}), settings)
