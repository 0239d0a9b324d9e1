"""The feature cache (albert_ixrt/feature_cache.py) on the self-test sample: hits give the built
features, any change of key rebuilds, a damaged file is rebuilt with one warning."""
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from albert_ixrt import feature_cache
from albert_ixrt.config import DEFAULT_SQUAD, SquadSettings
from albert_ixrt.feature_cache import FeatureCacheWarning, cache_key, cache_path, cached_features
from albert_ixrt.selftest import selftest_spiece, squad_sample_path
from albert_ixrt.squad import features as features_mod
from albert_ixrt.squad.data import load_squad
from albert_ixrt.squad.features import build_features
from albert_ixrt.tokenizer import AlbertTokenizer


@pytest.fixture(scope="module")
def tok():
    return AlbertTokenizer(selftest_spiece())


@pytest.fixture(scope="module")
def examples():
    return load_squad(squad_sample_path())


def fields(features):
    """Everything a Feature holds, as plain Python values."""
    return [(f.example_index, f.doc_span_index, f.input_ids.tolist(), f.attention_mask.tolist(),
             f.token_type_ids.tolist(), f.length, f.context_offset, dict(f.token_spans),
             dict(f.token_is_max_context), f.start_position, f.end_position) for f in features]


@pytest.fixture
def builds(monkeypatch):
    """Counts the feature builds behind the cache."""
    calls = []
    real = feature_cache.build_feature_table

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(feature_cache, "build_feature_table", counting)
    return calls


def test_a_hit_gives_the_built_features_without_building(tmp_path, tok, examples, builds):
    squad = squad_sample_path()
    first = cached_features(squad, tok, examples=examples, folder=tmp_path)
    assert len(builds) == 1 and len(list(tmp_path.glob("*.npz"))) == 1
    again = cached_features(squad, tok, examples=examples, folder=tmp_path)
    assert len(builds) == 1                                   # read, not built
    assert fields(again) == fields(first) == fields(build_features(examples, tok))


@pytest.mark.parametrize("change", ["settings", "feature code", "sentencepiece", "tokenizer", "squad file"])
def test_a_changed_key_part_rebuilds_and_an_unchanged_one_does_not(tmp_path, tok, examples, builds, monkeypatch,
                                                                   change):
    squad = tmp_path / "squad.json"
    shutil.copy(squad_sample_path(), squad)
    folder = tmp_path / "cache"
    cached_features(squad, tok, examples=examples, folder=folder)
    cached_features(squad, tok, examples=examples, folder=folder)
    assert len(builds) == 1                                   # unchanged: no rebuild
    settings = DEFAULT_SQUAD
    if change == "settings":
        settings = SquadSettings(doc_stride=64)
    elif change == "feature code":                           # a bug planted in features.py: another key
        source = Path(features_mod.__file__).read_text()
        assert "g1 < start + length" in source
        planted = tmp_path / "features.py"
        planted.write_text(source.replace("g1 < start + length", "g0 < start + length"))
        monkeypatch.setattr(feature_cache, "FEATURE_SOURCES", tuple(
            planted if p.name == "features.py" else p for p in feature_cache.FEATURE_SOURCES))
    elif change == "sentencepiece":                          # another release may cut words otherwise
        libraries = {**feature_cache.feature_libraries(), "sentencepiece": "0.0.planted"}
        monkeypatch.setattr(feature_cache, "feature_libraries", lambda: libraries)
    elif change == "tokenizer":
        spiece = tmp_path / "spiece.model"
        shutil.copy(tok.path, spiece)
        tok = AlbertTokenizer(spiece)
        with open(spiece, "ab") as fh:                        # the file changes after loading: another sha256
            fh.write(b"\0")
    else:
        squad.write_text(squad.read_text() + "\n")
    got = cached_features(squad, tok, settings, examples=examples, folder=folder)
    assert len(builds) == 2
    assert len(list(folder.glob("*.npz"))) == 2
    assert fields(got) == fields(build_features(examples, tok, settings))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "inconsistent", "other key"])
