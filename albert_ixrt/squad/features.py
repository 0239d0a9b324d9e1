"""The reference SQuAD feature builder (Google BERT ``run_squad.py``, kept by MLPerf Inference and
ByteMLPerf's open_squad), for ALBERT's SentencePiece tokenizer.

An example becomes one or more *features*: ``[CLS] question [SEP] window-of-context [SEP]``,
windows of at most ``max_seq_length - len(question) - 3`` context tokens, ``doc_stride`` apart.
The context is split on whitespace into words first and each word is tokenized alone, as the
reference does; unlike the reference we also keep each token's character span in the context,
so post-processing can return the original text exactly.

Pure functions over plain data: nothing here touches a model.
"""
from __future__ import annotations

import multiprocessing
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..config import DEFAULT_SQUAD, SquadSettings
from .data import Example


@dataclass(frozen=True)
class ContextTokens:
    """A context split into whitespace words and tokenized word by word."""

    words: tuple[str, ...]
    word_starts: tuple[int, ...]          # char offset of each word in the context
    ids: tuple[int, ...]
    token_to_word: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]   # [start, end) char span of each token in the context


class ContextMap(Mapping):
    """A read-only ``{feature position: value}`` over the context tokens of one window, backed by a
    numpy slice: positions ``offset .. offset + len(values) - 1``.  A value is ``(start, end)`` for a
    (n, 2) array (character spans), ``bool`` for a flag array.  The old features held real dicts:
    about 1.8 million entries for the dev set, a third of the time to build it or read it from the
    feature cache; this gives the same look-ups, iteration order and equality at no cost up front."""

    __slots__ = ("offset", "array")

    def __init__(self, offset: int, array: np.ndarray):
        self.offset = offset
        self.array = array

    def __getitem__(self, pos):
        try:
            k = operator.index(pos) - self.offset
        except TypeError:
            raise KeyError(pos) from None
        if not 0 <= k < len(self.array):
            raise KeyError(pos)
        v = self.array[k].tolist()
        return tuple(v) if self.array.ndim == 2 else v

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.offset, self.offset + len(self.array)))

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        return f"ContextMap({dict(self.items())!r})"


@dataclass
class Feature:
    example_index: int
    doc_span_index: int
    input_ids: np.ndarray           # int64 [max_seq_length]
    attention_mask: np.ndarray      # int64 [max_seq_length]
    token_type_ids: np.ndarray      # int64 [max_seq_length]
    length: int                     # tokens before padding
    context_offset: int             # position of the first context token
    token_spans: Mapping[int, tuple[int, int]]   # feature position -> char span in the context
    token_is_max_context: Mapping[int, bool]
    start_position: int | None = None   # gold span (first answer), when it lies in this window
    end_position: int | None = None


def is_squad_whitespace(c: str) -> bool:
    """The reference's whitespace test (space, tab, CR, LF, narrow no-break space)."""
    return c in " \t\r\n" or ord(c) == 0x202F


#: A run of characters that are not SQuAD whitespace (``is_squad_whitespace``): one word.
_WORD = re.compile("[^ \t\r\n\u202f]+")
_WORD_SPLIT = re.compile("([^ \t\r\n\u202f]+)")


def split_words(context: str) -> tuple[list[str], list[int]]:
    """Whitespace words of ``context`` and the char offset where each starts."""
    words: list[str] = []
    starts: list[int] = []
    for m in _WORD.finditer(context):
        words.append(m.group())
        starts.append(m.start())
    return words, starts


def tokenize_context(context: str, tokenizer) -> ContextTokens:
    words, starts = split_words(context)
    ids: list[int] = []
    token_to_word: list[int] = []
    spans: list[tuple[int, int]] = []
    for wi, (word, w0) in enumerate(zip(words, starts)):
        for piece in tokenizer.tokenize(word):
            ids.append(piece.id)
            token_to_word.append(wi)
            spans.append((w0 + piece.start, w0 + piece.end))
    return ContextTokens(tuple(words), tuple(starts), tuple(ids), tuple(token_to_word), tuple(spans))


