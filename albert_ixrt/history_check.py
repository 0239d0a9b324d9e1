"""The verdict on a history of nights: did the newest nights of a series regress against the nights before?

Throughput (sequences/s of each night's median round, on a log scale so a change is a percentage):

- **One observation per night.**  A night's own rounds share that night's machine state (clocks,
  neighbours, a driver's mood), so their spread understates how much nights differ; a test on pooled
  rounds calls every other night a regression (benchmarks/BENCHMARKS.md measures it).  Each night's
  median round is one observation, and the spread between nights is estimated from the history.
- **Robust baseline.**  The baseline is the ``baseline`` nights before the window; nights further than
  HISTORY_OUTLIER_Z normal-scaled MADs from their median (a modified z-score rule) are set aside,
  so one wild night neither moves the baseline nor inflates its spread.
- **The test.**  The window's nights against the baseline's, Student's two-sample t-test with pooled
  variance (``scipy.stats.ttest_ind_from_stats``, one-sided): the window's own spread joins the
  pooled one, so a window of one low and one normal night (a blip) weighs less.  The 95 %
  confidence interval of the change is from the same t distribution.
- **Persistence or an overwhelming night.**  A slowdown is called when the newest ``persist`` nights
  are each below the baseline by at least the floor and together significant (p < HISTORY_ALPHA);
  or when the newest night alone is beyond doubt (p < HISTORY_OVERWHELMING_P and at least
  HISTORY_OVERWHELMING_MIN_PCT slower).  Changes smaller than the floor are never called.
- **First bad night.**  From the window the search steps back over nights that were already low
  against the nights before them; the last good night is the one before.  ``git log GOOD..BAD`` then
  lists the suspects.

Accuracy is deterministic on a fixed data set, so no noise model: a drop of an EM or F1 figure by
HISTORY_ACCURACY_DROP_POINTS or more below the baseline's median is called the first night, and a
ByteMLPerf-compatible figure below the acceptance threshold is always called (real weights only).
Only nights scored on as many questions as the newest are compared.

Every number lives in config.py.  Pure functions of the nights: no I/O, no torch.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from .config import (HISTORY_ACCURACY_DROP_POINTS, HISTORY_ALPHA, HISTORY_BASELINE_NIGHTS, HISTORY_EXTEND_ALPHA,
                     HISTORY_FLOOR_PCT, HISTORY_MIN_BASELINE_NIGHTS, HISTORY_OUTLIER_Z, HISTORY_OVERWHELMING_MIN_PCT,
                     HISTORY_OVERWHELMING_P, HISTORY_PERSIST_NIGHTS, REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF)
from .history import ACCURACY_METRICS, Series

#: ByteMLPerf-compatible figures with an acceptance threshold (config.py's reference row).
THRESHOLDS = {"bytemlperf_exact_match": REFERENCE_EM_BYTEMLPERF, "bytemlperf_f1": REFERENCE_F1_BYTEMLPERF}
#: Weights whose accuracy means nothing (the random-weight twin): their figures are not judged.
UNJUDGED_WEIGHTS = ("random",)
#: Weights with a designed accuracy (known-answer models): drops are judged, the threshold is not.
NO_THRESHOLD_WEIGHTS = ("random", "known-answer")
PERF_METRIC = "seq/s (median round)"
#: Figures are decimal points in binary floats: 90.2 - 90.1 is 0.0999999999999943, a drop of 0.1 all the same.
FLOAT_SLACK = 1e-9
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Settings:
    persist: int = HISTORY_PERSIST_NIGHTS
    floor_pct: float = HISTORY_FLOOR_PCT
    baseline: int = HISTORY_BASELINE_NIGHTS
    min_baseline: int = HISTORY_MIN_BASELINE_NIGHTS
    alpha: float = HISTORY_ALPHA
    overwhelming_p: float = HISTORY_OVERWHELMING_P
    overwhelming_min_pct: float = HISTORY_OVERWHELMING_MIN_PCT
    accuracy_drop: float = HISTORY_ACCURACY_DROP_POINTS


@dataclass
class Verdict:
    """One metric of one series.  ``status``: "ok", "REGRESSION" or "not judged"; ``first_bad`` and
    ``last_good`` index the series' nights (None where there is none)."""
    metric: str
    status: str
    latest: float | None = None
    baseline: float | None = None
    change: float | None = None            # percent for throughput, points for accuracy
    ci: tuple[float, float] | None = None  # of ``change``, same unit
    unit: str = "%"
    rule: str = ""
    p: float | None = None
    spread: float | None = None            # between-night standard deviation of the baseline, %
    nights: int = 0
    baseline_nights: int = 0
    first_bad: int | None = None
    last_good: int | None = None

    @property
    def flagged(self) -> bool:
        return self.status == "REGRESSION"