def test_a_damaged_cache_file_is_rebuilt_with_one_warning(tmp_path, tok, examples, builds, damage):
    squad = squad_sample_path()
    good = fields(cached_features(squad, tok, examples=examples, folder=tmp_path))
    (path,) = tmp_path.glob("*.npz")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a cache file")
    else:
        with np.load(path) as z:
            arrays = dict(z)
        if damage == "inconsistent":
            arrays["feat"] = arrays["feat"].copy()
            arrays["feat"][0, 2] = 999                            # a context that does not exist
        else:
            arrays["key"] = np.frombuffer(b'{"another": "key"}', dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    with pytest.warns(FeatureCacheWarning) as caught:
        got = cached_features(squad, tok, examples=examples, folder=tmp_path)
    assert len(caught) == 1 and str(path) in str(caught[0].message) and "rebuilding" in str(caught[0].message)
    assert fields(got) == good and len(builds) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # the rebuilt file is good: no warning now
        assert fields(cached_features(squad, tok, examples=examples, folder=tmp_path)) == good
    assert len(builds) == 2


def test_a_selection_of_a_cached_file_equals_building_it(tmp_path, tok, examples, builds):
    squad = squad_sample_path()
    part = cached_features(squad, tok, examples=examples, select=(3, 8), folder=tmp_path)
    assert not list(tmp_path.glob("*.npz"))                   # a selection of an uncached file: no cache write
    cached_features(squad, tok, examples=examples, folder=tmp_path)
    hit = cached_features(squad, tok, examples=examples, select=(3, 8), folder=tmp_path)
    assert len(builds) == 2
    assert fields(hit) == fields(part) == fields(build_features(examples[3:8], tok))
    assert {f.example_index for f in hit} == set(range(5))


def test_no_feature_cache_neither_reads_nor_writes(tmp_path, tok, examples, builds):
    squad = squad_sample_path()
    cached_features(squad, tok, examples=examples, folder=tmp_path, use_cache=False)
    assert not list(tmp_path.glob("*.npz")) and len(builds) == 1
    cached_features(squad, tok, examples=examples, folder=tmp_path)
    cached_features(squad, tok, examples=examples, folder=tmp_path, use_cache=False)
    assert len(builds) == 3


def test_an_unwritable_cache_costs_a_warning_not_the_features(tmp_path, tok, examples):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    with pytest.warns(FeatureCacheWarning, match="not written"):
        got = cached_features(squad_sample_path(), tok, examples=examples, folder=blocker / "features")
    assert fields(got) == fields(build_features(examples, tok))


def test_the_key_names_every_input(tok):
    key = cache_key(squad_sample_path(), tok, DEFAULT_SQUAD)
    assert set(key) == {"feature_code_sha256", "feature_libraries", "squad_sha256", "tokenizer_sha256", "lower",
                        "settings"}
    assert cache_path(key).parent == feature_cache.cache_dir()
    assert cache_path(key) != cache_path({**key, "lower": not key["lower"]})


def test_the_cache_stores_no_padding(tmp_path, tok, examples):
    """Compact storage: the file is smaller than the padded ids alone would be."""
    features = cached_features(squad_sample_path(), tok, examples=examples, folder=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    assert path.stat().st_size < sum(f.input_ids.nbytes for f in features)


def test_workers_give_the_same_features(tok, examples, monkeypatch):
    monkeypatch.setattr(features_mod, "MIN_EXAMPLES_PER_WORKER", 1)
    spread = [e for e in examples for _ in range(3)]          # several chunks, contexts repeated
    assert fields(build_features(spread, tok, workers=2)) == fields(build_features(spread, tok))


def test_the_key_covers_the_code_that_builds_the_features_and_is_computed_once(monkeypatch):
    """The sources hashed are the modules the cache calls to read SQuAD, tokenize and build the table,
    and the cache itself; the hash is read once per process (no file is read again for a second key)."""
    from albert_ixrt import tokenizer as tokenizer_mod
    from albert_ixrt.squad import data as data_mod

    expected = {Path(m.__file__).resolve() for m in (data_mod, tokenizer_mod, features_mod, feature_cache)}
    assert {p.resolve() for p in feature_cache.FEATURE_SOURCES} == expected
    first = feature_cache.feature_code_sha256(feature_cache.FEATURE_SOURCES)
    monkeypatch.setattr(feature_cache, "sha256_file", lambda path: pytest.fail(f"{path} read again"))
    assert feature_cache.feature_code_sha256(feature_cache.FEATURE_SOURCES) == first
