"""Numerical equivalence of the conversion stages: torch fp32 (the reference) against every ONNX
file the pipeline wrote, on real SQuAD feeds, through Polygraphy's comparison machinery.

Polygraphy runs the runners (``Comparator.run``) and judges each output element-wise
(``Comparator.compare_accuracy`` with ``SimpleCompareFunc``: an element fails only when it exceeds
both ``atol`` and ``rtol``).  On top of that this module locates the worst errors (feed, row,
position) and measures start/end argmax agreement, raw and *margin-aware*: a random-weight model's
logits are nearly flat, so an argmax flip can be a tie; a row counts as *decidable* only when its
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
#: The equivalence table's row of the engine itself (beside the ONNX stages).
ENGINE_ROW = "engine"


def qa_input_metadata():
    """The three int64 [batch, sequence] inputs every QA runner takes, as Polygraphy describes inputs."""
    from polygraphy.common import TensorMetadata

    meta = TensorMetadata()
    for input_name in INPUT_NAMES:
        meta.add(input_name, np.int64, ("batch", "sequence"))
    return meta


def torch_runner(model: LoadedModel, name: str = REFERENCE_NAME):
    """A Polygraphy runner around the torch module.  Written here rather than Polygraphy's own
    ``PytRunner`` because that one needs the output names up front and hands back whatever the
    callable returns; ours adapts the (start, end) tuple to named fp32 arrays."""
    from polygraphy.backend.base import BaseRunner

    class TorchQARunner(BaseRunner):
        def __init__(self):
            super().__init__(name=name)

        def activate_impl(self):
            import torch

            self._torch = torch
            self.module = model.module.eval() if hasattr(model.module, "eval") else model.module

        def get_input_metadata_impl(self):
            return qa_input_metadata()

        def infer_impl(self, feed_dict):
            torch = self._torch
            tensors = [torch.as_tensor(np.asarray(feed_dict[k]), dtype=torch.long) for k in INPUT_NAMES]
            began = time.perf_counter()
            with torch.inference_mode():
                start, end = self.module(*tensors)[:2]
            self.inference_time = time.perf_counter() - began  # Polygraphy sums it per runner
            return OrderedDict((out, t.float().cpu().numpy().copy()) for out, t in zip(OUTPUT_NAMES, (start, end)))

        def deactivate_impl(self):
            self.module = None

    return TorchQARunner()


def engine_runner(runner, name: str = "engine"):
    """A Polygraphy runner around one of this suite's runners (a TensorRT / ixRT engine): the engine
    row of the equivalence table judges the engine itself, not only the graph it was built from."""
    from polygraphy.backend.base import BaseRunner

    class EngineQARunner(BaseRunner):
        def __init__(self):
            super().__init__(name=name)

        def activate_impl(self):
            pass

        def get_input_metadata_impl(self):
            return qa_input_metadata()

        def infer_impl(self, feed_dict):
            began = time.perf_counter()
            out = runner.infer_outputs(feed_dict, OUTPUT_NAMES)
            self.inference_time = time.perf_counter() - began
            return OrderedDict((k, np.asarray(out[k], dtype=np.float32)) for k in OUTPUT_NAMES)

        def deactivate_impl(self):
            pass

    return EngineQARunner()


def onnx_runner(path, name: str):
    """Polygraphy's onnxruntime runner on the CPU execution provider."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    return OnnxrtRunner(SessionFromOnnx(str(path), providers=["cpu"]), name=name)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class OutputComparison:
    """One output (start or end logits) of one stage against the reference, over every feed."""

    stage: str
    precision: str
    output: str
    atol: float
    rtol: float
    passed_elementwise: bool                 # Polygraphy's verdict over every feed
    mismatched_elements: int                 # elements beyond both atol and rtol
    elements: int
    worst_abs: float
    worst_abs_at: tuple[int, int, int]       # (feed, row, position)
    worst_abs_values: tuple[float, float]    # (reference, stage) there
    worst_rel: float
    worst_rel_at: tuple[int, int, int]
    worst_rel_values: tuple[float, float]
    rows: int                                # sequences compared
    argmax_agree: int                        # rows whose argmax (over real tokens) matches
    error_bound: float                       # 2 x worst_abs: the most the top-1 gap can move
    decidable_rows: int                      # rows whose fp32 top-1 margin exceeds error_bound
    decidable_agree: int

    @property
    def passed(self) -> bool:
        return self.passed_elementwise and self.decidable_agree == self.decidable_rows

    @property
    def argmax_raw(self) -> float:
        return self.argmax_agree / self.rows if self.rows else 1.0

    @property
    def argmax_decidable(self) -> float:
        return self.decidable_agree / self.decidable_rows if self.decidable_rows else 1.0

    def failure_message(self) -> str:
        """Names the stage, the output, the worst errors and where they occurred."""
        f, b, p = self.worst_abs_at
        rf, rb, rp = self.worst_rel_at
        ref, got = self.worst_abs_values
        parts = [f"stage {self.stage!r} ({self.precision}) output {self.output!r}: "
                 f"{self.mismatched_elements}/{self.elements} elements beyond atol={self.atol:g} and "
                 f"rtol={self.rtol:g}; worst absolute error {self.worst_abs:.3g} at (feed {f}, batch {b}, "
                 f"position {p}) (torch {ref:.6g}, {self.stage} {got:.6g}); worst relative error "
                 f"{self.worst_rel:.3g} at (feed {rf}, batch {rb}, position {rp})"]
        if self.decidable_agree != self.decidable_rows:
            parts.append(f"; argmax differs on {self.decidable_rows - self.decidable_agree} of "
                         f"{self.decidable_rows} rows whose fp32 margin exceeds {self.error_bound:.3g}")
        return "".join(parts)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(passed=self.passed, argmax_raw=self.argmax_raw, argmax_decidable=self.argmax_decidable)
        return d


