"""The reference feature builder on hand-made edge cases (no model needed)."""
import math

import numpy as np
import pytest

from albert_ixrt.config import SquadSettings
from albert_ixrt.squad.data import Answer, Example
from albert_ixrt.squad.features import (build_features, doc_windows, max_context_flags, split_words,
                                        tokenize_context)


def test_split_words_uses_the_reference_whitespace():
    words, starts = split_words(" a\tbc\u202fd\u00a0e ")
    assert words == ["a", "bc", "d\u00a0e"] and starts == [1, 3, 6]   # NBSP is not SQuAD whitespace


@pytest.mark.parametrize("n, max_tokens, stride", [(0, 10, 4), (5, 10, 4), (10, 10, 4), (11, 10, 4),
                                                   (100, 10, 4), (1000, 317, 128), (318, 317, 128)])
def test_window_count_matches_the_closed_form(n, max_tokens, stride):
    windows = doc_windows(n, max_tokens, stride)
    expected = 1 if n <= max_tokens else 1 + math.ceil((n - max_tokens) / stride)
    assert len(windows) == expected
    covered = set()
    for s, length in windows:
        assert length <= max_tokens
        covered.update(range(s, s + length))
    assert covered == set(range(n))          # the windows cover the whole context


def test_each_token_has_exactly_one_max_context_window():
    windows = doc_windows(50, 20, 7)
    owners = {}
    for wi, (s, n) in enumerate(windows):
        for k, flag in enumerate(max_context_flags(windows, wi)):
            if flag:
                assert s + k not in owners
                owners[s + k] = wi
    assert sorted(owners) == list(range(50))


def test_features_layout(albert_tokenizer):
    ex = Example("q", "Who won?", "The Denver Broncos won the game.", (Answer("Denver Broncos", 4),))
    (f,) = build_features([ex], albert_tokenizer)
    n = f.length
    ids = f.input_ids
    assert ids[0] == albert_tokenizer.cls_id and ids[n - 1] == albert_tokenizer.sep_id
    assert ids[f.context_offset - 1] == albert_tokenizer.sep_id
    assert (ids[n:] == albert_tokenizer.pad_id).all() and f.attention_mask[:n].all() and not f.attention_mask[n:].any()
    assert not f.token_type_ids[: f.context_offset].any() and f.token_type_ids[f.context_offset:n].all()
    assert ids.dtype == np.int64 and len(ids) == 384
    s0 = f.token_spans[f.start_position][0]
    s1 = f.token_spans[f.end_position][1]
    assert ex.context[s0:s1] == "Denver Broncos"


def test_long_context_spans_several_windows_and_gold_lands_in_the_right_ones(albert_tokenizer):
    words = [f"w{i}" for i in range(400)]
    context = " ".join(words)
    answer = "w390"
    ex = Example("q", "Where?", context, (Answer(answer, context.index(answer)),))
    settings = SquadSettings(max_seq_length=64, doc_stride=16)
    feats = build_features([ex], albert_tokenizer, settings)
    ctx = tokenize_context(context, albert_tokenizer)
    max_tokens = 64 - len(albert_tokenizer.encode("Where?")) - 3
    assert len(feats) == 1 + math.ceil((len(ctx.ids) - max_tokens) / 16)
    with_gold = [f for f in feats if f.start_position is not None]
    assert with_gold and all(context[f.token_spans[f.start_position][0]:f.token_spans[f.end_position][1]] == answer
                             for f in with_gold)


def _sixty_word_context(albert_tokenizer):
    """Windows of 32 tokens every 8 over a 60-word context: (settings, question, context tokens per window,
    words, context, its tokenization)."""
    settings = SquadSettings(max_seq_length=32, doc_stride=8)
    q = "Which?"
    max_tokens = 32 - len(albert_tokenizer.encode(q)) - 3
    words = [f"a{i}" for i in range(60)]
    context = " ".join(words)
    return settings, q, max_tokens, words, context, tokenize_context(context, albert_tokenizer)


def test_answer_at_a_window_boundary(albert_tokenizer):
    # Put the answer on the last context token of the first window: it is in window 0 but its
    # maximum context is in a later window.
    settings, q, max_tokens, words, context, ctx = _sixty_word_context(albert_tokenizer)
    last_word = ctx.token_to_word[max_tokens - 1]
    answer = words[last_word]
    ex = Example("q", q, context, (Answer(answer, ctx.word_starts[last_word]),))
    feats = build_features([ex], albert_tokenizer, settings)
    g = ctx.token_to_word.index(last_word)           # the answer's first token
    assert g <= max_tokens - 1                         # ...lies inside window 0
    assert not feats[0].token_is_max_context[feats[0].context_offset + g]
    owners = [f for f in feats if f.start_position is not None and f.token_is_max_context[f.start_position]]
    assert len(owners) == 1 and owners[0].doc_span_index > 0