def doc_windows(n_tokens: int, max_tokens: int, stride: int) -> list[tuple[int, int]]:
    """(start, length) windows over ``n_tokens``: the reference's sliding window.

    The last window is the first that reaches the end; an empty context still gets one
    (empty) window, as in the reference.
    """
    if max_tokens <= 0:
        raise ValueError(f"no room for context tokens (max_tokens={max_tokens})")
    if stride <= 0:
        raise ValueError(f"doc_stride must be positive, got {stride}")
    return list(_doc_windows(n_tokens, max_tokens, stride))


@lru_cache(maxsize=1 << 14)
def _doc_windows(n_tokens: int, max_tokens: int, stride: int) -> tuple[tuple[int, int], ...]:
    windows = []
    start = 0
    while start < n_tokens or not windows:
        length = min(n_tokens - start, max_tokens)
        windows.append((start, length))
        if start + length >= n_tokens:
            break
        start += min(length, stride)
    return tuple(windows)


def max_context_flags(windows: Sequence[tuple[int, int]], window_index: int) -> list[bool]:
    """For each token of window ``window_index``: is this the window where it has the most
    context (min of left and right context, ties broken by a 0.01 * length bonus)?"""
    return _max_context(tuple(map(tuple, windows)))[window_index].tolist()


@lru_cache(maxsize=1 << 14)
def _max_context(windows: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, ...]:
    """``max_context_flags`` of every window at once, as bool arrays (read-only: they are shared).

    The score of token ``pos`` in window (s, n) is ``min(pos - s, s + n - 1 - pos) + 0.01 * n``, the
    same float64 operations as the reference, and a token's window is the first with the highest
    score (the reference keeps a later window only when it scores strictly higher), which is
    ``argmax`` over the windows axis.  The flags depend only on the windows, so they are computed
    once per (context length, question length) and shared by the questions that have them.
    """
    flat = [np.ones(n, dtype=bool) for _, n in windows] if len(windows) == 1 else None
    if flat is None:
        n_tokens = max(s + n for s, n in windows)
        pos = np.arange(n_tokens)
        scores = np.full((len(windows), n_tokens), -np.inf)
        for wi, (s, n) in enumerate(windows):
            p = pos[s:s + n]
            scores[wi, s:s + n] = np.minimum(p - s, s + n - 1 - p) + 0.01 * n
        best = np.argmax(scores, axis=0)
        flat = [best[s:s + n] == wi for wi, (s, n) in enumerate(windows)]
    for f in flat:
        f.flags.writeable = False
    return tuple(flat)


@lru_cache(maxsize=1 << 14)
def _windows_and_flags(n_tokens: int, max_tokens: int, stride: int):
    windows = tuple(doc_windows(n_tokens, max_tokens, stride))
    return windows, _max_context(windows)


