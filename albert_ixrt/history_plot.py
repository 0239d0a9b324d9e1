"""The picture of a history: one panel per series, sequences/s per night with the baseline's noise band
and the flagged nights marked, the EM/F1 figures below.  Lines are labelled where they end (no legend
to hunt), and each panel is titled with its series key in words.

``panels`` computes what to draw (pure: tests read it); ``plot_history`` draws it with matplotlib (Agg).
"""
from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import atomic_path
from .history import ACCURACY_METRICS
from .history_check import NO_THRESHOLD_WEIGHTS, PERF_METRIC, THRESHOLDS, SeriesResult

#: The noise band: the baseline mean +- this many between-night standard deviations.
BAND_SIGMAS = 2.0
#: Tick labels shown along a panel's x axis at most (every k-th night beyond it).
MAX_TICKS = 16


@dataclass
class Panel:
    title: str
    ticks: list[str]                             # one per night: "date\ncommit"
    seq_per_s: list[float | None]
    verdict: str                                 # one line: the throughput verdict
    band: tuple[float, float, float] | None      # (low, centre, high) seq/s of the baseline
    flagged: list[int] = field(default_factory=list)        # nights drawn as flagged (throughput)
    first_bad: int | None = None
    accuracy: dict[str, list[float | None]] = field(default_factory=dict)
    accuracy_flagged: list[int] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    accuracy_verdict: str = ""


def _short(commit: str | None) -> str:
    return (commit or "?")[:7]


def _tick(label: str, commit: str | None) -> str:
    """``2026-11-03`` -> ``11-03`` (the year is in no doubt between neighbours), over the short commit."""
    day = label[5:] if len(label) == 10 and label[4] == "-" and label[7] == "-" else label
    return f"{day}\n{_short(commit)}"


def panel_for(result: SeriesResult) -> Panel:
    """What one series' panel shows, from its nights and verdicts."""
    s = result.series
    ticks = [_tick(n.label, n.commit) for n in s.nights]
    perf = next((v for v in result.verdicts if v.metric == PERF_METRIC), None)
    panel = Panel(textwrap.fill(s.title, 110), ticks, [n.seq_per_s for n in s.nights], "no throughput figures", None)
    if perf is not None:
        panel.verdict = f"seq/s: {perf.status}" + (f", {perf.change:+.1f} %" if perf.change is not None else "")
        panel.verdict += f" ({perf.rule})" if perf.rule else ""
        if perf.baseline is not None and perf.spread is not None:
            width = math.log1p(perf.spread / 100.0) * BAND_SIGMAS
            panel.band = (perf.baseline * math.exp(-width), perf.baseline, perf.baseline * math.exp(width))
        if perf.flagged:
            panel.flagged = list(range(perf.first_bad, len(s.nights)))
            panel.first_bad = perf.first_bad
    for metric, label in ACCURACY_METRICS.items():
        vals = [n.accuracy.get(metric) if n.accuracy else None for n in s.nights]
        if any(v is not None for v in vals):
            panel.accuracy[label] = vals
            if metric in THRESHOLDS and s.key.get("weights") not in NO_THRESHOLD_WEIGHTS:
                panel.thresholds[label] = THRESHOLDS[metric]
    acc = [v for v in result.verdicts if v.unit != "%"]
    for v in acc:
        if v.flagged and v.first_bad is not None:
            panel.accuracy_flagged = sorted(set(panel.accuracy_flagged) | set(range(v.first_bad, len(s.nights))))
    flagged = [f"{v.metric} ({v.rule})" for v in acc if v.flagged]
    panel.accuracy_verdict = ("EM/F1: REGRESSION: " + "; ".join(flagged) if flagged else
                              "EM/F1: " + "; ".join(sorted({f"{v.status}" + (f" ({v.rule})" if v.rule else "")
                                                            for v in acc})))
    return panel


def panels(results: list[SeriesResult]) -> list[Panel]:
    return [panel_for(r) for r in results]


def _xticks(ax, ticks: list[str]) -> None:
    step = max(1, math.ceil(len(ticks) / MAX_TICKS))
    shown = list(range(0, len(ticks), step))
    ax.set_xticks(shown)
    ax.set_xticklabels([ticks[i] for i in shown], fontsize=7)
    ax.set_xlim(-0.5, len(ticks) - 0.5 + max(2.5, len(ticks) * 0.25))   # room on the right for line labels