# --------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """The window's nights against the baseline's, on log values (a change of d is expm1(d) in %)."""
    change: float      # window mean - baseline mean (log)
    se: float
    df: int
    p: float           # one-sided: the window is slower
    kept: int          # baseline nights kept after the outlier rule
    centre: float      # baseline mean (log)
    spread: float      # baseline standard deviation (log): between-night noise


#: A normal distribution's standard deviation per unit of median absolute deviation (1.4826).
MAD_TO_SD = float(1.0 / stats.norm.ppf(0.75))


def kept_baseline(base: np.ndarray) -> np.ndarray:
    """The baseline nights without outliers (modified z-score above HISTORY_OUTLIER_Z).  The MAD is
    numpy's two medians rather than scipy.stats.median_abs_deviation(scale="normal"), the same figure:
    scipy's array-API wrapper costs ~30x the arithmetic (measured: 80 % of a verdict's time), which
    benchmarks/history_noise.py pays ~100,000 times."""
    centre = np.median(base)
    deviation = np.abs(base - centre)
    mad = float(np.median(deviation)) * MAD_TO_SD
    if not mad > 0:
        return base
    return base[deviation <= HISTORY_OUTLIER_Z * mad]


def compare(base: np.ndarray, window: np.ndarray) -> Comparison | None:
    """Student's pooled two-sample t-test, one-sided (window slower), with scipy; None when the
    baseline is too short to give a spread.  Written from summary statistics because the baseline is
    the outlier-trimmed one (scipy's ``ttest_ind`` trims symmetrically by share, not by distance)."""
    kept = kept_baseline(base)
    if len(kept) < 2:
        return None
    m1, s1 = float(np.mean(kept)), float(np.std(kept, ddof=1))
    m2, s2 = float(np.mean(window)), float(np.std(window, ddof=1)) if len(window) > 1 else 0.0
    df = len(kept) + len(window) - 2
    pooled = math.sqrt(((len(kept) - 1) * s1 ** 2 + (len(window) - 1) * s2 ** 2) / df)
    se = pooled * math.sqrt(1 / len(kept) + 1 / len(window))
    if se == 0:
        p = 0.0 if m2 < m1 else 1.0
    else:
        p = float(stats.ttest_ind_from_stats(m1, s1, len(kept), m2, s2, len(window), equal_var=True,
                                             alternative="greater").pvalue)
    return Comparison(m2 - m1, se, df, p, len(kept), m1, s1)


def pct(log_change: float) -> float:
    return math.expm1(log_change) * 100.0


@functools.lru_cache(maxsize=256)
def _t_quantile(df: int) -> float:
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def ci_pct(c: Comparison) -> tuple[float, float]:
    """The two-sided CONFIDENCE interval of the change, in percent (Student's t, the test's df)."""
    half = _t_quantile(c.df) * c.se
    return pct(c.change - half), pct(c.change + half)


def _window_vs_baseline(x: np.ndarray, start: int, settings: Settings) -> Comparison | None:
    base = x[max(0, start - settings.baseline):start]
    if start < 1 or len(base) < settings.min_baseline:
        return None
    return compare(base, x[start:])


