"""The pipeline's own loss on the real dev set: gold-span logits through features ->
post-processing -> scorer must score (almost) 100."""
import math

import pytest

from albert_ixrt.config import DEFAULT_SQUAD, ORACLE_MIN_EM, ORACLE_MIN_F1, SQUAD_DEV_QUESTIONS
from albert_ixrt.squad.features import doc_windows
from albert_ixrt.squad.metrics import score
from albert_ixrt.squad.postprocess import oracle_logits, predictions_from_logits

pytestmark = pytest.mark.selftest


def test_dev_set_shape(dev_examples, dev_features):
    assert len(dev_examples) == SQUAD_DEV_QUESTIONS
    assert len({f.example_index for f in dev_features}) == SQUAD_DEV_QUESTIONS   # every question has a feature


def test_feature_count_matches_the_reference_window_formula(dev_examples, dev_features, albert_tokenizer):
    """Independent recount: per example, 1 + ceil((context tokens - room) / stride) windows."""
    from albert_ixrt.squad.features import tokenize_context

    s = DEFAULT_SQUAD
    cache = {}
    expected = 0
    for ex in dev_examples:
        n = cache.get(ex.context)
        if n is None:
            n = cache[ex.context] = len(tokenize_context(ex.context, albert_tokenizer).ids)
        room = s.max_seq_length - min(len(albert_tokenizer.encode(ex.question)), s.max_query_length) - 3
        count = 1 if n <= room else 1 + math.ceil((n - room) / s.doc_stride)
        assert len(doc_windows(n, room, s.doc_stride)) == count, ex.qid
        expected += count
    assert len(dev_features) == expected
    print(f"\nSQuAD v1.1 dev: {len(dev_examples)} questions -> {len(dev_features)} features (384/128/64)")


def test_oracle_reaches_the_floor(dev_examples, dev_features, record_property):
    logits = [oracle_logits(f) for f in dev_features]
    predictions = predictions_from_logits(dev_examples, dev_features, logits)
    s = score(dev_examples, predictions, num_features=len(dev_features))
    record_property("oracle_official_em", round(s.exact_match, 3))
    record_property("oracle_official_f1", round(s.f1, 3))
    print(f"\noracle: official EM {s.exact_match:.3f} F1 {s.f1:.3f}; ByteMLPerf-compatible EM "
          f"{s.bytemlperf_exact_match:.3f} F1 {s.bytemlperf_f1:.3f} ({s.features} features)")
    assert s.answered == SQUAD_DEV_QUESTIONS
    assert s.exact_match >= ORACLE_MIN_EM, f"oracle EM {s.exact_match:.3f} < {ORACLE_MIN_EM}"
    assert s.f1 >= ORACLE_MIN_F1, f"oracle F1 {s.f1:.3f} < {ORACLE_MIN_F1}"
