"""From start/end logits to answer text (the reference's n-best search, ``write_predictions``).

For every feature of an example: the ``n_best_size`` best start and end positions, kept when both
lie in the context, the start has its maximum context in this window, end >= start and the span
is at most ``max_answer_length`` tokens; the best-scoring span (start + end logit) over all the
example's features wins.  The text comes straight from the original context through the tokens'
character spans, so nothing is lost to re-tokenization (the reference joins whole words and
re-aligns WordPiece text, which costs ALBERT about 1 EM point).

A NaN logit is no logit: it ranks below every finite one, and its position never starts or ends an
answer (a feature whose logits are all NaN gives no answer, "").  The reference leaves NaN undefined:
its sort by score, given a NaN, misorders the finite scores too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..config import DEFAULT_SQUAD, SquadSettings
from .data import Example
from .features import ContextMap, Feature


@dataclass(frozen=True)
class Candidate:
    text: str
    start_logit: float
    end_logit: float
    feature_index: int
    start: int
    end: int

    @property
    def score(self) -> float:
        return self.start_logit + self.end_logit


def top_indices(logits: np.ndarray, n: int) -> list[int]:
    """Indices of the ``n`` largest values, largest first (stable for ties: lower index first; NaN last)."""
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:n]]


def feature_candidates(feature: Feature, start_logits: np.ndarray, end_logits: np.ndarray,
                       settings: SquadSettings, feature_index: int = 0) -> list[Candidate]:
    """Valid spans of one feature (not yet de-duplicated, not sorted); no NaN logit starts or ends one."""
    out = []
    starts = top_indices(start_logits[: feature.length], settings.n_best_size)
    ends = [e for e in top_indices(end_logits[: feature.length], settings.n_best_size) if not np.isnan(end_logits[e])]
    for s in starts:
        if (s not in feature.token_spans or not feature.token_is_max_context.get(s, False)
                or np.isnan(start_logits[s])):
            continue
        for e in ends:
            if e not in feature.token_spans or e < s or e - s + 1 > settings.max_answer_length:
                continue
            out.append(Candidate("", float(start_logits[s]), float(end_logits[e]), feature_index, s, e))
    return out


def span_text(context: str, feature: Feature, start: int, end: int) -> str:
    spans = feature.token_spans
    if type(spans) is ContextMap and 0 <= start - spans.offset and end - spans.offset < len(spans.array):
        c0, c1 = int(spans.array[start - spans.offset, 0]), int(spans.array[end - spans.offset, 1])   # fast path
    else:
        c0, c1 = spans[start][0], spans[end][1]
    return context[c0:c1].strip()


def best_answers(example: Example, features: Sequence[Feature], logits: Sequence[tuple[np.ndarray, np.ndarray]],
                 settings: SquadSettings = DEFAULT_SQUAD) -> list[Candidate]:
    """The n-best answers of one example, best first, distinct texts ("" when nothing is valid)."""
    candidates: list[Candidate] = []
    for fi, (feature, (start_logits, end_logits)) in enumerate(zip(features, logits)):
        candidates.extend(feature_candidates(feature, start_logits, end_logits, settings, fi))
    candidates.sort(key=lambda c: c.score, reverse=True)
    nbest: list[Candidate] = []
    seen: set[str] = set()
    for c in candidates:
        if len(nbest) >= settings.n_best_size:
            break
        text = span_text(example.context, features[c.feature_index], c.start, c.end)
        if text in seen:
            continue
        seen.add(text)
        nbest.append(Candidate(text, c.start_logit, c.end_logit, c.feature_index, c.start, c.end))
    return nbest


def predictions_from_logits(examples: Sequence[Example], features: Sequence[Feature],
                            logits: (Mapping[int, tuple[np.ndarray, np.ndarray]]
                                     | Sequence[tuple[np.ndarray, np.ndarray]]),
                            settings: SquadSettings = DEFAULT_SQUAD) -> dict[str, str]:
    """``{question id: answer text}`` for every example; ``logits[i]`` belongs to ``features[i]``.

    The answer is the first of ``best_answers`` (whose first candidate is always kept), found for
    all features at once: the ``n_best_size`` best starts and ends of every feature (``top_k``, over
    the feature's own positions only: padding never answers), each start's best end (the first
    end, in rank order, that passes the rules: in the context, end >= start, at most
    ``max_answer_length`` tokens; with the ends ranked by logit, that is the pair the reference's
    sort puts first for this start), the best valid start of each feature (in the context and in
    its max-context window), then the best feature of each example.  Ties go where the reference's
    stable sort puts them: the earlier feature, the better-ranked start, then end.  Python touches
    only the winners' text.  A NaN logit ranks with -inf and never starts or ends an answer.
    """
    predictions = {ex.qid: "" for ex in examples}
    n = len(features)
    if n == 0:
        return predictions
    start, end, limit, nan = _stack_logits(features, [logits[i] for i in range(n)])
    k = min(settings.n_best_size, start.shape[1])
    s_idx, e_idx = top_k(start, k), top_k(end, k)
    s_ok, e_ok = _valid_starts_ends(features, s_idx, e_idx)
    s_ok &= s_idx < limit[:, None]                                 # padding, or past a short row's end
    e_ok &= e_idx < limit[:, None]
    if nan is not None:                                            # a NaN logit is no logit
        rows = np.arange(n)[:, None]
        s_ok &= ~nan[0][rows, s_idx]
        e_ok &= ~nan[1][rows, e_idx]
    # [features, start rank, end rank]: may this end close a span from this start?
    span = e_idx[:, None, :].astype(np.int16) - s_idx[:, :, None].astype(np.int16)
    fits = (span.view(np.uint16) < settings.max_answer_length) & e_ok[:, None, :]   # 0 <= end - start < max
    e_rank = fits.argmax(axis=2)                                   # the first fitting end of each start
    s_ok &= np.take_along_axis(fits, e_rank[:, :, None], axis=2)[:, :, 0]
    rows = np.arange(n)[:, None]
    score = (start[rows, s_idx].astype(np.float64)
             + np.take_along_axis(end[rows, e_idx].astype(np.float64), e_rank, axis=1))
    score = np.where(s_ok, score, -np.inf)
    best = np.where(score.max(axis=1) == -np.inf, s_ok.argmax(axis=1), score.argmax(axis=1))
    at = np.arange(n)
    f_ok, f_score = s_ok[at, best], score[at, best]
    ex_of = np.fromiter((f.example_index for f in features), dtype=np.int64, count=n)
    order = np.lexsort((at, -f_score, ~f_ok, ex_of))              # last key first: example, valid, score
    first = order[np.unique(ex_of[order], return_index=True)[1]]
    first = first[f_ok[first]]
    s_best = s_idx[first, best[first]].tolist()
    e_best = e_idx[first, e_rank[first, best[first]]].tolist()
    for fi, s, e in zip(first.tolist(), s_best, e_best):
        ei = features[fi].example_index
        if 0 <= ei < len(examples):
            predictions[examples[ei].qid] = span_text(examples[ei].context, features[fi], s, e)
    return predictions


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Row-wise ``top_indices``: [rows, k] column indices of the k largest values of each row,
    largest first, ties to the lower index (a partition alone breaks ties arbitrarily, so of the
    values equal to the k-th largest, the lowest-index ones are taken)."""
    rows, cols = values.shape
    if k >= cols or _few_distinct(values):
        return np.argsort(-values, axis=1, kind="stable")[:, :k]
    kth = np.partition(values, cols - k, axis=1)[:, cols - k:cols - k + 1]
    greater = values > kth
    equal = values == kth
    need = k - greater.sum(axis=1, keepdims=True)
    take = greater | (equal & (np.cumsum(equal, axis=1, dtype=np.int16 if cols < 2**15 else np.int64) <= need))
    idx = np.nonzero(take)[1].reshape(rows, k)                  # each row's k columns, ascending
    order = np.argsort(-np.take_along_axis(values, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def _few_distinct(values: np.ndarray) -> bool:
    """Rows of a few distinct values each (oracle or known-answer logits: one high, the rest low)?
    Then a stable sort of every row is quicker than a partition, which slows down on long runs of
    equal values; either gives the same ``top_k``."""
    sample = values[:: max(1, len(values) // 32)]
    return sum(len(np.unique(row)) for row in sample) <= len(sample) * values.shape[1] // 16


def _stack_logits(features: Sequence[Feature], logits: Sequence[tuple[np.ndarray, np.ndarray]]):
    """[features, width] start and end logits, -inf where the n-best may not look: at and past the
    feature's length (padding) or the row's end, and where the logit is NaN; that limit per feature; and
    where the start and end logits were NaN ([features, width] bool each), or None when none was.
    float32 when the logits are float32 or narrower (exact, and half the memory traffic of float64),
    else float64."""
    n = len(features)
    lengths = [min(len(s), len(e)) for s, e in logits]
    width = max(lengths)
    dtype = np.result_type(*{np.asarray(x).dtype for pair in logits[:64] for x in pair})
    dtype = np.float32 if np.can_cast(dtype, np.float32, "safe") else np.float64
    if all(w == width for w in lengths) and all(len(s) == len(e) for s, e in logits):
        start = np.stack([s for s, _ in logits]).astype(dtype, copy=False)
        end = np.stack([e for _, e in logits]).astype(dtype, copy=False)
    else:
        start = np.full((n, width), -np.inf, dtype=dtype)
        end = np.full((n, width), -np.inf, dtype=dtype)
        for i, (s, e) in enumerate(logits):
            start[i, :len(s)] = s[:width]
            end[i, :len(e)] = e[:width]
    limit = np.minimum(np.fromiter((f.length for f in features), dtype=np.int64, count=n), lengths)
    outside = np.arange(width)[None, :] >= limit[:, None]
    nan = (np.isnan(start), np.isnan(end))
    for a, a_nan in zip((start, end), nan):
        a[outside | a_nan] = -np.inf
    return start, end, limit, (nan if nan[0].any() or nan[1].any() else None)


def _valid_starts_ends(features: Sequence[Feature], s_idx: np.ndarray,
                       e_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[features, k] bool: is each ranked start a context token whose max-context window this is
    (``token_is_max_context``), each ranked end a context token (``token_spans``)?"""
    n = len(features)
    spans = [f.token_spans for f in features]
    maxes = [f.token_is_max_context for f in features]
    if all(type(m) is ContextMap for m in spans) and all(type(m) is ContextMap for m in maxes):
        offset = np.fromiter((m.offset for m in spans), dtype=np.int64, count=n)[:, None]
        count = np.fromiter((len(m.array) for m in spans), dtype=np.int64, count=n)
        if not ((offset[:, 0] == np.fromiter((m.offset for m in maxes), dtype=np.int64, count=n)).all()
                and (count == np.fromiter((len(m.array) for m in maxes), dtype=np.int64, count=n)).all()):
            return _valid_by_lookup(features, s_idx, e_idx)
        flags = np.concatenate([m.array for m in maxes] + [np.zeros(1, bool)])
        flag_start = np.concatenate([[0], np.cumsum(count)])[:-1, None]
        s_in = (s_idx >= offset) & (s_idx < offset + count[:, None])
        e_in = (e_idx >= offset) & (e_idx < offset + count[:, None])
        s_ok = s_in & flags[np.where(s_in, flag_start + s_idx - offset, len(flags) - 1)]
        return s_ok, e_in
    return _valid_by_lookup(features, s_idx, e_idx)


def _valid_by_lookup(features: Sequence[Feature], s_idx: np.ndarray, e_idx: np.ndarray):
    """``_valid_starts_ends`` by look-ups, for features built by hand (plain dicts)."""
    s_ok = np.zeros(s_idx.shape, dtype=bool)
    e_ok = np.zeros(e_idx.shape, dtype=bool)
    for i, f in enumerate(features):
        s_ok[i] = [bool(f.token_is_max_context.get(int(p), False)) and int(p) in f.token_spans for p in s_idx[i]]
        e_ok[i] = [int(p) in f.token_spans for p in e_idx[i]]
    return s_ok, e_ok


def oracle_logits(feature: Feature, high: float = 10.0, low: float = -10.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits that put all weight on the feature's gold start and end tokens (flat elsewhere).

    A feature without the gold span in its window gets flat logits on [CLS], so it loses to any
    window that does contain the answer.
    """
    n = len(feature.input_ids)
    start = np.full(n, low, dtype=np.float32)
    end = np.full(n, low, dtype=np.float32)
    if feature.start_position is not None:
        start[feature.start_position] = high
        end[feature.end_position] = high
    return start, end