def _persists(x: np.ndarray, c: Comparison | None, start: int, settings: Settings) -> bool:
    """The newest ``persist`` nights: each below the baseline by the floor, together significant."""
    if c is None or c.p >= settings.alpha:
        return False
    floor = math.log1p(-settings.floor_pct / 100.0)
    return all(v - c.centre <= floor for v in x[start:])


def _overwhelms(c: Comparison | None, settings: Settings) -> bool:
    """The newest night alone: beyond doubt as noise and at least HISTORY_OVERWHELMING_MIN_PCT slower."""
    return c is not None and c.p < settings.overwhelming_p and pct(c.change) <= -settings.overwhelming_min_pct


def _low_night(x: np.ndarray, i: int, settings: Settings) -> bool:
    """Night ``i`` alone against the nights before it: below by the floor and unlikely as noise."""
    c = _window_vs_baseline(x[:i + 1], i, settings)
    return c is not None and pct(c.change) <= -settings.floor_pct and c.p < HISTORY_EXTEND_ALPHA


def first_bad(x: np.ndarray, start: int, settings: Settings) -> int:
    """Step back from the window's first night over nights already low against the nights before them
    (a slowdown older than the window: the nightly check did not run, or was ignored)."""
    while start - 1 >= settings.min_baseline and _low_night(x, start - 1, settings):
        start -= 1
    return start


def _nights(n: int) -> str:
    return f"{n} night" + ("" if n == 1 else "s")


def perf_verdict(values, settings: Settings = Settings()) -> Verdict:
    """The throughput verdict on a series' night values (higher is better), oldest first; nights without
    a value (None) are skipped, and ``first_bad``/``last_good`` index ``values`` itself."""
    where = [i for i, val in enumerate(values) if val is not None and val > 0]
    vals = [values[i] for i in where]
    v = Verdict(PERF_METRIC, "not judged", latest=vals[-1] if vals else None, nights=len(vals))
    if len(vals) < settings.min_baseline + 1:
        v.rule = f"{_nights(len(vals))}; needs {settings.min_baseline + 1} to judge"
        return v
    x = np.log(np.asarray(vals, dtype=float))
    start = len(x) - settings.persist
    window = _window_vs_baseline(x, start, settings)
    one = _window_vs_baseline(x, len(x) - 1, settings) if settings.persist != 1 else window
    if _persists(x, window, start, settings):
        hit, rule = window, f"slower on each of the newest {_nights(settings.persist)}"
    elif _overwhelms(one, settings):
        hit, rule, start = one, "one night, beyond doubt", len(x) - 1
    else:
        _describe(v, window or one, "ok")
        if v.status == "ok":
            v.rule = _ok_rule(v, one, settings)
        return v
    start = first_bad(x, start, settings)
    _describe(v, _window_vs_baseline(x, start, settings) or hit, "REGRESSION")
    v.rule, v.first_bad, v.last_good = rule, where[start], where[start - 1]
    return v


def _ok_rule(v: Verdict, one: Comparison | None, settings: Settings) -> str:
    """Why a judged series is not flagged, in words."""
    if one is not None and pct(one.change) <= -settings.floor_pct and one.p < settings.alpha and settings.persist > 1:
        return "slower on the newest night only (waits for persistence)"
    if v.change >= 0:
        return "no slowdown"
    if v.change > -settings.floor_pct:
        return f"under the {settings.floor_pct:g} % floor"
    if v.p >= settings.alpha:
        return "within noise"
    return "not slower by the floor on every night of the window"


def _describe(v: Verdict, c: Comparison | None, status: str) -> None:
    v.status = status
    if c is None:
        v.status, v.rule = "not judged", "baseline too short"
        return
    v.baseline = math.exp(c.centre)
    v.change, v.ci, v.p, v.baseline_nights = pct(c.change), ci_pct(c), c.p, c.kept
    v.spread = pct(c.spread)