def _gold_spans(examples: Sequence[Example], ctx_of: np.ndarray, spans: np.ndarray,
                ctx_start: np.ndarray) -> list[tuple[int, int]]:
    """``gold_token_span`` of every example at once ((-1, -1): none), by binary search.

    A context's token spans are in text order (starts and ends never decrease), so the tokens
    that end after the answer's start are a suffix and those that start before its end a prefix:
    the gold span is the overlap of the two.  Each context's positions are lifted by ``context x
    step`` (step above any offset) so one ``searchsorted`` serves all contexts.  Should a
    tokenizer ever break the order, the example-by-example test is used instead.
    """
    n = len(examples)
    a0 = np.zeros(n, dtype=np.int64)
    a1 = np.zeros(n, dtype=np.int64)
    has = np.zeros(n, dtype=bool)
    for i, ex in enumerate(examples):
        if ex.answers:
            a = ex.answers[0]
            a0[i], a1[i], has[i] = a.start, a.start + len(a.text), True
    token_ctx = np.repeat(np.arange(len(ctx_start) - 1), np.diff(ctx_start))
    step = int(max(spans.max(initial=0), a1.max(initial=0), -a0.min(initial=0), -a1.min(initial=0))) * 2 + 4
    lift = token_ctx * step + step // 2
    s_key, e_key = spans[:, 0] + lift, spans[:, 1] + lift
    if len(spans) and not ((np.diff(s_key) >= 0).all() and (np.diff(e_key) >= 0).all()):
        return [_gold_span(ex, spans[ctx_start[c]:ctx_start[c + 1]]) or (-1, -1) for ex, c in zip(examples, ctx_of)]
    ex_lift = ctx_of * step + step // 2
    lo = np.searchsorted(e_key, a0 + ex_lift, side="right") - ctx_start[ctx_of]
    hi = np.searchsorted(s_key, a1 + ex_lift, side="left") - 1 - ctx_start[ctx_of]
    ok = has & (lo <= hi)
    return list(zip(np.where(ok, lo, -1).tolist(), np.where(ok, hi, -1).tolist()))


def gold_token_span(example: Example, ctx: ContextTokens) -> tuple[int, int] | None:
    """Token span of the first gold answer: the tokens whose char spans overlap the answer.

    Character-level, so an answer that starts or ends inside a whitespace word ("$5" of "$5m")
    gets the tightest token span, which is what the reference's ``_improve_answer_span`` aims at.
    """
    if not example.answers or not ctx.ids:
        return None
    return _gold_span(example, np.asarray(ctx.spans, dtype=np.int64).reshape(-1, 2))


def _gold_span(example: Example, spans: np.ndarray) -> tuple[int, int] | None:
    if not example.answers or not len(spans):
        return None
    a = example.answers[0]
    a0, a1 = a.start, a.start + len(a.text)
    inside = np.flatnonzero((spans[:, 0] < a1) & (spans[:, 1] > a0))
    if not len(inside):
        return None
    return int(inside[0]), int(inside[-1])


@dataclass
class FeatureTable:
    """Every feature of a list of examples in compact form (no padding, each context once): what
    ``build_features`` computes, what the feature cache stores, and what ``to_features`` turns into
    ``Feature`` objects.  Arrays ``*_start`` hold the offsets of each item in the concatenated one
    before them (length items + 1)."""

    max_seq_length: int
    cls_id: int
    sep_id: int
    pad_id: int
    n_examples: int
    ctx_ids: np.ndarray        # int32 [context tokens]: every distinct context's ids, concatenated
    ctx_spans: np.ndarray      # int32 [context tokens, 2]: their [start, end) char spans
    ctx_start: np.ndarray      # int64 [contexts + 1]
    q_ids: np.ndarray          # int32: every example's question ids (cut to max_query_length)
    q_start: np.ndarray        # int64 [examples + 1]
    feat: np.ndarray           # int32 [features, 7]: example, window index, context, window start,
    #                            window length, gold start, gold end (-1: none)
    flags: np.ndarray          # bool: every feature's max-context flags, concatenated
    flag_start: np.ndarray     # int64 [features + 1]

    ARRAYS = ("ctx_ids", "ctx_spans", "ctx_start", "q_ids", "q_start", "feat", "flags", "flag_start")
    SCALARS = ("max_seq_length", "cls_id", "sep_id", "pad_id", "n_examples")


def _starts(lengths: Sequence[int]) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _piece_table(tokenizer, texts: Sequence[str]):
    """``tokenizer.piece_table(texts)`` (AlbertTokenizer's batched path), or the same arrays from
    ``tokenize`` for a tokenizer without one."""
    if hasattr(tokenizer, "piece_table"):
        return tokenizer.piece_table(texts)
    pieces = [tokenizer.tokenize(t) for t in texts]
    flat = [p for ps in pieces for p in ps]
    return (np.array([p.id for p in flat], dtype=np.int32), np.array([p.start for p in flat], dtype=np.int32),
            np.array([p.end for p in flat], dtype=np.int32), _starts([len(ps) for ps in pieces]))


