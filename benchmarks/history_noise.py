#!/usr/bin/env python
"""How often `albert-ixrt history check` cries wolf, and how soon it sees a real slowdown, on simulated
nightly histories; beside pytest-benchmark's percentage rule and a plain Mann-Whitney on pooled rounds.

The simulated machine (seeded; every rule sees the same series):

- night-to-night noise: each night's speed is the machine's level times exp(N(0, s)), s = 1 .. 5 %
  (clocks, neighbours, thermals: what a night's own rounds cannot show);
- two-mode nights: each round runs in a 3 % slower mode with probability q, q drawn per night from
  U(0, 0.4) (a GPU whose clocks settle in one of two states);
- within-night noise: each round times exp(N(0, 1 %)); 10 rounds a night;
- a history of 20 quiet nights before the nights judged (the check's baseline takes the newest 14).

The rules, each judging the newest night as a nightly job would:

- history check: ``albert_ixrt.history_check.perf_verdict`` on each night's median round (the code the
  command runs, with its defaults: persistence 2 nights, floor 2 %, one-sided alpha config.HISTORY_ALPHA);
- pytest-benchmark ``--benchmark-compare-fail=median:5%`` against the previous night (its own
  ``PercentageRegressionCheck``, as ``--benchmark-compare`` would apply it);
- Mann-Whitney U (scipy, one-sided, p < 1 %) of the newest night's rounds against the pooled rounds
  of the 14 nights before it.

Reported per noise level: the false-alarm rate per night (a quiet history, the newest night judged),
the detection rate of a sustained 3, 5, 6 and 10 % slowdown by its second night (flagged on its
first or second night), of a 6 % one by its third night, and how often a one-night 6 % blip (the
night after is normal again) is flagged.  Beside them, the best any rule can do on two nights at
1 % false alarms when the baseline and the noise were known exactly (one-sided z-test of the two
nights' mean; the Gaussian bound), from the measured spread of the simulated night medians.

    python benchmarks/history_noise.py [--seed 20261202] [--quiet-trials 3000] [--trials 500] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from albert_ixrt.history_check import Settings, perf_verdict  # noqa: E402

NOISES = (0.01, 0.02, 0.03, 0.04, 0.05)
SHIFTS = (0.03, 0.05, 0.06, 0.10)
HISTORY = 20
ROUNDS = 10
WITHIN = 0.01
SLOW_MODE = 0.03
SLOW_SHARE_MAX = 0.4
MWU_ALPHA = 0.01
RULES = ("history check", "pytest-benchmark median:5%", "Mann-Whitney pooled rounds")


def simulate(rng, noise: float, nights: int, slow_from: int | None = None, shift: float = 0.0,
             blip_at: int | None = None) -> np.ndarray:
    """Round times (nights x ROUNDS, seconds per batch at speed 1); a slowdown of ``shift`` makes
    throughput (1 - shift) times the level from night ``slow_from`` on (or on night ``blip_at`` only)."""
    level = np.exp(rng.normal(0.0, noise, nights))
    slow = np.zeros(nights, dtype=bool)
    if slow_from is not None:
        slow[slow_from:] = True
    if blip_at is not None:
        slow[blip_at] = True
    level = level / np.where(slow, 1.0 - shift, 1.0)
    share = rng.uniform(0.0, SLOW_SHARE_MAX, nights)[:, None]
    mode = 1.0 + SLOW_MODE * (rng.random((nights, ROUNDS)) < share)
    return level[:, None] * mode * np.exp(rng.normal(0.0, WITHIN, (nights, ROUNDS)))


def flags(rounds: np.ndarray, upto: int, settings: Settings, pb_check) -> dict[str, bool]:
    """Each rule's verdict on night ``upto`` (index), from the nights up to it."""
    medians = np.median(rounds[:upto + 1], axis=1)
    ours = perf_verdict(list(1.0 / medians), settings).flagged
    pb = bool(pb_check.fails({"median": medians[upto]}, {"median": medians[upto - 1]}))
    pooled = rounds[max(0, upto - settings.baseline):upto].ravel()
    mwu = stats.mannwhitneyu(rounds[upto], pooled, alternative="greater").pvalue < MWU_ALPHA
    return dict(zip(RULES, (ours, pb, bool(mwu))))


