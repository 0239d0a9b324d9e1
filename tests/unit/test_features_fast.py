"""The fast feature paths give what the per-token reference code gives (small inputs; the whole
dev set is compared with commit 3c0c7cb by benchmarks/host_speed.py)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from albert_ixrt.selftest import selftest_spiece
from albert_ixrt.squad.data import Answer, Example
from albert_ixrt.squad.features import (ContextMap, ContextTokens, _gold_span, _gold_spans, _max_context,
                                        doc_windows, gold_token_span, split_words)
from albert_ixrt.tokenizer import AlbertTokenizer, _plain_ascii

TEXTS = ["hello", "Hello World", "denver's", "1,999,", "a  b", " lead", "trail ", "``quoted''", "it''s", "x`y",
         "Zoë", "café", "naïve résumé", "São Paulo", "tab\there", "ctrl\x1fchar", "(abc)", "x y(b", "$5m", "",
         "A.B.C.", "e.g.,", "2,000 men,", "THE END", "ﬁ ligature", "İstanbul", "ΣΊΣΥΦΟΣ", "100%", "a\u00a0b"]


@pytest.fixture(scope="module", params=["selftest", "albert"])
def tok(request):
    if request.param == "selftest":
        return AlbertTokenizer(selftest_spiece())
    return request.getfixturevalue("albert_tokenizer")


def test_the_plain_path_is_taken_only_where_preprocessing_just_lowercases():
    assert _plain_ascii("Hello World") and _plain_ascii("denver's") and _plain_ascii("1,999,")
    for text in ["a  b", " lead", "trail ", "``quoted''", "it''s", "Zoë", "tab\there", "a\u00a0b", "ctrl\x1fchar"]:
        assert not _plain_ascii(text), text


def test_the_plain_path_tokenizes_as_the_general_one(tok):
    plain = [t for t in TEXTS if _plain_ascii(t)]
    assert len(plain) >= 10
    for text in plain:
        assert tok._tokenize_plain(text) == tok._tokenize_general(text), text


def test_the_plain_path_would_be_wrong_where_it_is_not_taken(tok):
    """The other way: text that preprocessing changes more than by case gets other pieces or spans
    from the plain path, which is why ``_plain_ascii`` sends it down the general one."""
    for text in ["``quoted''", "it''s"]:
        assert tok._tokenize_plain(text) != tok._tokenize_general(text), text


def test_piece_table_equals_tokenize_text_by_text(tok):
    ids, starts, ends, first = tok.piece_table(TEXTS)
    for i, text in enumerate(TEXTS):
        pieces = tok.tokenize(text)
        sl = slice(first[i], first[i + 1])
        assert ids[sl].tolist() == [p.id for p in pieces], text
        assert list(zip(starts[sl].tolist(), ends[sl].tolist())) == [(p.start, p.end) for p in pieces], text


def test_split_words_keeps_the_reference_rule():
    text = " a\tbc\u202fd\u00a0e\r\nf  "
    words, starts = split_words(text)
    ref_words, ref_starts, prev_ws = [], [], True
    for i, c in enumerate(text):                      # the reference's character loop
        if c in " \t\r\n" or ord(c) == 0x202F:
            prev_ws = True
            continue
        if prev_ws:
            ref_words.append(c)
            ref_starts.append(i)
        else:
            ref_words[-1] += c
        prev_ws = False
    assert (words, starts) == (ref_words, ref_starts)


def reference_flags(windows, wi, strict=True):
    """The reference's scan of every window (quadratic); ``strict=False`` plants a tie-break bug."""
    s0, n0 = windows[wi]
    out = []
    for pos in range(s0, s0 + n0):
        best, best_i = None, None
        for i, (s, n) in enumerate(windows):
            if not s <= pos < s + n:
                continue
            score = min(pos - s, s + n - 1 - pos) + 0.01 * n
            if best is None or (score > best if strict else score >= best):
                best, best_i = score, i
        out.append(best_i == wi)
    return out


