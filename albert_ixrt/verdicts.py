"""The accuracy verdicts, each with a message that gives the measured figures, the threshold and
the margin: the reference thresholds (ByteMLPerf-compatible EM/F1) and the MLPerf-style ratio
(official F1 of the runner under test against the torch fp32 reference).

Pure functions over ``SquadScores``: the acceptance session (both doors) and the known-answer tests
judge through these, so a verdict proven on a known-answer model is the same code that judges the
real one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import MLPERF_F1_RATIO, REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF
from .squad.metrics import SquadScores

THRESHOLDS = {"bytemlperf_exact_match": REFERENCE_EM_BYTEMLPERF, "bytemlperf_f1": REFERENCE_F1_BYTEMLPERF}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    detail: dict = field(default_factory=dict)


def against(value: float, threshold: float, digits: int = 2) -> str:
    """"72.69, needs >= 80.18": the figure with as many decimals as keep its verdict visible (87.569
    against 87.57 is never shown as "87.57, needs >= 87.57")."""
    for d in range(digits, 7):
        text = f"{value:.{d}f}"
        if (float(text) >= threshold) == (value >= threshold):
            break
    return f"{text}, needs >= {threshold}"


def reference_thresholds(scores: SquadScores) -> Verdict:
    """ByteMLPerf-compatible EM >= 80.18 and F1 >= 87.57 (how the reference row was measured), both in one
    verdict: passed when each of ``threshold_verdicts`` (the rule the acceptance session judges by) is."""
    each = threshold_verdicts(scores)
    got = {k: v.detail["measured"] for k, v in each.items()}
    margin = {k: got[k] - THRESHOLDS[k] for k in THRESHOLDS}
    below = {k: (got[k], THRESHOLDS[k]) for k, v in each.items() if not v.passed}
    passed = not below
    message = (f"{'PASS' if passed else 'FAIL'}: ByteMLPerf-compatible "
               f"EM {against(got['bytemlperf_exact_match'], REFERENCE_EM_BYTEMLPERF)} "
               f"(margin {margin['bytemlperf_exact_match']:+.3f}), "
               f"F1 {against(got['bytemlperf_f1'], REFERENCE_F1_BYTEMLPERF)} (margin "
               f"{margin['bytemlperf_f1']:+.3f}) over {scores.features} features; official SQuAD v1.1 "
               f"EM {scores.exact_match:.2f} F1 {scores.f1:.2f} over {scores.questions} questions")
    return Verdict(passed, message, {"thresholds": dict(THRESHOLDS), "measured": got,
                                     "margin": {k: round(v, 3) for k, v in margin.items()}, "below": below})


#: How a reader knows each threshold's figure, and the official metric beside it.
FIGURE_NAMES = {"bytemlperf_exact_match": ("ByteMLPerf-compatible EM", "EM", "exact_match"),
                "bytemlperf_f1": ("ByteMLPerf-compatible F1", "F1", "f1")}


def threshold_verdicts(scores: SquadScores) -> dict[str, Verdict]:
    """One verdict per reference threshold (EM >= 80.18, F1 >= 87.57, ByteMLPerf-compatible), each
    naming its figure, the threshold, the margin and the official figure beside it."""
    out = {}
    for key, threshold in THRESHOLDS.items():
        label, short, official_key = FIGURE_NAMES[key]
        value = getattr(scores, key)
        passed = value >= threshold          # NaN is below
        message = (f"{'PASS' if passed else 'FAIL'}: {label} {against(value, threshold)} (margin "
                   f"{value - threshold:+.3f}) over {scores.features} features; official SQuAD v1.1 {short} "
                   f"{getattr(scores, official_key):.2f} over {scores.questions} questions")
        out[key] = Verdict(passed, message, {"measured": value, "threshold": threshold,
                                             "margin": round(value - threshold, 3)})
    return out


def mlperf_ratio(f1: float, reference_f1: float) -> Verdict:
    """MLPerf Inference (BERT-99 style): official F1 >= 99% of the torch fp32 reference's."""
    ratio = f1 / reference_f1 if reference_f1 else float("nan")
    passed = ratio >= MLPERF_F1_RATIO
    message = (f"{'PASS' if passed else 'FAIL'}: official F1 {f1:.3f} vs torch fp32 reference {reference_f1:.3f}: "
               f"ratio {against(ratio, MLPERF_F1_RATIO, 4)} (margin {ratio - MLPERF_F1_RATIO:+.4f})")
    return Verdict(passed, message, {"f1": f1, "reference_f1": reference_f1, "ratio": ratio,
                                     "threshold": MLPERF_F1_RATIO})
