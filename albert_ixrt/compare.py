"""Numerical equivalence with torch fp32: every "X against torch fp32" of the suite (the conversion
stages, the runner under test or its engine, the outputs of timed calls, each layer's hidden states)
is judged by one rule, ``element_check``, on real SQuAD feeds.

The rule is Polygraphy's element-wise rule (``SimpleCompareFunc(check_error_stat="elemwise")``: a
value fails only when its absolute error exceeds ``atol`` *and* its error relative to the reference
exceeds ``rtol``; NaN fails), applied to the real (unpadded) token positions only, with the
tolerance of the candidate's precision (``config.TOLERANCES``).  It is written out here rather than
called through Polygraphy because Polygraphy has no mask and reports neither how many values missed
nor where, nor where a NaN or Inf sits; ``tests/unit/test_compare.py`` checks that Polygraphy's own
function gives the same verdict on the same values.  Polygraphy runs the runners (``Comparator.run``).

On top of the rule this module locates the worst errors (feed, row, position), counts NaN / Inf
with the first position holding one, and measures start/end argmax agreement, raw and *margin-aware*: a
random-weight model's logits are nearly flat, so an argmax flip can be a tie; a row counts as *decidable* only when its
fp32 top-1 margin exceeds the error a stage within tolerance may make (twice its precision's atol:
each of the two competing logits may move by that much).
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .config import STAGE_PRECISION, TOLERANCES, Tolerance  # the thresholds' one home
from .errors import AlbertIxrtError
from .model import INPUT_NAMES, OUTPUT_NAMES, LoadedModel

REFERENCE_NAME = "torch-fp32"


# ---------------------------------------------------------------------------------------------
# Feeds: a DataLoader-like iterable of real SQuAD batches
# ---------------------------------------------------------------------------------------------
class SquadFeeds:
    """Batches of SQuAD features as runner feeds, re-iterable (Polygraphy iterates it per runner).

    ``pad_to="longest"`` cuts each batch to its longest feature (what a bucketing server does);
    ``"full"`` keeps max_seq_length; an int pads or cuts every batch to that many columns.
    ``vocab_size`` folds token ids into a smaller vocabulary (``id % vocab_size``): only for toy
    models such as the tiny profile, whose 1,000-token vocabulary cannot take ALBERT's ids.
    """

    def __init__(self, features: Sequence, batch_size: int = 1, pad_to: str | int = "longest",
                 vocab_size: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.features = list(features)
        self.batch_size = batch_size
        self.pad_to = pad_to
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return (len(self.features) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[OrderedDict]:
        for i in range(0, len(self.features), self.batch_size):
            yield self.feed(self.features[i:i + self.batch_size])

    def feed(self, batch: Sequence) -> OrderedDict:
        width = self.width(batch)
        feed = OrderedDict((name, np.ascontiguousarray(np.stack([getattr(f, name)[:width] for f in batch]),
                                                       dtype=np.int64))
                           for name in INPUT_NAMES)
        if self.vocab_size:
            feed["input_ids"] %= self.vocab_size
        return feed

    def width(self, batch: Sequence) -> int:
        if self.pad_to == "longest":
            return max(f.length for f in batch)
        if self.pad_to == "full":
            return len(batch[0].input_ids)
        return int(self.pad_to)


class ChainedFeeds:
    """Several feed iterables as one (e.g. batch-1 unpadded feeds then a padded batch of 8)."""

    def __init__(self, *parts: Iterable):
        self.parts = parts

    def __iter__(self):
        for part in self.parts:
            yield from part

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)


# ---------------------------------------------------------------------------------------------
# Runners
# ---------------------------------------------------------------------------------------------
def qa_input_metadata():
    """The three int64 [batch, sequence] inputs every QA runner takes, as Polygraphy describes inputs."""
    from polygraphy.common import TensorMetadata

    meta = TensorMetadata()
    for input_name in INPUT_NAMES:
        meta.add(input_name, np.int64, ("batch", "sequence"))
    return meta


def qa_runner(runner, name: str):
    """A Polygraphy runner around one of this suite's runners (``infer_outputs`` or ``infer``): the
    torch fp32 reference, the runner under test, an engine.  Hand-written because Polygraphy's own
    ``PytRunner`` needs the output names up front and hands back whatever the callable returns."""
    from polygraphy.backend.base import BaseRunner

    class SuiteQARunner(BaseRunner):
        def __init__(self):
            super().__init__(name=name)

        def activate_impl(self):
            pass

        def get_input_metadata_impl(self):
            return qa_input_metadata()

        def infer_impl(self, feed_dict):
            began = time.perf_counter()
            if hasattr(runner, "infer_outputs"):
                out = runner.infer_outputs(feed_dict, OUTPUT_NAMES)
            else:
                out = dict(zip(OUTPUT_NAMES, runner.infer(feed_dict)))
            self.inference_time = time.perf_counter() - began  # Polygraphy sums it per runner
            return OrderedDict((k, np.asarray(out[k])) for k in OUTPUT_NAMES)

        def deactivate_impl(self):
            pass

    return SuiteQARunner()


def onnx_runner(path, name: str):
    """Polygraphy's onnxruntime runner on the CPU execution provider."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    return OnnxrtRunner(SessionFromOnnx(str(path), providers=["cpu"]), name=name)