def build_table(examples: Sequence[Example], tokenizer, settings: SquadSettings = DEFAULT_SQUAD,
                progress: bool = False) -> FeatureTable:
    """The features of ``examples`` (the reference algorithm), in compact form.

    Every distinct context is split into words once, every distinct word and question is tokenized
    once (one batched call), and each context's token ids and spans are gathered from its words'
    pieces with numpy: the same tokens ``tokenize_context`` gives, without a Python step per token.
    """
    contexts: dict[str, int] = {}
    for ex in examples:
        contexts.setdefault(ex.context, len(contexts))
    words: list[str] = []
    word_pos: list[int] = []
    ctx_words = [0]
    for context in contexts:
        parts = _WORD_SPLIT.split(context)      # gap, word, gap, word, ..., gap
        words += parts[1::2]
        word_pos += list(accumulate(map(len, parts)))[0:-1:2]   # a word starts where the parts before it end
        ctx_words.append(len(words))
    questions = [ex.question for ex in examples]
    texts = {t: i for i, t in enumerate(dict.fromkeys(words + questions))}   # distinct, first-seen order
    ids, starts, ends, first = _piece_table(tokenizer, list(texts))
    word_text = np.fromiter(map(texts.__getitem__, words), dtype=np.int64, count=len(words))
    counts = np.diff(first)[word_text]
    rows, k = _ragged(counts)
    src = first[word_text][rows] + k
    at = np.asarray(word_pos, dtype=np.int32)[rows]
    ctx_ids = ids[src]
    ctx_spans = np.stack([starts[src] + at, ends[src] + at], axis=1).astype(np.int32).reshape(-1, 2)
    ctx_start = _starts(counts)[np.asarray(ctx_words, dtype=np.int64)]
    question_text = np.fromiter(map(texts.__getitem__, questions), dtype=np.int64, count=len(questions))
    q_first = first[question_text]
    q_len = np.minimum(first[question_text + 1] - q_first, settings.max_query_length)
    rows, k = _ragged(q_len)
    q_ids = ids[q_first[rows] + k]
    ctx_of = np.fromiter((contexts[ex.context] for ex in examples), dtype=np.int64, count=len(examples))
    gold = _gold_spans(examples, ctx_of, ctx_spans, ctx_start)

    feat: list[tuple[int, int, int, int, int, int, int]] = []
    flags: list[np.ndarray] = []
    iterator: Iterable = zip(range(len(examples)), ctx_of.tolist(), q_len.tolist(), gold)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(examples), desc="features", unit="q")
    ctx_start_l = ctx_start.tolist()
    max_seq, stride = settings.max_seq_length, settings.doc_stride
    for ei, ci, n_query, (g0, g1) in iterator:
        windows, wflags = _windows_and_flags(ctx_start_l[ci + 1] - ctx_start_l[ci], max_seq - n_query - 3, stride)
        offset = n_query + 2
        for wi, (start, length) in enumerate(windows):
            if 0 <= g0 and start <= g0 and g1 < start + length:
                feat.append((ei, wi, ci, start, length, offset + g0 - start, offset + g1 - start))
            else:
                feat.append((ei, wi, ci, start, length, -1, -1))
        flags += wflags
    return FeatureTable(
        settings.max_seq_length, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, len(examples),
        ctx_ids.astype(np.int32), ctx_spans, ctx_start, q_ids.astype(np.int32), _starts(q_len),
        np.asarray(feat, dtype=np.int32).reshape(-1, 7),
        np.concatenate(flags or [np.zeros(0, bool)]).astype(bool, copy=False), _starts([len(f) for f in flags]))


