"""Conversion-only session fixtures: each model is converted once per session (tiny: ~2 s; the
albert-base shape twin: ~15 s), and the real SQuAD feeds are chosen once.

Feeds come from the real dev set: the shortest contexts (one window of ~100-140 tokens) and the
longest (several full 384-token windows), at batch 1 unpadded and batch 8 padded.  The twin's
feeds stay small (a 2-core CPU runs albert-base at ~300 tokens/s per runner, five runners).
"""
from __future__ import annotations

import pytest

from albert_ixrt import export
from albert_ixrt.compare import ChainedFeeds, SquadFeeds
from albert_ixrt.model import TINY_CONFIG

#: The tiny profile's vocabulary (1,000 tokens): ALBERT ids are folded into it for its feeds.
TINY_VOCAB = TINY_CONFIG["vocab_size"]


@pytest.fixture(scope="session")
def short_features(dev_examples, albert_tokenizer):
    """Features of the 8 shortest distinct dev contexts (single windows, distinct lengths)."""
    from albert_ixrt.squad.features import build_features

    by_length = sorted({ex.context: ex for ex in dev_examples}.values(), key=lambda ex: len(ex.context))
    features = build_features(by_length[:8], albert_tokenizer)
    assert len({f.length for f in features}) > 1, "the padded batch needs features of different lengths"
    return features


@pytest.fixture(scope="session")
def long_features(dev_examples, albert_tokenizer):
    """Features of the longest dev context: full 384-token windows, and a shorter last window."""
    from albert_ixrt.squad.features import build_features

    longest = max(dev_examples, key=lambda ex: len(ex.context))
    features = build_features([longest], albert_tokenizer)
    assert features[0].length == len(features[0].input_ids), "the first window should be full (unpadded)"
    return features


@pytest.fixture(scope="session")
def tiny_converted(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("tiny_onnx")
    return out, export.convert(tiny_model, out, progress=False)


@pytest.fixture(scope="session")
def twin_converted(tmp_path_factory, twin_model):
    out = tmp_path_factory.mktemp("twin_onnx")
    return out, export.convert(twin_model, out, progress=False)


@pytest.fixture(scope="session")
def tiny_feeds(short_features, long_features):
    """batch 1 unpadded (short, long), batch 8 padded to the longest, batch 8 padded to 384."""
    mixed = [*short_features[:4], *long_features[-4:]]
    return ChainedFeeds(SquadFeeds(short_features[:1], 1, vocab_size=TINY_VOCAB),
                        SquadFeeds(long_features[:1], 1, vocab_size=TINY_VOCAB),
                        SquadFeeds(short_features[:8], 8, vocab_size=TINY_VOCAB),
                        SquadFeeds(mixed, 8, pad_to="full", vocab_size=TINY_VOCAB))


@pytest.fixture(scope="session")
def twin_feeds(short_features, long_features):
    """batch 1 unpadded short, batch 1 unpadded 384 (long context), batch 8 padded to the longest."""
    return ChainedFeeds(SquadFeeds(short_features[:1], 1), SquadFeeds(long_features[:1], 1),
                        SquadFeeds(short_features[:8], 8))


@pytest.fixture(scope="session")
def twin_equivalence(twin_model, twin_converted, twin_feeds):
    """torch fp32 vs every stage of the twin, once per session."""
    from albert_ixrt.compare import compare_manifest

    out, manifest = twin_converted
    return compare_manifest(twin_model, manifest, out, twin_feeds)


@pytest.fixture(scope="session")
def tiny_equivalence(tiny_model, tiny_converted, tiny_feeds):
    from albert_ixrt.compare import compare_manifest

    out, manifest = tiny_converted
    return compare_manifest(tiny_model, manifest, out, tiny_feeds)