# ---------------------------------------------------------------------------------------------
# The one rule
# ---------------------------------------------------------------------------------------------
@dataclass
class ElementCheck:
    """Polygraphy's element-wise rule over the real positions of every feed, with where it went wrong.

    A value misses when ``|got - ref| > atol`` and ``|got - ref| > rtol x |ref|`` (NaN or Inf counts
    as a miss); a check over no value at all is a failure, never a pass."""

    atol: float
    rtol: float
    checked: int = 0                                  # values compared (real positions x width)
    mismatched: int = 0
    worst_abs: float = 0.0
    worst_abs_at: tuple = (0, 0, 0)                   # (feed, row, position)
    worst_abs_values: tuple = (0.0, 0.0)              # (reference, candidate) there
    worst_rel: float = 0.0
    worst_rel_at: tuple = (0, 0, 0)
    worst_rel_values: tuple = (0.0, 0.0)
    nan: int = 0                                      # NaN values in the candidate
    inf: int = 0                                      # +-Inf values in the candidate
    first_nonfinite_at: tuple | None = None
    reference_nonfinite: int = 0                      # NaN/Inf in the reference itself

    @property
    def passed(self) -> bool:
        return self.checked > 0 and self.mismatched == 0

    def nonfinite_text(self, name: str = "candidate") -> str:
        """"NaN in 981 values, Inf in 0 (first at feed 0, row 0, position 3)", or "" when all finite."""
        parts = []
        if self.nan or self.inf:
            f, b, p = self.first_nonfinite_at or (0, 0, 0)
            parts.append(f"{name} holds NaN in {self.nan} and Inf in {self.inf} value(s) (first at feed {f}, row {b}, "
                         f"position {p})")
        if self.reference_nonfinite:
            parts.append(f"the torch fp32 reference holds {self.reference_nonfinite} NaN/Inf value(s)")
        return "; ".join(parts)

    def describe(self, what: str, name: str = "candidate") -> str:
        """The one sentence every check of this rule prints: verdict, counts, tolerance, worst errors, NaN/Inf."""
        if not self.checked:
            return f"FAIL: {what}: nothing compared (0 real positions): a check over no value is not a pass"
        f, b, p = self.worst_abs_at
        ref, got = self.worst_abs_values
        text = (f"{'PASS' if self.passed else 'FAIL'}: {what}: {self.mismatched}/{self.checked} real-position values "
                f"beyond atol {self.atol:g} and rtol {self.rtol:g}; worst absolute error {_num(self.worst_abs)} at "
                f"(feed {f}, row {b}, position {p}) (torch {ref:.6g}, {name} {got:.6g}); worst relative error "
                f"{_num(self.worst_rel)}")
        nonfinite = self.nonfinite_text(name)
        return text + (f"; {nonfinite}" if nonfinite else "")

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def _num(x: float) -> str:
    return "NaN/Inf" if not np.isfinite(x) else f"{x:.3g}"


