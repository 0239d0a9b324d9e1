"""The accuracy verdicts, each with a message that gives the measured figures, the threshold and
the margin: the reference thresholds (ByteMLPerf-compatible EM/F1) and the MLPerf-style ratio
(official F1 of the runner under test against the torch fp32 reference).

Pure functions over ``SquadScores``: the pytest suite, ``albert-ixrt run`` and the known-answer
tests all judge through these, so a verdict proven on a known-answer model is the same code that
judges the real one.
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
    """ByteMLPerf-compatible EM >= 80.18 and F1 >= 87.57 (how the reference row was measured)."""
    got = {"bytemlperf_exact_match": scores.bytemlperf_exact_match, "bytemlperf_f1": scores.bytemlperf_f1}
    margin = {k: got[k] - v for k, v in THRESHOLDS.items()}
    below = {k: (got[k], v) for k, v in THRESHOLDS.items() if not got[k] >= v}   # NaN counts as below
    passed = not below
    message = (f"{'PASS' if passed else 'FAIL'}: ByteMLPerf-compatible "
               f"EM {against(got['bytemlperf_exact_match'], REFERENCE_EM_BYTEMLPERF)} "
               f"(margin {margin['bytemlperf_exact_match']:+.3f}), "
               f"F1 {against(got['bytemlperf_f1'], REFERENCE_F1_BYTEMLPERF)} (margin "
               f"{margin['bytemlperf_f1']:+.3f}) over {scores.features} features; official SQuAD v1.1 "
               f"EM {scores.exact_match:.2f} F1 {scores.f1:.2f} over {scores.questions} questions")
    return Verdict(passed, message, {"thresholds": dict(THRESHOLDS), "measured": got,
                                     "margin": {k: round(v, 3) for k, v in margin.items()}, "below": below})


def mlperf_ratio(f1: float, reference_f1: float) -> Verdict:
    """MLPerf Inference (BERT-99 style): official F1 >= 99% of the torch fp32 reference's."""
    ratio = f1 / reference_f1 if reference_f1 else float("nan")
    passed = ratio >= MLPERF_F1_RATIO
    message = (f"{'PASS' if passed else 'FAIL'}: official F1 {f1:.3f} vs torch fp32 reference {reference_f1:.3f}: "
               f"ratio {against(ratio, MLPERF_F1_RATIO, 4)} (margin {ratio - MLPERF_F1_RATIO:+.4f})")
    return Verdict(passed, message, {"f1": f1, "reference_f1": reference_f1, "ratio": ratio,
                                     "threshold": MLPERF_F1_RATIO})


def outputs_match_reference(reference: tuple, timed: tuple, mask, precision: str, what: str = "timed") -> Verdict:
    """The runner under test against torch fp32 on the same inputs, within the stated per-precision
    tolerance (config.TOLERANCES; precisions without one of their own, bf16 and int8, take fp16's) on
    the real (unmasked) positions.  The perf tests apply it to outputs of timed calls: a fast
    configuration must still compute the right thing (the idea of MLPerf's compliance TEST01).
    Pure numpy: ``reference`` and ``timed`` are (start, end) arrays, ``mask`` the attention mask."""
    import numpy as np

    from .config import TOLERANCES

    tol = TOLERANCES["fp32" if precision == "fp32" else "fp16"]
    real = np.asarray(mask) > 0
    worst, over = 0.0, 0
    for name, ref, got in zip(("start", "end"), reference, timed):
        ref, got = np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64)
        if ref.shape != got.shape:
            return Verdict(False, f"FAIL: {what} {name} logits have shape {got.shape}, torch fp32 {ref.shape}")
        err = np.abs(got - ref)[real]
        bound = tol.atol + tol.rtol * np.abs(ref)[real]
        bad = ~(err <= bound)   # NaN counts as over
        over += int(bad.sum())
        worst = max(worst, float(np.nan_to_num(err, nan=np.inf).max(initial=0.0)))
    checked = int(real.sum()) * 2
    passed = over == 0 and checked > 0
    message = (f"{'PASS' if passed else 'FAIL'}: {checked} {what} logits (start+end, real positions) against "
               f"torch fp32: worst abs error {worst:.3g}, {over} over atol {tol.atol:g} + rtol {tol.rtol:g} "
               f"({precision} tolerance)")
    return Verdict(passed, message, {"checked": checked, "over": over, "worst_abs": worst,
                                     "atol": tol.atol, "rtol": tol.rtol})