def concat_tables(tables: Sequence[FeatureTable]) -> FeatureTable:
    """One table for the examples of ``tables`` one after the other (the parallel build's merge)."""
    first = tables[0]
    feats, ctx_base, ex_base = [], 0, 0
    for t in tables:
        f = t.feat.copy()
        f[:, 0] += ex_base
        f[:, 2] += ctx_base
        feats.append(f)
        ex_base += t.n_examples
        ctx_base += len(t.ctx_start) - 1

    def starts(name: str) -> np.ndarray:
        return _starts(np.concatenate([np.diff(getattr(t, name)) for t in tables]))

    return FeatureTable(first.max_seq_length, first.cls_id, first.sep_id, first.pad_id, ex_base,
                        np.concatenate([t.ctx_ids for t in tables]), np.concatenate([t.ctx_spans for t in tables]),
                        starts("ctx_start"), np.concatenate([t.q_ids for t in tables]), starts("q_start"),
                        np.concatenate(feats), np.concatenate([t.flags for t in tables]), starts("flag_start"))


def select_examples(table: FeatureTable, lo: int, hi: int) -> FeatureTable:
    """The table of examples ``lo .. hi - 1`` only, renumbered from 0 (a --limit or --shard of a
    cached whole file).  Contexts are kept whole: features refer to them by index."""
    if not 0 <= lo <= hi <= table.n_examples:
        raise ValueError(f"examples {lo}..{hi} outside the table's {table.n_examples}")
    ex = table.feat[:, 0]
    f0, f1 = int(np.searchsorted(ex, lo, "left")), int(np.searchsorted(ex, hi, "left"))
    feat = table.feat[f0:f1].copy()
    feat[:, 0] -= lo
    q0, q1 = int(table.q_start[lo]), int(table.q_start[hi])
    g0, g1 = int(table.flag_start[f0]), int(table.flag_start[f1])
    return FeatureTable(table.max_seq_length, table.cls_id, table.sep_id, table.pad_id, hi - lo,
                        table.ctx_ids, table.ctx_spans, table.ctx_start, table.q_ids[q0:q1],
                        table.q_start[lo:hi + 1] - q0, feat, table.flags[g0:g1], table.flag_start[f0:f1 + 1] - g0)


def _ragged(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, k) for every k < lengths[row]: the flat index of a ragged array."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    k = np.arange(len(rows)) - np.repeat(_starts(lengths)[:-1], lengths)
    return rows, k


def to_features(table: FeatureTable) -> list[Feature]:
    """The ``Feature`` objects of ``table``.  Their ``input_ids`` are rows of one [features,
    max_seq_length] int64 array filled at once; an attention mask or type-id row depends only on the
    feature's length and context offset, so those rows are read-only views of a few shared buffers
    (the dev set's 10,866 features would otherwise write 67 MB of 0/1 int64 on every cache hit)."""
    f = table.feat.astype(np.int64)
    ex, ci, w_start, w_len = f[:, 0], f[:, 2], f[:, 3], f[:, 4]
    n, seq = len(f), table.max_seq_length
    q_len = np.diff(table.q_start)[ex]
    offset = q_len + 2
    length = offset + w_len + 1
    ids = np.full((n, seq), table.pad_id, dtype=np.int64)
    ids[:, 0] = table.cls_id
    ids[np.arange(n), offset - 1] = table.sep_id
    ids[np.arange(n), length - 1] = table.sep_id
    ctx_first = table.ctx_start[ci] + w_start
    q_first = table.q_start[ex]
    ones = np.concatenate([np.ones(seq, dtype=np.int64), np.zeros(seq, dtype=np.int64)])
    ones.flags.writeable = False               # mask row of length L: ones[seq - L:2 * seq - L]
    type_buffers: dict[int, np.ndarray] = {}   # type row of (offset o, k type-1 tokens): buf_k[seq - o:2 * seq - o]
    for kk in np.unique(length - offset).tolist():
        buf = np.zeros(2 * seq + kk, dtype=np.int64)
        buf[seq:seq + kk] = 1
        buf.flags.writeable = False
        type_buffers[kk] = buf
    out = []
    spans, flags, q_ids, ctx_ids = table.ctx_spans, table.flags, table.q_ids, table.ctx_ids
    for i, (e, wi, _, _, wl, s_pos, e_pos), o, L, c0, f0, q0 in zip(
            range(n), f.tolist(), offset.tolist(), length.tolist(), ctx_first.tolist(), table.flag_start.tolist(),
            q_first.tolist()):
        row = ids[i]
        row[1:o - 1] = q_ids[q0:q0 + o - 2]          # slice copies: cheaper than one scatter of 2M tokens
        row[o:o + wl] = ctx_ids[c0:c0 + wl]
        out.append(Feature(e, wi, row, ones[seq - L:2 * seq - L], type_buffers[L - o][seq - o:2 * seq - o], L, o,
                           ContextMap(o, spans[c0:c0 + wl]), ContextMap(o, flags[f0:f0 + wl]),
                           None if s_pos < 0 else s_pos, None if e_pos < 0 else e_pos))
    return out


