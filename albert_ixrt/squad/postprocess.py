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
from .features import Feature


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
    """``{question id: answer text}`` for every example; ``logits[i]`` belongs to ``features[i]``."""
    by_example: dict[int, list[int]] = {}
    for i, f in enumerate(features):
        by_example.setdefault(f.example_index, []).append(i)
    predictions = {}
    for ei, ex in enumerate(examples):
        idx = by_example.get(ei, [])
        nbest = best_answers(ex, [features[i] for i in idx], [logits[i] for i in idx], settings)
        predictions[ex.qid] = nbest[0].text if nbest else ""
    return predictions


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
