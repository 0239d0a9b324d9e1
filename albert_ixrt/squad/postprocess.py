"""From start/end logits to answer text (the reference's n-best search, ``write_predictions``).

For every feature of an example: the ``n_best_size`` best start and end positions, kept when both
lie in the context, the start has its maximum context in this window, end >= start and the span
is at most ``max_answer_length`` tokens; the best-scoring span (start + end logit) over all the
example's features wins.  The text comes straight from the original context through the tokens'
character spans, so nothing is lost to re-tokenization (the reference joins whole words and
re-aligns WordPiece text, which costs ALBERT about 1 EM point).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..config import DEFAULT_SQUAD, SquadSettings
from .data import Example
from .features import ContextMap, Feature, _ragged


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
    """Indices of the ``n`` largest values, largest first (stable for ties: lower index first)."""
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:n]]


def feature_candidates(feature: Feature, start_logits: np.ndarray, end_logits: np.ndarray,
                       settings: SquadSettings, feature_index: int = 0) -> list[Candidate]:
    """Valid spans of one feature (not yet de-duplicated, not sorted)."""
    out = []
    starts = top_indices(start_logits[: feature.length], settings.n_best_size)
    ends = top_indices(end_logits[: feature.length], settings.n_best_size)
    for s in starts:
        if s not in feature.token_spans or not feature.token_is_max_context.get(s, False):
            continue
        for e in ends:
            if e not in feature.token_spans or e < s or e - s + 1 > settings.max_answer_length:
                continue
            out.append(Candidate("", float(start_logits[s]), float(end_logits[e]), feature_index, s, e))
    return out


def span_text(context: str, feature: Feature, start: int, end: int) -> str:
    c0 = feature.token_spans[start][0]
    c1 = feature.token_spans[end][1]
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
                            logits: Mapping[int, tuple[np.ndarray, np.ndarray]] | Sequence[tuple[np.ndarray, np.ndarray]],
                            settings: SquadSettings = DEFAULT_SQUAD) -> dict[str, str]:
    """``{question id: answer text}`` for every example; ``logits[i]`` belongs to ``features[i]``.

    The answer is the first of ``best_answers`` (its first candidate is always kept), found for all
    features at once: the ``n_best_size`` best starts and ends of every feature (``top_k``), the
    [features, n, n] grid of their pairs masked by the rules (both in the context and not padding,
    the start in its max-context window, end >= start, at most ``max_answer_length`` tokens), the
    best pair of each feature, then of each example.  Ties go where the reference's stable sort puts
    them: the earlier feature, then the better-ranked start, then end.  Python touches only the
    winners' text.  (A NaN logit counts as -inf here.)
    """
    predictions = {ex.qid: "" for ex in examples}
    n = len(features)
    if n == 0:
        return predictions
    start, end, real = _stack_logits(features, [logits[i] for i in range(n)])
    in_ctx, max_ctx = _position_masks(features, start.shape[1])
    k = min(settings.n_best_size, start.shape[1])
    s_idx, e_idx = top_k(start, k), top_k(end, k)
    rows = np.arange(n)[:, None]
    s_ok = (in_ctx & max_ctx & real)[rows, s_idx]
    e_ok = (in_ctx & real)[rows, e_idx]
    width = e_idx[:, None, :] - s_idx[:, :, None] + 1
    ok = s_ok[:, :, None] & e_ok[:, None, :] & (width >= 1) & (width <= settings.max_answer_length)
    score = start[rows, s_idx][:, :, None] + end[rows, e_idx][:, None, :]
    ok, score = ok.reshape(n, k * k), np.where(ok, score, -np.inf).reshape(n, k * k)
    best = np.where(score.max(axis=1) == -np.inf, ok.argmax(axis=1), score.argmax(axis=1))
    f_ok = ok[np.arange(n), best]
    f_score = score[np.arange(n), best]
    ex_of = np.array([f.example_index for f in features], dtype=np.int64)
    order = np.lexsort((np.arange(n), -f_score, ~f_ok, ex_of))     # last key first: example, valid, score
    first = order[np.unique(ex_of[order], return_index=True)[1]]
    for fi in first.tolist():
        ei = int(ex_of[fi])
        if f_ok[fi] and 0 <= ei < len(examples):
            b = int(best[fi])
            s, e = int(s_idx[fi, b // k]), int(e_idx[fi, b % k])
            predictions[examples[ei].qid] = span_text(examples[ei].context, features[fi], s, e)
    return predictions


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Row-wise ``top_indices``: [rows, k] column indices of the k largest values of each row,
    largest first, ties to the lower index (argpartition alone breaks ties arbitrarily, so the
    values equal to the k-th largest are taken lowest index first)."""
    rows, cols = values.shape
    if k >= cols:
        return np.argsort(-values, axis=1, kind="stable")[:, :k]
    kth = -np.partition(-values, k - 1, axis=1)[:, k - 1:k]
    greater = values > kth
    equal = values == kth
    need = k - greater.sum(axis=1, keepdims=True)
    take = greater | (equal & (np.cumsum(equal, axis=1) <= need))
    idx = np.nonzero(take)[1].reshape(rows, k)                  # each row's k columns, ascending
    order = np.argsort(-np.take_along_axis(values, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def _stack_logits(features: Sequence[Feature], logits: Sequence[tuple[np.ndarray, np.ndarray]]):
    """float64 [features, width] start and end logits (-inf past a row's end), and the mask of the
    positions the n-best may look at: before the feature's length (padding never answers)."""
    n = len(features)
    lengths = [min(len(s), len(e)) for s, e in logits]
    width = max(lengths) if lengths else 0
    if all(w == width for w in lengths):
        start = np.stack([s[:width] for s, _ in logits]).astype(np.float64)
        end = np.stack([e[:width] for _, e in logits]).astype(np.float64)
    else:
        start = np.full((n, width), -np.inf)
        end = np.full((n, width), -np.inf)
        for i, (s, e) in enumerate(logits):
            start[i, :len(s)] = s[:width]
            end[i, :len(e)] = e[:width]
    limit = np.minimum([f.length for f in features], lengths)
    real = np.arange(width)[None, :] < np.asarray(limit)[:, None]
    for a in (start, end):
        a[~real | np.isnan(a)] = -np.inf
    return start, end, real


def _position_masks(features: Sequence[Feature], width: int) -> tuple[np.ndarray, np.ndarray]:
    """[features, width] bool: is the position a context token (in ``token_spans``), and is it one
    whose max-context window this is (``token_is_max_context``)."""
    n = len(features)
    in_ctx = np.zeros((n, width), dtype=bool)
    max_ctx = np.zeros((n, width), dtype=bool)
    if all(isinstance(f.token_spans, ContextMap) and isinstance(f.token_is_max_context, ContextMap)
           and f.token_spans.offset == f.token_is_max_context.offset
           and len(f.token_spans) == len(f.token_is_max_context) for f in features):
        rows, k = _ragged(np.array([len(f.token_spans) for f in features], dtype=np.int64))
        cols = np.array([f.token_spans.offset for f in features], dtype=np.int64)[rows] + k
        flags = np.concatenate([f.token_is_max_context.array for f in features] or [np.zeros(0, bool)])
        keep = (cols >= 0) & (cols < width)
        in_ctx[rows[keep], cols[keep]] = True
        max_ctx[rows[keep], cols[keep]] = flags[keep]
        return in_ctx, max_ctx
    for i, f in enumerate(features):           # features built by hand (plain dicts)
        for pos in f.token_spans:
            if 0 <= pos < width:
                in_ctx[i, pos] = True
        for pos, flag in f.token_is_max_context.items():
            if flag and 0 <= pos < width:
                max_ctx[i, pos] = True
    return in_ctx, max_ctx


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
