"""The feature cache: a dev set's features built once, then read back in a fraction of a second.

``cached_features`` is the one way in (the commands through ``prepare_data``, the pytest session
fixtures, the benchmarks).  A cache file holds ``squad.features.FeatureTable``: unpadded ids, each
distinct context's tokens and spans once, one flag per window token (about 8 MB for the SQuAD v1.1
dev set, against ~100 MB of padded int64 rows), as a plain ``.npz`` (no pickle), written atomically.
It is keyed by everything the features depend on: the SQuAD file's sha256, the tokenizer's sha256
and case setting, the feature settings, and the sha256 of the code that reads SQuAD, tokenizes and
builds and stores the features (``FEATURE_SOURCES``), with the versions of the libraries that code
leans on (sentencepiece, Python's Unicode database); a change to any of them gives another key, so a
stale file is never read, and a change to the feature code (a bug fixed, or one planted) is rebuilt
without anyone having to remember to bump a number.  A file that cannot be read is rebuilt with one
warning.
"""
from __future__ import annotations

import functools
import hashlib
import json
import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from . import tokenizer as _tokenizer
from .config import DEFAULT_SQUAD, SquadSettings
from .fileio import atomic_path, sha256_file, sha256_json
from .squad import data as _data
from .squad import features as _features
from .squad.data import Example, load_squad
from .squad.features import Feature, FeatureTable, build_feature_table, select_examples, to_features

#: The source files whose code decides a SQuAD file's cached features: reading SQuAD (squad/data.py),
#: tokenizing (tokenizer.py), the windows, gold spans and table (squad/features.py), and this module
#: (the key, the stored form, the selection).  The cache key holds their sha256.
FEATURE_SOURCES: tuple[Path, ...] = tuple(Path(m.__file__) for m in (_data, _tokenizer, _features)) + (
    Path(__file__),)


class FeatureCacheWarning(UserWarning):
    """A cache file could not be used (unreadable or inconsistent); it is rebuilt."""


@functools.lru_cache(maxsize=None)
def feature_libraries() -> dict[str, str]:
    """The versions of what the tokenizer leans on: sentencepiece, and the Unicode database of
    ``unicodedata`` (accent stripping, NFKD)."""
    import unicodedata
    from importlib.metadata import PackageNotFoundError, version

    try:
        spm = version("sentencepiece")
    except PackageNotFoundError:
        spm = "not installed"
    return {"sentencepiece": spm, "unicodedata": unicodedata.unidata_version}


@functools.lru_cache(maxsize=None)
def feature_code_sha256(sources: tuple[Path, ...]) -> str:
    """sha256 over the names and bytes of ``sources`` (read once per process and set of files)."""
    h = hashlib.sha256()
    for path in sources:
        h.update(f"{path.name}\0{sha256_file(path)}\0".encode())
    return h.hexdigest()


def cache_dir() -> Path:
    from . import config

    return Path(config.CACHE_DIR) / "features"


def cache_key(squad_path: str | Path, tokenizer, settings: SquadSettings) -> dict | None:
    """What the features depend on; None for a tokenizer without a model file (not cached)."""
    path = getattr(tokenizer, "path", None)
    if path is None or not Path(path).is_file():
        return None
    return {"feature_code_sha256": feature_code_sha256(FEATURE_SOURCES), "feature_libraries": dict(feature_libraries()),
            "squad_sha256": sha256_file(squad_path),
            "tokenizer_sha256": sha256_file(path), "lower": bool(getattr(tokenizer, "lower", True)),
            "settings": dict(settings.__dict__)}


def cache_path(key: dict, folder: Path | None = None) -> Path:
    return (folder or cache_dir()) / f"features-{key['squad_sha256'][:12]}-{sha256_json(key)[:16]}.npz"