def element_check(reference: Sequence, candidate: Sequence, masks: Sequence, tol: Tolerance) -> ElementCheck:
    """THE rule: ``candidate`` against ``reference`` (one array per feed, [batch, seq] or [batch, seq,
    width]) on the positions where ``masks`` (attention masks, [batch, seq]) are 1."""
    out = ElementCheck(tol.atol, tol.rtol)
    worst_abs = worst_rel = -1.0
    for f, (r, g, m) in enumerate(zip(reference, candidate, masks)):
        r, g = np.asarray(r, dtype=np.float64), np.asarray(g, dtype=np.float64)
        if r.shape != g.shape:
            raise AlbertIxrtError(f"feed {f}: candidate output shape {g.shape} differs from the reference's {r.shape}")
        real = np.asarray(m) > 0
        where = np.argwhere(real)                     # (row, position) of each real token
        rv, gv = r[real], g[real]                     # [n] or [n, width]
        absdiff = np.abs(gv - rv)
        bound = tol.rtol * np.abs(rv)
        miss = ~(absdiff <= tol.atol) & ~(absdiff <= bound)          # NaN compares False: a miss
        out.checked += int(absdiff.size)
        out.mismatched += int(np.count_nonzero(miss))
        bad = ~np.isfinite(gv)
        out.nan += int(np.count_nonzero(np.isnan(gv)))
        out.inf += int(np.count_nonzero(np.isinf(gv)))
        out.reference_nonfinite += int(np.count_nonzero(~np.isfinite(rv)))
        if out.first_nonfinite_at is None and bad.any():
            out.first_nonfinite_at = (f, *map(int, where[np.argwhere(bad)[0][0]]))
        if not absdiff.size:
            continue
        scored = np.where(np.isnan(absdiff), np.inf, absdiff)
        rel = scored / np.maximum(np.abs(rv), np.finfo(np.float64).tiny)
        i = np.unravel_index(int(np.argmax(scored)), scored.shape)
        if scored[i] > worst_abs:
            worst_abs = float(scored[i])
            out.worst_abs, out.worst_abs_at = worst_abs, (f, *map(int, where[i[0]]))
            out.worst_abs_values = (float(rv[i]), float(gv[i]))
        j = np.unravel_index(int(np.argmax(rel)), rel.shape)
        if rel[j] > worst_rel:
            worst_rel = float(rel[j])
            out.worst_rel, out.worst_rel_at = worst_rel, (f, *map(int, where[j[0]]))
            out.worst_rel_values = (float(rv[j]), float(gv[j]))
    return out


def tolerance_for(precision: str) -> Tolerance:
    """The tolerance a candidate of ``precision`` is judged with: its own, or fp16's for precisions
    without one (bf16, int8: reduced precision, judged as fp16 is)."""
    return TOLERANCES.get(precision, TOLERANCES["fp16"])


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class OutputComparison:
    """One output (start or end logits) of one candidate against the reference, over every feed."""

    stage: str
    precision: str
    output: str
    check: ElementCheck
    rows: int                                # sequences compared
    argmax_agree: int                        # rows whose argmax (over real tokens) matches
    error_bound: float                       # 2 x atol: the most two competing logits can close within tolerance
    decidable_rows: int                      # rows whose fp32 top-1 margin exceeds error_bound
    decidable_agree: int

    @property
    def passed(self) -> bool:
        return self.check.passed and self.decidable_agree == self.decidable_rows

    @property
    def worst_abs(self) -> float:
        return self.check.worst_abs

    @property
    def argmax_raw(self) -> float:
        return self.argmax_agree / self.rows if self.rows else 1.0

    @property
    def argmax_decidable(self) -> float:
        return self.decidable_agree / self.decidable_rows if self.decidable_rows else 1.0

    def message(self) -> str:
        """The verdict sentence: the rule's, plus the argmax flips that fail a row within tolerance."""
        text = self.check.describe(f"stage {self.stage!r} ({self.precision}) output {self.output!r}", self.stage)
        if self.decidable_agree != self.decidable_rows:
            text = text.replace("PASS: ", "FAIL: ", 1) + (
                f"; argmax differs on {self.decidable_rows - self.decidable_agree} of {self.decidable_rows} rows "
                f"whose fp32 margin exceeds {self.error_bound:.3g}")
        return text

    def failure_message(self) -> str:
        return self.message()

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "check"}
        d.update(self.check.as_dict())
        d.update(passed=self.passed, argmax_raw=self.argmax_raw, argmax_decidable=self.argmax_decidable)
        return d


TABLE_COLUMNS = ("stage", "prec", "output", "worst abs (feed,row,pos)", "worst rel", "atol/rtol", "NaN/Inf",
                 "argmax raw", "argmax decidable", "ok")