def detection(rng, noise: float, trials: int, shift: float, nights: int, settings: Settings, pb_check):
    """Share of histories each rule flags on the first ``nights`` nights of a sustained slowdown."""
    hit = dict.fromkeys(RULES, 0)
    for _ in range(trials):
        rounds = simulate(rng, noise, HISTORY + nights, slow_from=HISTORY, shift=shift)
        seen: set[str] = set()
        for night in range(HISTORY, HISTORY + nights):
            for rule, flagged in flags(rounds, night, settings, pb_check).items():
                if flagged:
                    seen.add(rule)
            if len(seen) == len(RULES):
                break
        for rule in seen:
            hit[rule] += 1
    return {r: hit[r] / trials for r in RULES}


def false_alarms(rng, noise: float, trials: int, settings: Settings, pb_check):
    hit, spread = dict.fromkeys(RULES, 0), []
    for _ in range(trials):
        rounds = simulate(rng, noise, HISTORY + 1)
        spread.append(np.std(np.log(np.median(rounds, axis=1)), ddof=1))
        for rule, flagged in flags(rounds, HISTORY, settings, pb_check).items():
            hit[rule] += flagged
    return {r: hit[r] / trials for r in RULES}, float(np.mean(spread))


def blips(rng, noise: float, trials: int, settings: Settings, pb_check):
    """A 6 % one-night drop, the night after normal: flagged on either night."""
    hit = dict.fromkeys(RULES, 0)
    for _ in range(trials):
        rounds = simulate(rng, noise, HISTORY + 2, blip_at=HISTORY, shift=0.06)
        a, b = flags(rounds, HISTORY, settings, pb_check), flags(rounds, HISTORY + 1, settings, pb_check)
        for rule in RULES:
            hit[rule] += a[rule] or b[rule]
    return {r: hit[r] / trials for r in RULES}


def gaussian_bound(shift: float, spread: float, false_alarm: float = 0.01, nights: int = 2) -> float:
    """Power of the one-sided z-test of ``nights`` nights' mean with baseline and spread known exactly."""
    effect = -math.log1p(-shift) / (spread / math.sqrt(nights))
    return float(stats.norm.sf(stats.norm.isf(false_alarm) - effect))


def run(seed: int, quiet_trials: int, trials: int) -> dict:
    from pytest_benchmark.utils import parse_compare_fail

    pb_check = parse_compare_fail("median:5%")
    settings = Settings()
    rng = np.random.default_rng(seed)
    rows = []
    for noise in NOISES:
        fa, spread = false_alarms(rng, noise, quiet_trials, settings, pb_check)
        row = {"noise": noise, "night_spread": spread, "false_alarm": fa, "by_night_2": {}, "bound_by_night_2": {}}
        for shift in SHIFTS:
            row["by_night_2"][shift] = detection(rng, noise, trials, shift, 2, settings, pb_check)
            row["bound_by_night_2"][shift] = gaussian_bound(shift, spread)
        row["six_by_night_3"] = detection(rng, noise, trials, 0.06, 3, settings, pb_check)
        row["blip_6"] = blips(rng, noise, trials, settings, pb_check)
        rows.append(row)
        print(f"  noise {noise:.0%}: done", file=sys.stderr, flush=True)
    return {"seed": seed, "quiet_trials": quiet_trials, "trials": trials, "settings": settings.__dict__, "rows": rows}


def table(result: dict) -> str:
    head = ("noise", "rule", "false alarms/night", *[f"{s:.0%} by night 2" for s in SHIFTS], "6% by night 3",
            "6% one-night blip flagged")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["rows"]:
        for rule in RULES:
            cells = [f"{row['noise']:.0%}", rule, f"{row['false_alarm'][rule]:.2%}",
                     *[f"{row['by_night_2'][s][rule]:.1%}" for s in SHIFTS],
                     f"{row['six_by_night_3'][rule]:.1%}", f"{row['blip_6'][rule]:.1%}"]
            lines.append("| " + " | ".join(cells) + " |")
        bound = [f"{row['bound_by_night_2'][s]:.1%}" for s in SHIFTS]
        rule = f"Gaussian bound (1 % false alarms, spread {row['night_spread']:.2%} known)"
        lines.append(f"| {row['noise']:.0%} | {rule} | 1.00% | " + " | ".join(bound) + " | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--quiet-trials", type=int, default=3000, help="quiet histories per noise level")
    ap.add_argument("--trials", type=int, default=500, help="histories per slowdown and noise level")
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run(args.seed, args.quiet_trials, args.trials)
    result["wall_s"], result["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    print(table(result))
    print(f"\nseed {args.seed}, {args.quiet_trials} quiet histories and {args.trials} per slowdown per noise level; "
          f"{result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
