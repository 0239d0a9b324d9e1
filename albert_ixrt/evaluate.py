"""Evaluation: features -> runner -> post-processing -> metrics, with length bucketing.

Real SQuAD dev features average ~182 tokens (median 167) of the 384 they are padded to, so
``bucket=True`` sorts the features by length and pads each batch only to its longest member
(rounded up to ``pad_multiple``).  Each sequence attends to its own tokens only, so bucketing
changes the work, not the answers (tests check the predictions are identical).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DEFAULT_SQUAD, SquadSettings
from .errors import AlbertIxrtError
from .fileio import write_json_atomic
from .runners.base import Runner
from .squad.data import Example
from .squad.features import Feature, stack_batch
from .squad.metrics import SquadScores, score
from .squad.postprocess import predictions_from_logits


def plan_batches(features: Sequence[Feature], batch_size: int, bucket: bool = True,
                 pad_multiple: int = 16) -> list[tuple[list[int], int]]:
    """Batches as (feature indices, padded length).  Without bucketing: file order, full length."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    full = len(features[0].input_ids) if features else 0
    order = sorted(range(len(features)), key=lambda i: features[i].length) if bucket else list(range(len(features)))
    plan = []
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        if bucket:
            longest = max(features[i].length for i in idx)
            seq = min(full, -(-longest // pad_multiple) * pad_multiple)
        else:
            seq = full
        plan.append((idx, seq))
    return plan


class NonFiniteLogits(AlbertIxrtError):
    """A runner returned NaN or Inf logits on real tokens: nothing is scored from them."""


def run_features(runner: Runner, features: Sequence[Feature], batch_size: int = 8, bucket: bool = True,
                 progress=True, pad_multiple: int = 16, on_batch=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Logits of every feature, in the features' order (each cut back to its padded length).

    ``progress``: True for a bar on stderr, a stream for a bar there, False for none.  ``on_batch(done,
    total, seconds)`` is called after each batch (the session's time estimate).  Non-finite logits on
    real tokens are counted over the whole run and refused at the end (``NonFiniteLogits``, one line)."""
    plan = plan_batches(features, batch_size, bucket, pad_multiple)
    logits: list = [None] * len(features)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(features), desc=f"infer {runner.name}/{runner.precision}", unit="feat",
                   **({} if progress is True else {"file": progress}))
    nonfinite, first = 0, None
    began = time.perf_counter()
    for done, (idx, seq) in enumerate(plan, start=1):
        start, end = runner.infer(stack_batch([features[i] for i in idx], pad_to=seq))
        full = len(features[idx[0]].input_ids)
        for row, i in enumerate(idx):
            length = min(features[i].length, seq)
            bad = int(np.count_nonzero(~np.isfinite(start[row, :length]))
                      + np.count_nonzero(~np.isfinite(end[row, :length])))
            if bad and first is None:
                first = i
            nonfinite += bad
            s = np.full(full, -1e4, dtype=np.float32)
            e = np.full(full, -1e4, dtype=np.float32)
            s[:seq], e[:seq] = start[row], end[row]
            logits[i] = (s, e)
        if bar is not None:
            bar.update(len(idx))
        if on_batch is not None:
            on_batch(done, len(plan), time.perf_counter() - began)
    if bar is not None:
        bar.close()
    if nonfinite:
        raise NonFiniteLogits(f"{runner.name} {runner.precision} returned {nonfinite} non-finite (NaN/Inf) logits on "
                              f"real tokens, first in feature {first}: refusing to score them (an fp16 overflow? "
                              "`albert-ixrt layerwise` names the first layer whose output is non-finite)")
    return logits


@dataclass
class EvalResult:
    predictions: dict[str, str]
    scores: SquadScores
    seconds: float
    features: int
    runner: dict
    model: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    #: seconds per phase: compile_s (compiled runners, before inference), inference_s, postprocess_s,
    #: and features_s when the caller built the features (the evaluate command)
    timings: dict = field(default_factory=dict)

    @property
    def features_per_second(self) -> float:
        return self.features / self.seconds if self.seconds else float("nan")

    def metrics_json(self) -> dict:
        out = {"scores": self.scores.as_dict(), "runner": self.runner, "model": self.model,
               "settings": self.settings, "seconds": round(self.seconds, 3),
               "features_per_second": round(self.features_per_second, 3), "timings": self.timings}
        if self.model.get("weights") == "random":
            out["warning"] = "random weights: these scores say nothing about the model's accuracy"
        elif self.model.get("weights") == "known-answer":
            out["warning"] = "known-answer model: these scores test the accuracy gate, not any model's accuracy"
        return out

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        out_dir = Path(out_dir)
        pred = write_json_atomic(out_dir / "predictions.json", self.predictions)
        met = write_json_atomic(out_dir / "metrics.json", self.metrics_json())
        return pred, met


def evaluate(runner: Runner, examples: Sequence[Example], features: Sequence[Feature], *, batch_size: int = 8,
             bucket: bool = True, settings: SquadSettings = DEFAULT_SQUAD, progress=True,
             model_info: dict | None = None, on_batch=None) -> EvalResult:
    timings = {}
    if getattr(runner, "compiled", False) and hasattr(runner, "warmup"):
        # Compile every shape the plan needs first, so compile time is reported apart from inference.
        shapes = {(len(idx), seq) for idx, seq in plan_batches(features, batch_size, bucket)}
        timings["compile_s"] = round(runner.warmup(runner.shapes_for(shapes)), 3)
        timings["compiled_shapes"] = len(runner.shapes_for(shapes))
    t0 = time.perf_counter()
    logits = run_features(runner, features, batch_size, bucket, progress, on_batch=on_batch)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    predictions = predictions_from_logits(examples, features, logits, settings)
    scores = score(examples, predictions, num_features=len(features))
    timings.update(inference_s=round(seconds, 3), postprocess_s=round(time.perf_counter() - t1, 3))
    return EvalResult(predictions, scores, seconds, len(features), runner.describe(), model_info or {},
                      {**settings.__dict__, "batch_size": batch_size, "bucket": bucket}, timings)