#: What each column of ``EquivalenceResult.table()`` means, for a reader who has not read this module.
TABLE_LEGEND = {
    "stage": "the ONNX stage (or the runner under test: runner / engine) run on the same feeds as torch fp32 "
             "(the reference)",
    "prec": "the stage's precision, whose tolerance judges it",
    "output": "start_logits or end_logits",
    "worst abs (feed,row,pos)": "largest |stage - torch| over every real (unpadded) logit, and where: feed number, "
                                "row in that batch, token position",
    "worst rel": "largest |stage - torch| / |torch| over the real logits",
    "atol/rtol": "the tolerance (config.TOLERANCES): a logit fails only when it misses both, |stage - torch| > atol "
                 "and > rtol x |torch| (Polygraphy's element-wise rule), on real positions only",
    "NaN/Inf": "real logits of the stage that are NaN or Inf (each one fails)",
    "argmax raw": "rows whose best answer position (over real tokens) is torch's, of all rows",
    "argmax decidable": "the same over the rows where torch's top-1 margin exceeds 2 x atol (within tolerance two "
                        "logits can close that much); a flip on any other row may be a tie",
    "ok": "yes when no real logit misses its tolerance and every decidable row agrees",
}


def table_legend() -> list[str]:
    """One line per column of the equivalence table."""
    return [f"{column}: {TABLE_LEGEND[column]}" for column in TABLE_COLUMNS]


