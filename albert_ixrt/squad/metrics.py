"""SQuAD v1.1 exact match and F1: the official metric, and the ByteMLPerf-compatible variant.

Official (``evaluate-v1.1.py``): answers are normalised (lower case, punctuation dropped, the
articles a/an/the dropped, whitespace collapsed); a question scores the maximum over its gold
answers; EM and F1 are the means over *all questions* of the data set, in percent, a question
with no prediction scoring 0.

ByteMLPerf (``open_squad`` accuracy checker, which produced the reference 80.18 / 87.57): the
same per-question sums, divided by the number of *features* instead (more features than
questions, so its figures are lower).  The two are always labelled and never mixed.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Mapping, Sequence

from .data import Example

_PUNCT = set(string.punctuation)
_DROP_PUNCT = str.maketrans("", "", string.punctuation)   # = the official per-character filter, in C
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@lru_cache(maxsize=1 << 16)
def normalize_answer(s: str) -> str:
    """The official script's normalisation (cached: scoring normalises each answer up to four times)."""
    s = s.lower()
    s = s.translate(_DROP_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


@lru_cache(maxsize=1 << 16)
def _token_counts(s: str) -> tuple[Counter, int]:
    """The normalised tokens of ``s``, counted, and how many (shared, read-only: cached)."""
    tokens = normalize_answer(s).split()
    return Counter(tokens), len(tokens)


def f1_score(prediction: str, ground_truth: str) -> float:
    pred, n_pred = _token_counts(prediction)
    gold, n_gold = _token_counts(ground_truth)
    same = sum((pred & gold).values())
    if same == 0:
        return 0.0
    precision = same / n_pred
    recall = same / n_gold
    return 2 * precision * recall / (precision + recall)


def best_over_gold(metric, prediction: str, ground_truths: Sequence[str]) -> float:
    return max(metric(prediction, g) for g in ground_truths)


@dataclass(frozen=True)
class SquadScores:
    """Both metrics of one run. Percentages."""

    exact_match: float            # official: sum / questions
    f1: float
    bytemlperf_exact_match: float  # ByteMLPerf-compatible: sum / features
    bytemlperf_f1: float
    questions: int
    answered: int
    features: int | None

    def official(self) -> dict:
        return {"exact_match": self.exact_match, "f1": self.f1}

    def summary_lines(self) -> list[str]:
        """Both metrics, labelled, for a terminal."""
        return [f"official SQuAD v1.1:   EM {self.exact_match:6.2f}  F1 {self.f1:6.2f}  ({self.questions} questions)",
                f"ByteMLPerf-compatible: EM {self.bytemlperf_exact_match:6.2f}  F1 {self.bytemlperf_f1:6.2f}  "
                f"({self.features} features)"]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["labels"] = {
            "exact_match/f1": "official SQuAD v1.1 metric: mean over questions",
            "bytemlperf_exact_match/bytemlperf_f1": "ByteMLPerf-compatible: summed over questions, divided by features",
        }
        return d


def score_sums(examples: Sequence[Example], predictions: Mapping[str, str]) -> tuple[float, float, int]:
    """Summed EM and F1 over the examples (a missing prediction scores 0) and the answered count."""
    em = f1 = 0.0
    answered = 0
    for ex in examples:
        if ex.qid not in predictions:
            continue
        answered += 1
        gold = ex.answer_texts
        if not gold:
            continue
        pred = predictions[ex.qid]
        em += best_over_gold(exact_match_score, pred, gold)
        f1 += best_over_gold(f1_score, pred, gold)
    return em, f1, answered


def score(examples: Sequence[Example], predictions: Mapping[str, str], num_features: int | None = None) -> SquadScores:
    em, f1, answered = score_sums(examples, predictions)
    n = len(examples)
    official_em = 100.0 * em / n if n else 0.0
    official_f1 = 100.0 * f1 / n if n else 0.0
    if num_features:
        b_em, b_f1 = 100.0 * em / num_features, 100.0 * f1 / num_features
    else:
        b_em = b_f1 = float("nan")
    return SquadScores(official_em, official_f1, b_em, b_f1, n, answered, num_features)