# --------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------
def accuracy_verdict(metric: str, values: list[float | None], weights: str | None,
                     settings: Settings = Settings()) -> Verdict:
    """One accuracy figure over the nights (None: not scored that night, or on other questions)."""
    idx = [i for i, val in enumerate(values) if val is not None]
    v = Verdict(ACCURACY_METRICS[metric], "not judged", unit="points", nights=len(idx))
    if not idx:
        v.rule = "no figures"
        return v
    v.latest = values[idx[-1]]
    if weights in UNJUDGED_WEIGHTS:
        v.rule = f"{weights} weights: accuracy means nothing"
        return v
    v.status, v.rule = "ok", "no drop"
    threshold = THRESHOLDS.get(metric) if weights not in NO_THRESHOLD_WEIGHTS else None
    below = threshold is not None and v.latest < threshold
    drop = _accuracy_drop(values, idx, settings)
    if drop is not None:
        v.baseline, v.change, v.baseline_nights = drop
        v.ci = (v.change, v.change)
    reasons = []
    if below:
        bad = len(idx) - 1
        while bad > 0 and values[idx[bad - 1]] < threshold:
            bad -= 1
        v.first_bad, reasons = idx[bad], [f"below the acceptance threshold {threshold}"]
    if drop is not None and v.change <= -(settings.accuracy_drop - FLOAT_SLACK):
        bad = _accuracy_first_bad(values, idx, settings)
        v.first_bad = bad if v.first_bad is None else min(v.first_bad, bad)
        reasons.append(f"dropped {-v.change:.2f} points (limit {settings.accuracy_drop})")
    if reasons:
        v.status, v.rule = "REGRESSION", "; ".join(reasons)
        pos = idx.index(v.first_bad)
        v.last_good = idx[pos - 1] if pos > 0 else None
    return v


def _accuracy_drop(values, idx: list[int], settings: Settings, end: int | None = None):
    """(baseline median, change in points, nights) of night ``idx[end]`` against the nights before it."""
    end = len(idx) - 1 if end is None else end
    before = [values[i] for i in idx[max(0, end - settings.baseline):end]]
    if not before:
        return None
    base = float(np.median(before))
    return base, values[idx[end]] - base, len(before)


def _accuracy_first_bad(values, idx: list[int], settings: Settings) -> int:
    end = len(idx) - 1
    while end - 1 > 0:
        prev = _accuracy_drop(values, idx, settings, end - 1)
        if prev is None or prev[1] > -(settings.accuracy_drop - FLOAT_SLACK):
            break
        end -= 1
    return idx[end]


# --------------------------------------------------------------------------------------------
# Every series
# --------------------------------------------------------------------------------------------
@dataclass
class SeriesResult:
    series: Series
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def flagged(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.flagged]


def judge_series(series: Series, settings: Settings = Settings()) -> SeriesResult:
    nights = series.nights
    out = SeriesResult(series)
    if any(n.seq_per_s for n in nights):
        out.verdicts.append(perf_verdict([n.seq_per_s for n in nights], settings))
        if out.verdicts[-1].latest is not None and nights[-1].seq_per_s is None:
            out.verdicts[-1].rule += " (the newest night has no timing)"
    scored = [n.accuracy for n in nights]
    if any(scored):
        questions = next(a.get("questions") for a in reversed(scored) if a)
        same = [a if a and a.get("questions") == questions else None for a in scored]
        for metric in ACCURACY_METRICS:
            vals = [a.get(metric) if a else None for a in same]
            if any(val is not None for val in vals):
                out.verdicts.append(accuracy_verdict(metric, vals, series.key.get("weights"), settings))
    return out


def judge(series: list[Series], settings: Settings = Settings()) -> list[SeriesResult]:
    return [judge_series(s, settings) for s in series]


def exit_code(results: list[SeriesResult]) -> int:
    return 1 if any(r.flagged for r in results) else 0