def cached_features(squad_path: str | Path, tokenizer, settings: SquadSettings = DEFAULT_SQUAD, *,
                    examples: Sequence[Example] | None = None, select: tuple[int, int] | None = None,
                    use_cache: bool = True, workers: int = 1, progress: bool = False,
                    folder: Path | None = None) -> list[Feature]:
    """Features of ``examples[select[0]:select[1]]`` (every example of ``squad_path`` by default;
    ``examples``: that file's examples, already loaded), numbered from the first selected example.

    With ``use_cache`` the whole file's features come from the cache when it holds them for this
    key, and are built and stored when it does not; a selection of a file that is not cached yet
    builds only its own examples (and stores nothing).  ``workers``: processes for a build.
    """
    if examples is None:
        examples = load_squad(squad_path)
    lo, hi = select if select is not None else (0, len(examples))
    key = cache_key(squad_path, tokenizer, settings) if use_cache else None
    if key is None:
        return to_features(build_feature_table(examples[lo:hi], tokenizer, settings, progress, workers))
    path = cache_path(key, folder)
    table = _read(path, key, len(examples)) if path.exists() else None
    if table is None:
        if (lo, hi) != (0, len(examples)):
            return to_features(build_feature_table(examples[lo:hi], tokenizer, settings, progress, workers))
        table = build_feature_table(examples, tokenizer, settings, progress, workers)
        _write(path, key, table)
    return to_features(table if (lo, hi) == (0, table.n_examples) else select_examples(table, lo, hi))


def _read(path: Path, key: dict, n_examples: int) -> FeatureTable | None:
    """The table in ``path``, or None (with one warning) when it is unreadable or inconsistent."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:   # our handle: closed on any error
            stored = json.loads(bytes(z["key"]).decode("utf-8"))
            scalars = dict(zip(FeatureTable.SCALARS, z["scalars"].tolist()))
            table = FeatureTable(**scalars, **{name: z[name] for name in FeatureTable.ARRAYS})
        problem = _inconsistency(table, stored, key, n_examples)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        problem = f"unreadable ({type(exc).__name__}: {exc})"
    if problem is None:
        return table
    warnings.warn(f"feature cache {path}: {problem}; rebuilding it", FeatureCacheWarning, stacklevel=3)
    return None


def _inconsistency(t: FeatureTable, stored: dict, key: dict, n_examples: int) -> str | None:
    """Why ``t`` cannot be the features for ``key`` (None: it can)."""
    if stored != key:
        return "its key does not match its name"
    n_ctx_tokens, n_feat = len(t.ctx_ids), len(t.feat)
    checks = [
        (t.n_examples == n_examples, f"{t.n_examples} examples, the SQuAD file has {n_examples}"),
        (t.feat.ndim == 2 and t.feat.shape[1] == 7, "feature rows are not 7 wide"),
        (t.ctx_spans.shape == (n_ctx_tokens, 2), "context spans do not match context ids"),
        (len(t.q_start) == t.n_examples + 1 and t.q_start[-1] == len(t.q_ids), "question offsets"),
        (len(t.flag_start) == n_feat + 1 and t.flag_start[-1] == len(t.flags), "flag offsets"),
        (len(t.ctx_start) >= 1 and t.ctx_start[-1] == n_ctx_tokens, "context offsets"),
    ]
    for ok, what in checks:
        if not ok:
            return f"inconsistent ({what})"
    if n_feat:
        f = t.feat.astype(np.int64)
        ctx_len = np.diff(t.ctx_start)
        bad = ((f[:, 0] < 0) | (f[:, 0] >= t.n_examples) | (f[:, 2] < 0) | (f[:, 2] >= len(ctx_len))
               | (f[:, 3] < 0) | (f[:, 4] < 0) | (np.diff(t.flag_start) != f[:, 4]))
        if bad.any() or (f[:, 3] + f[:, 4] > ctx_len[np.clip(f[:, 2], 0, len(ctx_len) - 1)]).any():
            return "inconsistent (a feature points outside its context)"
        lengths = np.diff(t.q_start)[f[:, 0]] + f[:, 4] + 3
        if (lengths > t.max_seq_length).any() or (np.diff(f[:, 0]) < 0).any():
            return "inconsistent (feature lengths or order)"
    return None


def _write(path: Path, key: dict, table: FeatureTable) -> None:
    """Store ``table`` atomically; a cache that cannot be written costs a warning, not the run."""
    arrays = {name: getattr(table, name) for name in FeatureTable.ARRAYS}
    scalars = np.array([getattr(table, name) for name in FeatureTable.SCALARS], dtype=np.int64)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:      # a file object: np.savez would append ".npz" to a name
                np.savez(fh, key=np.frombuffer(json.dumps(key, sort_keys=True).encode("utf-8"), dtype=np.uint8),
                         scalars=scalars, **arrays)
    except OSError as exc:
        warnings.warn(f"feature cache {path}: not written ({exc.strerror or exc}); features not cached",
                      FeatureCacheWarning, stacklevel=3)