def _draw_perf(ax, p: Panel) -> None:
    xs = [i for i, v in enumerate(p.seq_per_s) if v]
    ys = [p.seq_per_s[i] for i in xs]
    if p.band:
        lo, centre, hi = p.band
        ax.axhspan(lo, hi, color="#9ecae1", alpha=0.35, lw=0)
        ax.axhline(centre, color="#3182bd", lw=1, ls="--")
        ax.text(len(p.ticks) - 0.3, centre, f"baseline {centre:.4g}\nband ±{BAND_SIGMAS:g}σ\nnight-to-night",
                va="center", fontsize=7, color="#3182bd",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    ax.plot(xs, ys, marker="o", color="black", lw=1.5, ms=4)
    if xs:
        ax.annotate(f"seq/s {ys[-1]:.4g}", (xs[-1], ys[-1]), xytext=(6, 8), textcoords="offset points", fontsize=8)
    bad = [i for i in p.flagged if p.seq_per_s[i]]
    if bad:
        ax.scatter(bad, [p.seq_per_s[i] for i in bad], s=90, facecolors="none", edgecolors="red", lw=2, zorder=5)
        _mark_start(ax, p.ticks, p.first_bad)
    ax.set_ylabel("sequences / s\n(median round)", fontsize=8)
    ax.set_title(f"{p.title}\n{p.verdict}", fontsize=9, loc="left", color="red" if p.flagged else "black")
    ax.grid(True, alpha=0.3)


def _mark_start(ax, ticks: list[str], first_bad: int) -> None:
    """A red dotted line between the last good night and the first bad one, labelled with both commits."""
    ax.axvline(first_bad - 0.5, color="red", ls=":", lw=1.2)
    good = ticks[first_bad - 1].split("\n")[-1] if first_bad > 0 else "none"
    ax.text(first_bad - 0.55, 0.97, f"last good {good} | first bad {ticks[first_bad].split(chr(10))[-1]}",
            transform=ax.get_xaxis_transform(), ha="right", va="top", fontsize=7, color="red",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})


def _draw_accuracy(ax, p: Panel) -> None:
    colours = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")
    for (label, vals), colour in zip(p.accuracy.items(), colours):
        xs = [i for i, v in enumerate(vals) if v is not None]
        ys = [vals[i] for i in xs]
        ax.plot(xs, ys, marker=".", color=colour, lw=1.2)
        ax.annotate(f"{label} {ys[-1]:.2f}", (xs[-1], ys[-1]), xytext=(6, 0), textcoords="offset points",
                    fontsize=7, color=colour, va="center")
        if label in p.thresholds:
            ax.axhline(p.thresholds[label], color=colour, lw=0.8, ls=":")
            ax.text(-0.4, p.thresholds[label], f"threshold {p.thresholds[label]}", fontsize=6, color=colour,
                    va="bottom")
        bad = [i for i in p.accuracy_flagged if vals[i] is not None]
        if bad:
            ax.scatter(bad, [vals[i] for i in bad], s=60, facecolors="none", edgecolors="red", lw=1.5, zorder=5)
    if p.accuracy_flagged:
        _mark_start(ax, p.ticks, p.accuracy_flagged[0])
    ax.set_ylabel("EM / F1", fontsize=8)
    ax.set_title(textwrap.fill(p.accuracy_verdict, 140), fontsize=8, loc="left",
                 color="red" if p.accuracy_flagged else "black")
    ax.grid(True, alpha=0.3)


def history_figure(items: list[Panel]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [r for p in items for r in ((3.0, 1.8) if p.accuracy else (3.0,))]
    fig = plt.figure(figsize=(12, sum(heights) * 1.25 + 0.5))
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.75)
    row = 0
    for p in items:
        ax = fig.add_subplot(grid[row])
        _draw_perf(ax, p)
        _xticks(ax, p.ticks)
        row += 1
        if p.accuracy:
            acc = fig.add_subplot(grid[row], sharex=ax)
            _draw_accuracy(acc, p)
            _xticks(acc, p.ticks)
            row += 1
    return fig


def plot_history(results: list[SeriesResult], dest: str | os.PathLike) -> Path:
    """Write the PNG atomically; return its path."""
    import matplotlib.pyplot as plt

    fig = history_figure(panels(results))
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=90, format="png", bbox_inches="tight")
    plt.close(fig)
    return dest