def test_question_longer_than_max_query_length_is_truncated(albert_tokenizer):
    q = " ".join(["why"] * 100)
    ex = Example("q", q, "short context", ())
    (f,) = build_features([ex], albert_tokenizer, SquadSettings(max_query_length=64))
    assert f.context_offset == 64 + 2


def test_empty_context_gets_one_empty_window(albert_tokenizer):
    (f,) = build_features([Example("q", "What?", "", ())], albert_tokenizer)
    assert f.token_spans == {} and f.length == f.context_offset + 1


def test_unicode_and_punctuation_only_answers(albert_tokenizer):
    context = "Le café coûte 3,50 € — «très» cher !!! Zoë."
    for answer in ["café", "3,50 €", "«très»", "!!!", "Zoë"]:
        ex = Example("q", "Quoi?", context, (Answer(answer, context.index(answer)),))
        (f,) = build_features([ex], albert_tokenizer)
        got = context[f.token_spans[f.start_position][0]:f.token_spans[f.end_position][1]]
        assert got == answer


def test_max_context_flags_match_the_full_scan():
    """The neighbour-only scan equals the reference's scan over every window."""
    def reference(windows, wi):
        start, length = windows[wi]
        out = []
        for pos in range(start, start + length):
            best = max(((min(pos - s, s + n - 1 - pos) + 0.01 * n, -k) for k, (s, n) in enumerate(windows)
                        if s <= pos <= s + n - 1))
            out.append(-best[1] == wi)
        return out

    for n, room, stride in [(50, 20, 7), (1000, 317, 128), (33, 10, 10), (30, 10, 3)]:
        windows = doc_windows(n, room, stride)
        assert all(max_context_flags(windows, wi) == reference(windows, wi) for wi in range(len(windows)))


def test_overlong_context_stays_fast(albert_tokenizer):
    import time

    context = " ".join(["word"] * 30000)
    t = time.perf_counter()
    feats = build_features([Example("q", "Which word?", context, ())], albert_tokenizer)
    assert time.perf_counter() - t < 30
    assert len(feats) == 1 + math.ceil((30000 - (384 - 3 - len(albert_tokenizer.encode("Which word?")))) / 128)


@pytest.mark.parametrize("overhang", ["end past the window", "start before the window"])
def test_a_gold_span_cut_by_a_window_is_not_a_position_of_that_window(albert_tokenizer, overhang):
    """A window records the gold start/end only when it holds the whole span: an answer that starts
    on the last tokens of window 0 and ends past it (or one that starts before window 1 and ends
    inside it) is no training position there; the windows that hold all of it record it exactly."""
    settings, q, max_tokens, words, context, ctx = _sixty_word_context(albert_tokenizer)
    windows = doc_windows(len(ctx.ids), max_tokens, settings.doc_stride)
    cut_at = windows[0][1] if overhang == "end past the window" else windows[1][0]   # first token outside / inside
    first_word = ctx.token_to_word[cut_at - 1]
    last_word = ctx.token_to_word[cut_at] + 1
    answer = " ".join(words[first_word:last_word + 1])
    ex = Example("q", q, context, (Answer(answer, ctx.word_starts[first_word]),))
    feats = build_features([ex], albert_tokenizer, settings)
    g0, g1 = ctx.token_to_word.index(first_word), len(ctx.token_to_word) - 1 - ctx.token_to_word[::-1].index(last_word)
    cut = 0 if overhang == "end past the window" else 1
    start, length = windows[cut]
    assert (start <= g0 < start + length) != (start <= g1 < start + length)     # the span straddles the edge
    assert feats[cut].start_position is None and feats[cut].end_position is None
    holding = [wi for wi, (s, n) in enumerate(windows) if s <= g0 and g1 < s + n]
    assert holding and all(feats[wi].start_position is not None for wi in holding)
    assert [wi for wi, f in enumerate(feats) if f.start_position is not None] == holding
    for wi in holding:
        f = feats[wi]
        assert context[f.token_spans[f.start_position][0]:f.token_spans[f.end_position][1]] == answer
