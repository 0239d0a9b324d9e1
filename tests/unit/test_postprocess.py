"""n-best post-processing on hand-made logits (no model needed)."""
import numpy as np

from albert_ixrt.config import SquadSettings
from albert_ixrt.squad.data import Answer, Example
from albert_ixrt.squad.features import build_features
from albert_ixrt.squad.postprocess import best_answers, oracle_logits, predictions_from_logits, top_indices


def _logits(n, start=None, end=None, value=5.0):
    s = np.zeros(n, np.float32)
    e = np.zeros(n, np.float32)
    if start is not None:
        s[start] = value
        e[end] = value
    return s, e


def test_top_indices_largest_first_and_stable():
    assert top_indices(np.array([1, 3, 3, 2]), 3) == [1, 2, 3]


def test_span_text_comes_from_the_original_context(albert_tokenizer):
    context = "The ``Zoë’s café'' opened in 1,999, in São Paulo."
    ex = Example("q", "Which?", context, (Answer("São Paulo", context.index("São Paulo")),))
    (f,) = build_features([ex], albert_tokenizer)
    preds = predictions_from_logits([ex], [f], [oracle_logits(f)])
    assert preds == {"q": "São Paulo"}     # accents and original characters kept


def test_invalid_spans_are_rejected(albert_tokenizer):
    context = " ".join(f"w{i}" for i in range(60))
    ex = Example("q", "?", context, ())
    (f,) = build_features([ex], albert_tokenizer)
    n = len(f.input_ids)
    o = f.context_offset
    # end before start, question tokens, beyond the length, too long: all invalid -> ""
    for s, e in [(o + 5, o + 2), (1, 1), (f.length + 3, f.length + 3), (o, o + 40)]:
        got = best_answers(ex, [f], [_logits(n, s, e)], SquadSettings(n_best_size=1, max_answer_length=30))
        assert got == [], (s, e, got)
    # a valid one wins
    (best, *_) = best_answers(ex, [f], [_logits(n, o + 3, o + 4)])
    assert (best.start, best.end) == (o + 3, o + 4)


def test_max_answer_length_is_in_tokens(albert_tokenizer):
    context = " ".join(["alpha"] * 50)
    ex = Example("q", "?", context, ())
    (f,) = build_features([ex], albert_tokenizer)
    n, o = len(f.input_ids), f.context_offset
    assert best_answers(ex, [f], [_logits(n, o, o + 29)], SquadSettings(n_best_size=1))[0].end == o + 29
    got = best_answers(ex, [f], [_logits(n, o, o + 30)], SquadSettings(n_best_size=1))
    assert all(c.end - c.start + 1 <= 30 for c in got)


def test_nbest_texts_are_distinct_and_sorted(albert_tokenizer):
    context = "red red red blue"
    ex = Example("q", "?", context, ())
    (f,) = build_features([ex], albert_tokenizer)
    rng = np.random.default_rng(0)
    s, e = rng.normal(size=(2, len(f.input_ids))).astype(np.float32)
    nbest = best_answers(ex, [f], [(s, e)])
    texts = [c.text for c in nbest]
    assert len(texts) == len(set(texts))
    scores = [c.score for c in nbest]
    assert scores == sorted(scores, reverse=True)


def test_answer_in_a_later_window_wins_through_max_context(albert_tokenizer):
    words = [f"z{i}" for i in range(300)]
    context = " ".join(words)
    answer = "z250"
    ex = Example("q", "?", context, (Answer(answer, context.index(answer)),))
    feats = build_features([ex], albert_tokenizer, SquadSettings(max_seq_length=128, doc_stride=32))
    assert len(feats) > 2
    preds = predictions_from_logits([ex], feats, [oracle_logits(f) for f in feats])
    assert preds["q"] == answer


def test_missing_features_give_an_empty_prediction(albert_tokenizer):
    ex = Example("q", "?", "", ())
    (f,) = build_features([ex], albert_tokenizer)
    assert predictions_from_logits([ex], [f], [oracle_logits(f)]) == {"q": ""}


def _token_at(f, context, word):
    """The position of the first token of ``word`` in feature ``f``."""
    at = context.index(word)
    return next(p for p in sorted(f.token_spans) if f.token_spans[p][0] == at)


def test_a_nan_logit_ranks_below_every_finite_one(albert_tokenizer):
    """NaN at the gold start (where the best end logit points) is no logit: the span a finite, lower start
    logit gives wins, in the batched search and in the n-best alike."""
    context = "The Denver Broncos won the game."
    ex = Example("q", "Who won?", context, (Answer("Denver Broncos", 4),))
    (f,) = build_features([ex], albert_tokenizer)
    s = np.full(len(f.input_ids), -10.0, np.float32)
    e = np.full(len(f.input_ids), -10.0, np.float32)
    s[f.start_position], e[f.end_position] = np.nan, 9.0       # the gold span: its start logit is NaN
    s[_token_at(f, context, "won")] = e[_token_at(f, context, "won")] = 1.0
    assert predictions_from_logits([ex], [f], [(s, e)]) == {"q": "won"}
    nbest = best_answers(ex, [f], [(s, e)])
    assert nbest[0].text == "won" and all(np.isfinite(c.score) for c in nbest)
    s[f.start_position] = 2.0                                   # finite, it wins: the NaN was the only obstacle
    assert predictions_from_logits([ex], [f], [(s, e)]) == {"q": "Denver Broncos"}
    assert best_answers(ex, [f], [(s, e)])[0].text == "Denver Broncos"


def test_a_feature_whose_logits_are_all_nan_gives_no_answer(albert_tokenizer):
    """Whatever the window and question length: no answer (""), never the first context tokens."""
    for question in ("Who?", "Which team won the game that was played that day in the big stadium?"):
        ex = Example("q", question, "The Denver Broncos won the game.", (Answer("Denver Broncos", 4),))
        (f,) = build_features([ex], albert_tokenizer)
        nan = np.full(len(f.input_ids), np.nan, np.float32)
        for settings in (SquadSettings(), SquadSettings(n_best_size=1)):
            assert predictions_from_logits([ex], [f], [(nan, nan)], settings) == {"q": ""}
            assert best_answers(ex, [f], [(nan, nan)], settings) == []
        half = np.zeros(len(f.input_ids), np.float32)
        assert predictions_from_logits([ex], [f], [(nan, half)]) == {"q": ""}
        assert predictions_from_logits([ex], [f], [(half, nan)]) == {"q": ""}


def test_scattered_nan_logits_are_as_if_those_positions_could_not_answer(albert_tokenizer):
    """With NaN here and there, both searches give the answer of the same logits with those positions
    barred (-inf, then no span scoring -inf): a NaN score never misorders the n-best's finite ones."""
    context = "The Denver Broncos won the game in the big stadium of Santa Clara on Sunday."
    ex = Example("q", "Who won?", context, (Answer("Denver Broncos", 4),))
    (f,) = build_features([ex], albert_tokenizer)
    rng = np.random.default_rng(0)
    for _ in range(60):
        s, e = rng.normal(size=(2, len(f.input_ids))).astype(np.float32)
        s[rng.random(len(s)) < 0.2] = np.nan
        e[rng.random(len(e)) < 0.2] = np.nan
        barred = [(np.where(np.isnan(x), -np.inf, x)) for x in (s, e)]
        finite = [c for c in best_answers(ex, [f], [tuple(barred)]) if np.isfinite(c.score)]
        want = finite[0].text if finite else ""
        nbest = best_answers(ex, [f], [(s, e)])
        assert (nbest[0].text if nbest else "") == want
        assert predictions_from_logits([ex], [f], [(s, e)]) == {"q": want}