def _night_name(series: Series, i: int | None) -> str:
    if i is None:
        return "none (the first night)"
    n = series.nights[i]
    return f"{(n.commit or 'commit unknown')[:12]} ({n.label})"


def regression_line(r: SeriesResult, v: Verdict) -> str:
    """One line per regression: subject, metric, change with its CI, first bad and last good night, a git hint."""
    s = r.series
    if v.unit == "%":
        size = f"{v.change:+.1f} % (95 % CI {v.ci[0]:+.1f} to {v.ci[1]:+.1f} %)"
    else:
        size = (f"{v.latest:.2f}" + (f", {v.change:+.2f} points vs {v.baseline:.2f} (exact: same questions each "
                                     f"night)" if v.change is not None else ""))
    line = (f"REGRESSION {s.title}: {v.metric} {size}; {v.rule}; first bad night {_night_name(s, v.first_bad)}, "
            f"last good {_night_name(s, v.last_good)}")
    bad = s.nights[v.first_bad].commit if v.first_bad is not None else None
    good = s.nights[v.last_good].commit if v.last_good is not None else None
    if bad and good and bad != good:
        line += f"; suspects: git log {good[:12]}..{bad[:12]}"
    elif bad and good:
        line += "; same commit on both nights: the machine or its software changed, not the code"
    return line


def regression_lines(results: list[SeriesResult]) -> list[str]:
    return [regression_line(r, v) for r in results for v in r.flagged]


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if unit == "%" else f"{value:.2f}"


def table(results: list[SeriesResult]) -> str:
    """Every series and metric: latest value, baseline, change, CI, verdict (plain text, aligned)."""
    head = ("series / metric", "nights", "latest", "baseline", "change", "95% CI", "verdict")
    rows = []
    for r in results:
        rows.append((r.series.title, "", "", "", "", "", ""))
        for v in r.verdicts:
            unit = "%" if v.unit == "%" else " pt"
            digits = 1 if v.unit == "%" else 2
            change = "-" if v.change is None else f"{v.change:+.{digits}f}{unit}"
            ci = "-" if v.ci is None or v.unit != "%" else f"{v.ci[0]:+.1f} .. {v.ci[1]:+.1f}%"
            rows.append((f"  {v.metric}", str(v.nights), _fmt(v.latest, v.unit), _fmt(v.baseline, v.unit), change,
                         ci, f"{v.status}: {v.rule}" if v.rule else v.status))
    widths = [max(len(row[i]) for row in (head, *rows) if row[1]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths)).rstrip()]
    for row in rows:
        title_row = not row[1] and not row[2]
        lines.append(row[0] if title_row else "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def summary_line(results: list[SeriesResult]) -> str:
    verdicts = [v for r in results for v in r.verdicts]
    flagged = sum(v.flagged for v in verdicts)
    unjudged = sum(v.status == "not judged" for v in verdicts)
    return (f"{flagged} regression(s) in {len(results)} series; {len(verdicts) - unjudged} figures judged, "
            f"{unjudged} not judged")


def to_json(results: list[SeriesResult], settings: Settings) -> dict:
    out = {"schema": "albert-ixrt/history-check/1", "settings": asdict(settings), "exit_code": exit_code(results),
           "summary": summary_line(results), "regressions": regression_lines(results), "series": []}
    for r in results:
        s = r.series
        nights = [{"night": n.label, "commit": n.commit, "time": n.time, "seq_per_s": n.seq_per_s,
                   "accuracy": n.accuracy} for n in s.nights]
        verdicts = []
        for v in r.verdicts:
            d = asdict(v)
            d["first_bad"] = nights[v.first_bad] if v.first_bad is not None else None
            d["last_good"] = nights[v.last_good] if v.last_good is not None else None
            verdicts.append(d)
        out["series"].append({"id": s.id, "title": s.title, "key": s.key, "nights": nights, "verdicts": verdicts})
    return out