@dataclass
class EquivalenceResult:
    reference: str
    weights: str
    feeds: list[list[int]]                   # [batch, seq] of each feed
    tolerances: dict = field(default_factory=lambda: dict(TOLERANCES))
    comparisons: list[OutputComparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def failures(self) -> list[str]:
        return [c.message() for c in self.comparisons if not c.passed]

    def get(self, stage: str, output: str) -> OutputComparison:
        for c in self.comparisons:
            if c.stage == stage and c.output == output:
                return c
        raise KeyError((stage, output))

    def of(self, stage: str) -> list[OutputComparison]:
        return [c for c in self.comparisons if c.stage == stage]

    def table(self) -> str:
        """Readable summary: one row per stage and output (its columns explained by ``TABLE_LEGEND``)."""
        head = TABLE_COLUMNS
        rows = [head]
        for c in self.comparisons:
            k = c.check
            rows.append((c.stage, c.precision, c.output, f"{k.worst_abs:.2e} {tuple(k.worst_abs_at)}",
                         f"{k.worst_rel:.2e}", f"{k.atol:g}/{k.rtol:g}", f"{k.nan + k.inf}" if k.nan + k.inf else "-",
                         f"{c.argmax_agree}/{c.rows}", f"{c.decidable_agree}/{c.decidable_rows}",
                         "yes" if c.passed else "NO"))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        title = (f"reference {self.reference} ({self.weights} weights), {len(self.feeds)} feeds "
                 f"{', '.join('x'.join(map(str, s)) for s in self.feeds)}, real positions only")
        return title + "\n" + "\n".join(lines)

    def to_dict(self) -> dict:
        return {"reference": self.reference, "weights": self.weights, "feeds": self.feeds, "passed": self.passed,
                "tolerances": {k: asdict(v) for k, v in self.tolerances.items()},
                "comparisons": [c.to_dict() for c in self.comparisons]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------
def compare_stages(reference, stage_files: dict, feeds: Iterable, *, precisions: dict | None = None,
                   candidates: dict | None = None, weights: str | None = None) -> EquivalenceResult:
    """Run the torch fp32 ``reference`` (a runner; a ``LoadedModel`` gets ``loaders``-style torch fp32 on
    the CPU) and every ONNX stage on ``feeds``; judge each stage against the reference by the one rule.

    ``stage_files`` maps stage name -> .onnx path (e.g. ``export.stage_paths(manifest, out)``).
    ``candidates``: more rows, name -> one of the suite's runners (the runner under test, an engine),
    each judged with the tolerance of its own ``precision``."""
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    if isinstance(reference, LoadedModel):
        from .runners import create_runner

        weights = weights or reference.weights
        reference = create_runner("torch", model=reference, precision="fp32", device="cpu")
    precisions = {**STAGE_PRECISION, **(precisions or {})}
    feed_list = list(feeds)
    rows = dict(stage_files)
    runners = [qa_runner(reference, REFERENCE_NAME)] + [onnx_runner(path, stage) for stage, path in stage_files.items()]
    for name, runner in (candidates or {}).items():
        runners.append(qa_runner(runner, name))
        rows[name] = None
        precisions[name] = runner.precision
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        run_results = Comparator.run(runners, data_loader=feed_list)
    result = EquivalenceResult(REFERENCE_NAME, weights or "unknown", [list(f["input_ids"].shape) for f in feed_list],
                               dict(TOLERANCES))
    masks = [f["attention_mask"] for f in feed_list]
    for stage in rows:
        tol = tolerance_for(precisions[stage])
        for output in OUTPUT_NAMES:
            ref = [it[output] for it in run_results[REFERENCE_NAME]]
            got = [it[output] for it in run_results[stage]]
            result.comparisons.append(judge_output(stage, precisions[stage], output, tol, ref, got, masks))
    return result


def judge_output(stage: str, precision: str, output: str, tol: Tolerance, ref: list, got: list,
                 masks: list) -> OutputComparison:
    """The rule's verdict for one output, with the argmax agreement on real tokens."""
    check = element_check(ref, got, masks, tol)
    # Judged against the tolerance, not the errors measured on these same rows (a bound taken from
    # them could never be exceeded): within tolerance each of two competing logits may move by atol.
    bound = 2.0 * tol.atol
    rows, agree, decidable, decidable_agree = argmax_agreement(ref, got, masks, bound)
    return OutputComparison(stage, precision, output, check, rows, agree, bound, decidable, decidable_agree)


def argmax_agreement(ref: list, got: list, masks: list, bound: float) -> tuple[int, int, int, int]:
    """(rows, rows agreeing, decidable rows, decidable rows agreeing); argmax over real tokens only
    (padding is never an answer), a row decidable when its reference top-1 margin exceeds ``bound``."""
    rows = agree = decidable = decidable_agree = 0
    for r, g, m in zip(ref, got, masks):
        valid = np.asarray(m, dtype=bool)
        r_masked = np.where(valid, np.asarray(r, dtype=np.float64), -np.inf)
        g_masked = np.where(valid, np.nan_to_num(np.asarray(g, dtype=np.float64), nan=-np.inf), -np.inf)
        same = np.argmax(r_masked, axis=1) == np.argmax(g_masked, axis=1)
        margin = top1_margin(r_masked)
        rows += len(same)
        agree += int(same.sum())
        sure = margin > bound
        decidable += int(sure.sum())
        decidable_agree += int((same & sure).sum())
    return rows, agree, decidable, decidable_agree


def calibrated_agreement(reference: list[list], candidate: list[list], masks: list, precision: str) -> dict:
    """Argmax agreement of a reduced-precision runner where the logits are too flat for the tolerance's bound
    (random weights: top-1 margins ~0.02 < 2 x fp16's atol): the bound is twice the worst error on the first
    half of the feeds (by the one rule), and agreement is counted on the other half, only on rows whose fp32
    margin exceeds it.  ``reference`` / ``candidate``: per output, one array per feed."""
    half = len(masks) // 2
    if half < 1 or half >= len(masks):
        raise ValueError(f"need calibration and evaluation feeds, got {len(masks)}")
    worst = max(element_check(r[:half], c[:half], masks[:half], tolerance_for(precision)).worst_abs
                for r, c in zip(reference, candidate))
    counts = [argmax_agreement(r[half:], c[half:], masks[half:], 2.0 * worst) for r, c in zip(reference, candidate)]
    rows, agree, eligible, eligible_agree = (sum(c[k] for c in counts) for k in range(4))
    evaluated = max(element_check(r[half:], c[half:], masks[half:], tolerance_for(precision)).worst_abs
                    for r, c in zip(reference, candidate))
    return {"rows": rows, "raw": agree / rows, "error_bound": 2.0 * worst, "eligible": eligible,
            "coverage": eligible / rows, "margin_aware": eligible_agree / eligible if eligible else float("nan"),
            "max_abs_error": max(worst, evaluated)}


def top1_margin(logits: np.ndarray) -> np.ndarray:
    """Per row, the gap between the largest and second-largest finite logit (inf for one token)."""
    top2 = -np.sort(-logits, axis=1)[:, :2]
    if top2.shape[1] < 2:
        return np.full(len(logits), np.inf)
    gap = top2[:, 0] - top2[:, 1]
    return np.where(np.isfinite(top2[:, 1]), gap, np.inf)


def compare_manifest(reference, manifest: dict, out_dir, feeds: Iterable, candidates: dict | None = None,
                     weights: str | None = None) -> EquivalenceResult:
    """Compare every stage listed in a conversion manifest (and ``candidates``, e.g. the runner under test)."""
    from .export import stage_paths

    return compare_stages(reference, stage_paths(manifest, Path(out_dir)), feeds, candidates=candidates,
                          weights=weights or manifest.get("weights"))