TABLE_COLUMNS = ("stage", "prec", "output", "worst abs (feed,row,pos)", "worst rel", "atol/rtol",
                 "argmax raw", "argmax decidable", "ok")
#: What each column of ``EquivalenceResult.table()`` means, for a reader who has not read this module.
TABLE_LEGEND = {
    "stage": "the ONNX stage run on the same feeds as torch fp32 (the reference)",
    "prec": "the stage's precision, whose tolerance judges it",
    "output": "start_logits or end_logits",
    "worst abs (feed,row,pos)": "largest |stage - torch| over every logit, and where: feed number, row in that "
                                "batch, token position",
    "worst rel": "largest |stage - torch| / |torch|",
    "atol/rtol": "the tolerance (config.TOLERANCES): a logit fails only when it misses both, |stage - torch| > atol "
                 "and > rtol x |torch|",
    "argmax raw": "rows whose best answer position (over real tokens) is torch's, of all rows",
    "argmax decidable": "the same over the rows where torch's top-1 margin exceeds 2 x atol (within tolerance two "
                        "logits can close that much); a flip on any other row may be a tie",
    "ok": "yes when no logit misses its tolerance and every decidable row agrees",
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
        return [c.failure_message() for c in self.comparisons if not c.passed]

    def get(self, stage: str, output: str) -> OutputComparison:
        for c in self.comparisons:
            if c.stage == stage and c.output == output:
                return c
        raise KeyError((stage, output))

    def table(self) -> str:
        """Readable summary: one row per stage and output (its columns explained by ``TABLE_LEGEND``)."""
        head = TABLE_COLUMNS
        rows = [head]
        for c in self.comparisons:
            rows.append((c.stage, c.precision, c.output, f"{c.worst_abs:.2e} {c.worst_abs_at}", f"{c.worst_rel:.2e}",
                         f"{c.atol:g}/{c.rtol:g}", f"{c.argmax_agree}/{c.rows}",
                         f"{c.decidable_agree}/{c.decidable_rows}", "yes" if c.passed else "NO"))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        title = (f"reference {self.reference} ({self.weights} weights), {len(self.feeds)} feeds "
                 f"{', '.join('x'.join(map(str, s)) for s in self.feeds)}")
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
def compare_stages(model: LoadedModel, stage_files: dict, feeds: Iterable, *,
                   tolerances: dict | None = None, precisions: dict | None = None,
                   engine=None) -> EquivalenceResult:
    """Run torch fp32 and every ONNX stage on ``feeds``; compare each stage with torch.

    ``stage_files`` maps stage name -> .onnx path (e.g. ``export.stage_paths(manifest, out)``).
    ``engine``: a TensorRT / ixRT runner, judged as one more row ("engine") with the tolerance of its
    precision (an fp32 engine within the fp32 tolerance).
    """
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    tolerances = tolerances or TOLERANCES
    precisions = {**STAGE_PRECISION, **(precisions or {})}
    feed_list = list(feeds)
    runners = [torch_runner(model)] + [onnx_runner(path, stage) for stage, path in stage_files.items()]
    stage_files = dict(stage_files)
    if engine is not None:
        runners.append(engine_runner(engine, ENGINE_ROW))
        stage_files[ENGINE_ROW] = None
        precisions[ENGINE_ROW] = engine.precision
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        run_results = Comparator.run(runners, data_loader=feed_list)
    result = EquivalenceResult(REFERENCE_NAME, model.weights, [list(f["input_ids"].shape) for f in feed_list],
                               dict(tolerances))
    for index, stage in enumerate(stage_files, start=1):
        tol = tolerances[precisions[stage]]
        verdicts = polygraphy_verdicts(run_results, index, tol)
        for output in OUTPUT_NAMES:
            ref = [it[output] for it in run_results[REFERENCE_NAME]]
            got = [it[output] for it in run_results[stage]]
            result.comparisons.append(
                measure(stage, precisions[stage], output, tol, ref, got, feed_list, verdicts[output]))
    return result


def polygraphy_verdicts(run_results, index: int, tol: Tolerance) -> dict[str, bool]:
    """Polygraphy's element-wise verdict, per output, for runner ``index`` against the reference
    (reference second: Polygraphy's relative error is relative to the second runner)."""
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    compare_func = simple_compare_func(tol)
    with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
        accuracy = Comparator.compare_accuracy(run_results, comparisons=[(index, 0)], compare_func=compare_func)
    pair_results = next(iter(accuracy[0].values()))
    return {out: all(bool(iteration[out]) for iteration in pair_results) for out in OUTPUT_NAMES}


def simple_compare_func(tol: Tolerance):
    """Polygraphy's element-wise atol/rtol check (``CompareFunc.simple`` before Polygraphy 0.53,
    which deprecates that name in favour of the same ``SimpleCompareFunc``)."""
    try:
        from polygraphy.comparator import SimpleCompareFunc
    except ImportError:
        from polygraphy.comparator import CompareFunc

        return CompareFunc.simple(atol=tol.atol, rtol=tol.rtol, check_shapes=True)
    return SimpleCompareFunc(atol=tol.atol, rtol=tol.rtol, check_error_stat="elemwise", check_shapes=True)


def measure(stage: str, precision: str, output: str, tol: Tolerance, ref: list, got: list, feeds: list,
            passed_elementwise: bool) -> OutputComparison:
    """Worst errors with their location, mismatch count and argmax agreement over every feed."""
    worst_abs = worst_rel = -1.0
    abs_at = rel_at = (0, 0, 0)
    abs_vals = rel_vals = (0.0, 0.0)
    mismatched = elements = 0
    for f, (r, g) in enumerate(zip(ref, got)):
        r = np.asarray(r, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        absdiff = np.abs(g - r)
        reldiff = absdiff / np.maximum(np.abs(r), np.finfo(np.float64).tiny)
        mismatched += int(np.count_nonzero((absdiff > tol.atol) & (reldiff > tol.rtol)))
        elements += absdiff.size
        i = np.unravel_index(int(np.argmax(absdiff)), absdiff.shape)
        if absdiff[i] > worst_abs:
            worst_abs, abs_at, abs_vals = float(absdiff[i]), (f, int(i[0]), int(i[1])), (float(r[i]), float(g[i]))
        j = np.unravel_index(int(np.argmax(reldiff)), reldiff.shape)
        if reldiff[j] > worst_rel:
            worst_rel, rel_at, rel_vals = float(reldiff[j]), (f, int(j[0]), int(j[1])), (float(r[j]), float(g[j]))
    # Judged against the tolerance, not the errors measured on these same rows (a bound taken from
    # them could never be exceeded): within tolerance each of two competing logits may move by atol.
    bound = 2.0 * tol.atol
    rows, agree, decidable, decidable_agree = argmax_agreement(ref, got, [f["attention_mask"] for f in feeds], bound)
    return OutputComparison(stage, precision, output, tol.atol, tol.rtol, passed_elementwise, mismatched, elements,
                            worst_abs, abs_at, abs_vals, worst_rel, rel_at, rel_vals, rows, agree, bound, decidable,
                            decidable_agree)


def argmax_agreement(ref: list, got: list, masks: list, bound: float) -> tuple[int, int, int, int]:
    """(rows, rows agreeing, decidable rows, decidable rows agreeing); argmax over real tokens only
    (padding is never an answer), a row decidable when its reference top-1 margin exceeds ``bound``."""
    rows = agree = decidable = decidable_agree = 0
    for r, g, m in zip(ref, got, masks):
        valid = np.asarray(m, dtype=bool)
        r_masked = np.where(valid, r, -np.inf)
        g_masked = np.where(valid, g, -np.inf)
        same = np.argmax(r_masked, axis=1) == np.argmax(g_masked, axis=1)
        margin = top1_margin(r_masked)
        rows += len(same)
        agree += int(same.sum())
        sure = margin > bound
        decidable += int(sure.sum())
        decidable_agree += int((same & sure).sum())
    return rows, agree, decidable, decidable_agree


def top1_margin(logits: np.ndarray) -> np.ndarray:
    """Per row, the gap between the largest and second-largest finite logit (inf for one token)."""
    top2 = -np.sort(-logits, axis=1)[:, :2]
    if top2.shape[1] < 2:
        return np.full(len(logits), np.inf)
    gap = top2[:, 0] - top2[:, 1]
    return np.where(np.isfinite(top2[:, 1]), gap, np.inf)


def compare_manifest(model: LoadedModel, manifest: dict, out_dir, feeds: Iterable, engine=None) -> EquivalenceResult:
    """Compare every stage listed in a conversion manifest (and ``engine``, a TensorRT / ixRT runner,
    as the "engine" row)."""
    from .export import stage_paths

    return compare_stages(model, stage_paths(manifest, Path(out_dir)), feeds, engine=engine)