CASES = [(0, 10, 4), (5, 10, 4), (11, 10, 4), (50, 20, 7), (100, 10, 4), (400, 317, 128), (1000, 317, 128),
         (37, 8, 3), (64, 16, 16)]


@pytest.mark.parametrize("n, max_tokens, stride", CASES)
def test_max_context_flags_of_all_windows_at_once_equal_the_reference(n, max_tokens, stride):
    windows = tuple(doc_windows(n, max_tokens, stride))
    got = _max_context(windows)
    assert [g.tolist() for g in got] == [reference_flags(windows, wi) for wi in range(len(windows))]


def test_the_flag_comparison_can_fail():
    """The other way: a later window winning ties (>= instead of >) gives other flags."""
    windows = tuple(doc_windows(37, 8, 3))
    assert any(_max_context(windows)[wi].tolist() != reference_flags(windows, wi, strict=False)
               for wi in range(len(windows)))


def test_gold_spans_by_binary_search_equal_the_token_scan():
    rng = np.random.default_rng(0)
    contexts, examples, ctx_of = [], [], []
    for c in range(6):
        n = int(rng.integers(0, 12))
        bounds = np.sort(rng.integers(0, 60, size=2 * n)).reshape(-1, 2)     # ordered spans, some empty
        contexts.append(bounds)
        for _ in range(5):
            a0 = int(rng.integers(-2, 62))
            text = "x" * int(rng.integers(0, 8))
            answers = (Answer(text, a0),) if rng.random() > 0.2 else ()
            examples.append(Example("q", "?", "c", answers))
            ctx_of.append(c)
    spans = np.concatenate(contexts).astype(np.int32)
    ctx_start = np.concatenate([[0], np.cumsum([len(c) for c in contexts])])
    got = _gold_spans(examples, np.array(ctx_of), spans, ctx_start)
    for ex, c, g in zip(examples, ctx_of, got):
        ctx = ContextTokens((), (), tuple(range(len(contexts[c]))), (), tuple(map(tuple, contexts[c].tolist())))
        ref = gold_token_span(ex, ctx) if ctx.ids else None
        assert g == (ref or (-1, -1))
        assert (_gold_span(ex, contexts[c]) or (-1, -1)) == g


def test_gold_spans_fall_back_when_spans_are_out_of_order():
    spans = np.array([[5, 9], [0, 4]], dtype=np.int32)        # not in text order: the scan decides
    ex = Example("q", "?", "c", (Answer("abcd", 0),))
    assert _gold_spans([ex], np.array([0]), spans, np.array([0, 2])) == [(1, 1)]


def test_context_map_reads_like_the_dict_it_replaces():
    spans = ContextMap(5, np.array([[0, 3], [4, 9]], dtype=np.int32))
    flags = ContextMap(5, np.array([True, False]))
    assert spans == {5: (0, 3), 6: (4, 9)} and dict(flags) == {5: True, 6: False}
    assert 5 in spans and np.int64(6) in spans and 4 not in spans and 7 not in spans and "5" not in spans
    assert spans[np.int32(6)] == (4, 9) and type(spans[5][0]) is int and flags.get(7, False) is False
    assert list(spans) == [5, 6] and sorted(spans) == [5, 6] and len(spans) == 2
    assert ContextMap(3, np.zeros((0, 2), np.int32)) == {}
    with pytest.raises(KeyError):
        spans[4]


ASCII_TEXT = st.lists(st.sampled_from(list("abcXYZ019 ,.'`$%-()\t") + ["``", "''", "é", "  ", "1,"]),
                      max_size=12).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(ASCII_TEXT, max_size=6))
def test_piece_table_equals_tokenize_on_generated_text(albert_tokenizer, texts):
    ids, starts, ends, first = albert_tokenizer.piece_table(texts)
    for i, text in enumerate(texts):
        sl = slice(first[i], first[i + 1])
        pieces = albert_tokenizer._tokenize_general(text)     # the path with the full per-character maps
        assert ids[sl].tolist() == [p.id for p in pieces], text
        assert list(zip(starts[sl].tolist(), ends[sl].tolist())) == [(p.start, p.end) for p in pieces], text