def _context_groups(examples: Sequence[Example], parts: int) -> list[tuple[int, int]]:
    """About ``parts`` contiguous (start, stop) slices of ``examples`` that never split a run of
    questions on one context (so each context is tokenized by one process)."""
    bounds = [0]
    target = max(1, -(-len(examples) // parts))
    for i in range(1, len(examples)):
        if i - bounds[-1] >= target and examples[i].context != examples[i - 1].context:
            bounds.append(i)
    bounds.append(len(examples))
    return list(zip(bounds[:-1], bounds[1:]))


#: A process is worth forking for at least this many examples (a fork and the pickled table cost
#: about what building 200 examples does).
MIN_EXAMPLES_PER_WORKER = 200
_WORKER: dict = {}


def _worker_init(examples, tokenizer, settings) -> None:
    _WORKER.update(examples=examples, tokenizer=tokenizer, settings=settings)


def _worker_build(bounds: tuple[int, int]) -> FeatureTable:
    w = _WORKER
    return build_table(w["examples"][bounds[0]:bounds[1]], w["tokenizer"], w["settings"])


def build_feature_table(examples: Sequence[Example], tokenizer, settings: SquadSettings = DEFAULT_SQUAD,
                        progress: bool = False, workers: int = 1) -> FeatureTable:
    """``build_table``, split over ``workers`` processes (forked: they inherit the tokenizer and the
    examples, and send back compact tables) when there are enough examples to pay for them."""
    if (workers <= 1 or len(examples) < MIN_EXAMPLES_PER_WORKER * workers
            or "fork" not in multiprocessing.get_all_start_methods()):
        return build_table(examples, tokenizer, settings, progress)
    from concurrent.futures import ProcessPoolExecutor

    chunks = _context_groups(examples, workers * 4)
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(examples, tokenizer, settings)) as pool:
        tables = list(pool.map(_worker_build, chunks))
    return concat_tables(tables)


def build_features(
    examples: Sequence[Example],
    tokenizer,
    settings: SquadSettings = DEFAULT_SQUAD,
    progress: bool = False,
    workers: int = 1,
) -> list[Feature]:
    """Features of every example, in order (the same algorithm as the reference)."""
    return to_features(build_feature_table(examples, tokenizer, settings, progress, workers))


def stack_batch(features: Sequence[Feature], pad_to: int | None = None) -> dict[str, np.ndarray]:
    """The runner feed for ``features``: int64 arrays [batch, seq], cut to ``pad_to`` columns
    (default: the features' full padded length)."""
    seq = pad_to or len(features[0].input_ids)
    return {
        "input_ids": np.stack([f.input_ids[:seq] for f in features]),
        "attention_mask": np.stack([f.attention_mask[:seq] for f in features]),
        "token_type_ids": np.stack([f.token_type_ids[:seq] for f in features]),
    }
