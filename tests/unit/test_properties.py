"""Property-based tests (hypothesis) of the feature builder and post-processing."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from albert_ixrt.config import SquadSettings
from albert_ixrt.squad.data import Answer, Example
from albert_ixrt.squad.features import build_features, split_words, tokenize_context
from albert_ixrt.squad.postprocess import best_answers, oracle_logits

WORDS = st.sampled_from(["the", "Denver", "Broncos'", "1,000,", "café", "«très»", "(NFL)", "—", "São", "x\u00a0y",
                         "ΟΔΟΣ", "北京", "``q''", "!!!", "24–10", "e.g.", "İstanbul", "a", "U.S.", "½"])
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\t", " \u202f"])
SETTINGS = SquadSettings(max_seq_length=48, doc_stride=12, max_query_length=8, n_best_size=5, max_answer_length=6)


@st.composite
def contexts(draw, max_words=80):
    words = draw(st.lists(WORDS, min_size=0, max_size=max_words))
    seps = draw(st.lists(SEPARATORS, min_size=len(words), max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps))


@st.composite
def examples_with_answer(draw):
    context = draw(contexts())
    words, starts = split_words(context)
    if not words:
        return Example("q", "What?", context, ())
    i = draw(st.integers(0, len(words) - 1))
    j = draw(st.integers(i, min(len(words) - 1, i + 3)))
    a0, a1 = starts[i], starts[j] + len(words[j])
    return Example("q", draw(st.sampled_from(["What?", "Who won the game in 1,000 years?"])), context,
                   (Answer(context[a0:a1], a0),))


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(context=contexts())
def test_windows_cover_the_whole_context(albert_tokenizer, context):
    ex = Example("q", "Which one?", context, ())
    feats = build_features([ex], albert_tokenizer, SETTINGS)
    ctx = tokenize_context(context, albert_tokenizer)
    covered = set()
    owners = 0
    for f in feats:
        covered.update(f.token_spans.values())
        owners += sum(f.token_is_max_context.values())
        assert f.length <= SETTINGS.max_seq_length
        for c0, c1 in f.token_spans.values():
            assert 0 <= c0 <= c1 <= len(context)
    assert covered == set(ctx.spans)               # every context token lies in some window
    assert owners == len(ctx.ids)                  # each token has exactly one max-context window


@FAST
@given(ex=examples_with_answer(), seed=st.integers(0, 2**16))
def test_every_predicted_span_lies_inside_its_context(albert_tokenizer, ex, seed):
    feats = build_features([ex], albert_tokenizer, SETTINGS)
    rng = np.random.default_rng(seed)
    logits = [tuple(rng.normal(size=(2, SETTINGS.max_seq_length)).astype(np.float32)) for _ in feats]
    for cand in best_answers(ex, feats, logits, SETTINGS):
        assert cand.text in ex.context
        f = feats[cand.feature_index]
        assert cand.end - cand.start + 1 <= SETTINGS.max_answer_length
        assert f.token_is_max_context[cand.start]


@FAST
@given(ex=examples_with_answer())
def test_oracle_recovers_answers_that_fit_a_window(albert_tokenizer, ex):
    feats = build_features([ex], albert_tokenizer, SETTINGS)
    if not ex.answers or not any(f.start_position is not None for f in feats):
        return
    gold = [f for f in feats if f.start_position is not None]
    if all(f.end_position - f.start_position + 1 > SETTINGS.max_answer_length for f in gold):
        return
    nbest = best_answers(ex, feats, [oracle_logits(f) for f in feats], SETTINGS)
    # whole-word answers and token spans: the text comes back exactly (modulo the strip of edges)
    assert nbest and nbest[0].text == ex.answers[0].text.strip()
