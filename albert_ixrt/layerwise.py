"""Where did it drift?  Per-layer comparison of an ONNX graph (or a TensorRT engine built from it)
with torch fp32, naming the first ALBERT layer whose output is over tolerance.

Polygraphy can mark every tensor as an output; this module knows which tensors are ALBERT's layer
boundaries, so a failure reads "layer 7" instead of a list of anonymous tensor names.

Layering (pure first, thin last):

- ``locate_boundaries``: the boundary tensors of a graph, by pattern.  Every stage keeps one
  LayerNorm-like node per ALBERT LayerNorm, in topological order: the embeddings' LayerNorm, then
  per layer the attention LayerNorm and the full-layer LayerNorm.  Exported / simplified /
  trt_fp16 spell them ``LayerNormalization``; the fused and fp16 graphs ``EmbedLayerNormalization``
  (embeddings) and ``SkipLayerNormalization`` (the layers).  Output 0 of the second LayerNorm of
  layer i is Hugging Face's ``hidden_states[i]``.  "embeddings" is the embeddings' LayerNorm output
  (``embedding_size`` wide, before the 128 -> 768 mapping): the only embedding tensor that every
  graph has (the fused graph folds the mapping's input into EmbedLayerNormalization's output).
- ``expose_boundaries``: the graph with those tensors as extra outputs (Polygraphy's ModifyOutputs).
- ``torch_boundaries``: the reference, torch fp32 with ``output_hidden_states`` and a hook on
  ``albert.embeddings``.
- ``compare_boundaries`` / ``LayerwiseResult``: errors on real (unmasked) token positions only, the
  verdict per row with the tolerance ``layer_tolerance`` picks, the first row over it.
- ``layerwise``: the glue the command, the pipeline and the tests call.
"""
from __future__ import annotations

import tempfile
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .config import HIDDEN_STATE_TOLERANCES, TOLERANCES, Tolerance
from .compare import ElementCheck  # noqa: F401 (LayerRow's type)
from .errors import AlbertIxrtError, InputFileError
from .model import INPUT_NAMES, OUTPUT_NAMES, LoadedModel

#: Ops that are one ALBERT LayerNorm in some stage's graph (ONNX standard and onnxruntime contrib).
LAYER_NORM_OPS = ("LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization",
                  "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization")
EMBEDDINGS = "embeddings"
BACKENDS = ("onnxruntime", "tensorrt", "ixrt")


def layer_name(index: int) -> str:
    return f"layer {index}"


def row_names(num_layers: int) -> list[str]:
    """The rows of a layerwise table, in forward order."""
    return [EMBEDDINGS, *(layer_name(i) for i in range(1, num_layers + 1)), *OUTPUT_NAMES]


def model_layers(model: LoadedModel) -> int:
    """Transformer layers the forward pass runs (ALBERT shares weights, not layers)."""
    layers = int(model.config.get("num_hidden_layers") or 0) * int(model.config.get("inner_group_num") or 1)
    if not layers:
        raise InputFileError(model.name, "the model's config does not say its layer count (num_hidden_layers)")
    return layers


# ---------------------------------------------------------------------------------------------
# Graph side
# ---------------------------------------------------------------------------------------------
def layer_norm_nodes(onnx_model) -> list:
    """LayerNorm-like nodes in graph order (ONNX requires topological order)."""
    return [node for node in onnx_model.graph.node if node.op_type in LAYER_NORM_OPS]


def locate_boundaries(onnx_model, num_layers: int, path="<graph>") -> "OrderedDict[str, str]":
    """Row name -> tensor name of every boundary; refuses a graph whose LayerNorm count is not
    1 + 2 x num_layers (not an ALBERT of that depth, or a fusion this module does not know)."""
    norms = layer_norm_nodes(onnx_model)
    expected = 1 + 2 * num_layers
    if len(norms) != expected:
        found = ", ".join(sorted({n.op_type for n in norms})) or "none"
        raise InputFileError(path, f"has {len(norms)} LayerNorm-like nodes ({found}); an ALBERT of {num_layers} "
                                   f"layers has {expected} (embeddings + 2 per layer), so its layer boundaries "
                                   "cannot be located")
    boundaries = OrderedDict([(EMBEDDINGS, norms[0].output[0])])
    for i in range(1, num_layers + 1):
        boundaries[layer_name(i)] = norms[2 * i].output[0]  # the full-layer LayerNorm: hidden_states[i]
    for name in OUTPUT_NAMES:
        boundaries[name] = name
    return boundaries


def expose_boundaries(onnx_model, boundaries: dict):
    """A copy of the graph whose outputs are the logits plus every boundary tensor (types inferred
    by Polygraphy; the fused graphs' contrib ops defeat ONNX inference, so unknown types stay open)."""
    from polygraphy.backend.onnx import modify_outputs
    from polygraphy.logger import G_LOGGER

    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        return modify_outputs(onnx_model, outputs=list(dict.fromkeys(boundaries.values())), copy=True)


def engine_outputs(path: Path, feeds: Sequence, names: Sequence[str], precision: str, flavour: str) -> list[dict]:
    """Per feed, ``names`` -> array from a TensorRT / ixRT engine built from the exposed graph by the
    suite's own builder (``engine.TrtLibrary``: strongly or weakly typed as the module allows, so
    an fp16 request on an fp32 graph under strongly typed TensorRT is refused, not silently fp32).
    Building from the ONNX marks its extra graph outputs as engine outputs: one code path."""
    from .engine import ShapeProfile
    from .runners.trt_runner import TensorRTRunner

    shapes = [tuple(np.asarray(feed["input_ids"]).shape) for feed in feeds]
    profile = ShapeProfile.for_feeds([b for b, _ in shapes], max(s for _, s in shapes))
    runner = TensorRTRunner(path, precision=precision, flavour=flavour, profile=profile)
    try:
        return [runner.infer_outputs(feed, names) for feed in feeds]
    finally:
        runner.close()


def run_graph(onnx_model, boundaries: dict, feeds: Sequence, backend: str, precision: str) -> list[dict]:
    """Per feed, row name -> fp32 array, from ``onnx_model`` (already loaded) with the boundaries
    exposed, run by onnxruntime (CPU) or by a TensorRT / ixRT engine built from it."""
    import onnx

    if backend not in BACKENDS:
        raise AlbertIxrtError(f"layerwise backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    exposed = expose_boundaries(onnx_model, boundaries)
    names = list(dict.fromkeys(boundaries.values()))
    with tempfile.TemporaryDirectory(prefix="layerwise-") as tmp:
        exposed_path = Path(tmp) / "exposed.onnx"
        onnx.save(exposed, str(exposed_path))
        if backend == "onnxruntime":
            from polygraphy.logger import G_LOGGER

            from .compare import onnx_runner

            with G_LOGGER.verbosity(G_LOGGER.ERROR), onnx_runner(exposed_path, name="candidate") as runner:
                outputs = [runner.infer(feed) for feed in feeds]
        else:
            outputs = engine_outputs(exposed_path, feeds, names, precision, flavour=backend)
    return [OrderedDict((name, np.asarray(out[tensor], dtype=np.float32)) for name, tensor in boundaries.items())
            for out in outputs]


# ---------------------------------------------------------------------------------------------
# torch side (the reference)
# ---------------------------------------------------------------------------------------------
def hf_model(model: LoadedModel):
    """The Hugging Face AlbertForQuestionAnswering inside ``model``; a TorchScript model has no
    per-layer outputs to compare with, so it is refused."""
    inner = getattr(model.module, "hf", None)
    if model.kind == "torchscript" or inner is None:
        raise InputFileError(model.name, "a TorchScript model exposes no per-layer hidden states; layerwise "
                                         "needs a Hugging Face model (hub id, directory, config.json or 'tiny')")
    return inner


def torch_boundaries(model: LoadedModel, feeds: Sequence) -> list[dict]:
    """Per feed, row name -> fp32 array from torch: the embeddings' LayerNorm output (hook on
    ``albert.embeddings``), ``hidden_states[1..L]`` and the logits."""
    import torch

    hf = hf_model(model)
    captured = {}
    hook = hf.albert.embeddings.register_forward_hook(lambda _m, _i, out: captured.update(embeddings=out))
    results = []
    try:
        with torch.inference_mode():
            for feed in feeds:
                tensors = {k: torch.as_tensor(np.asarray(feed[k]), dtype=torch.long) for k in INPUT_NAMES}
                out = hf(**tensors, output_hidden_states=True, return_dict=True)
                row = OrderedDict([(EMBEDDINGS, captured["embeddings"])])
                for i, hidden in enumerate(out.hidden_states[1:], start=1):
                    row[layer_name(i)] = hidden
                row["start_logits"], row["end_logits"] = out.start_logits, out.end_logits
                results.append(OrderedDict((k, v.float().cpu().numpy().copy()) for k, v in row.items()))
    finally:
        hook.remove()
    return results


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------
def layer_tolerance(precision: str) -> dict[str, Tolerance]:
    """The tolerance of each kind of row: hidden states (``HIDDEN_STATE_TOLERANCES``) and logits
    (``TOLERANCES``, the equivalence gate's own)."""
    if precision not in TOLERANCES:
        raise AlbertIxrtError(f"no tolerance for precision {precision!r} (config.TOLERANCES has "
                              f"{', '.join(TOLERANCES)})")
    return {"hidden_states": HIDDEN_STATE_TOLERANCES[precision], "logits": TOLERANCES[precision]}


def row_tolerance(name: str, tolerances: dict[str, Tolerance]) -> Tolerance:
    return tolerances["logits" if name in OUTPUT_NAMES else "hidden_states"]


def real_positions(reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values at real (attention_mask 1) token positions, as float64: [tokens] or [tokens, width]."""
    real = np.asarray(mask, dtype=bool)
    return np.asarray(reference, np.float64)[real], np.asarray(candidate, np.float64)[real]


@dataclass
class LayerRow:
    name: str
    max_abs: float
    mean_abs: float
    cosine: float
    check: "ElementCheck"    # the one rule (compare.element_check) on real tokens

    @property
    def over_tolerance(self) -> bool:
        return not self.check.passed

    @property
    def nonfinite(self) -> int:
        return self.check.nan + self.check.inf

    def to_dict(self) -> dict:
        return {"name": self.name, "max_abs": self.max_abs, "mean_abs": self.mean_abs, "cosine": self.cosine,
                "mismatched": self.check.mismatched, "elements": self.check.checked, "atol": self.check.atol,
                "rtol": self.check.rtol, "nan": self.check.nan, "inf": self.check.inf,
                "first_nonfinite_at": self.check.first_nonfinite_at, "over_tolerance": self.over_tolerance}


def compare_row(name: str, references: Iterable, candidates: Iterable, masks: Iterable, tol: Tolerance) -> LayerRow:
    """One boundary over every feed, on real tokens: the one rule's verdict (``compare.element_check``:
    values beyond both atol and rtol x |reference|, NaN / Inf counted and located), the worst and mean
    absolute error and the cosine similarity of the flattened values."""
    from .compare import element_check

    references, candidates, masks = list(references), list(candidates), list(masks)
    check = element_check(references, candidates, masks, tol)
    pairs = [real_positions(r, c, m) for r, c, m in zip(references, candidates, masks)]
    ref = np.concatenate([r.ravel() for r, _ in pairs])
    got = np.concatenate([c.ravel() for _, c in pairs])
    if ref.size == 0:
        return LayerRow(name, 0.0, 0.0, float("nan"), check)
    diff = np.abs(got - ref)
    finite = np.isfinite(got).all()
    norms = np.linalg.norm(ref) * np.linalg.norm(got) if finite else 0.0
    cosine = float(ref @ got / norms) if norms > 0 else (float(np.array_equal(ref, got)) if finite else float("nan"))
    return LayerRow(name, float(np.nan_to_num(diff, nan=np.inf).max()), float(np.mean(diff)), cosine, check)


@dataclass
class LayerwiseResult:
    candidate: str           # the file (or stage) compared
    backend: str
    precision: str
    weights: str
    feeds: list[list[int]]
    tolerance: dict[str, Tolerance]
    rows: list[LayerRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def first_over_tolerance(self) -> str | None:
        return next((row.name for row in self.rows if row.over_tolerance), None)

    @property
    def first_nonfinite(self) -> str | None:
        return next((row.name for row in self.rows if row.nonfinite), None)

    @property
    def passed(self) -> bool:
        return self.first_over_tolerance is None

    def table(self) -> str:
        head = ("row", "max abs", "mean abs", "cosine", "over tol", "atol/rtol")
        lines = [head] + [(r.name, f"{r.max_abs:.3e}", f"{r.mean_abs:.3e}", f"{r.cosine:.8f}",
                           (f"{r.check.mismatched}/{r.check.checked}" if r.over_tolerance else "-")
                           + (f" ({r.nonfinite} NaN/Inf)" if r.nonfinite else ""), f"{r.check.atol:g}/{r.check.rtol:g}")
                          for r in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        verdict = f"first over tolerance: {self.first_over_tolerance or 'none'}"
        if self.first_nonfinite:
            verdict += f"; first layer with a non-finite output (NaN/Inf): {self.first_nonfinite}"
        return (f"{self.candidate} ({self.backend}, {self.precision}) vs torch fp32 ({self.weights} weights), "
                f"{len(self.feeds)} feeds, real tokens only\n" + "\n".join(text) + "\n" + verdict)

    def to_dict(self) -> dict:
        return {"candidate": self.candidate, "backend": self.backend, "precision": self.precision,
                "weights": self.weights, "feeds": self.feeds, "seconds": round(self.seconds, 3),
                "rows": [r.to_dict() for r in self.rows],
                "tolerance": {kind: asdict(t) for kind, t in self.tolerance.items()},
                "first_over_tolerance": self.first_over_tolerance, "first_nonfinite": self.first_nonfinite}


def compare_boundaries(reference: list[dict], candidate: list[dict], masks: list, tolerances: dict) -> list[LayerRow]:
    return [compare_row(name, [r[name] for r in reference], [c[name] for c in candidate], masks,
                        row_tolerance(name, tolerances))
            for name in reference[0]]


# ---------------------------------------------------------------------------------------------
# The glue
# ---------------------------------------------------------------------------------------------
def layerwise(model: LoadedModel, onnx_path, feeds: Iterable, *, precision: str = "fp32",
              backend: str = "onnxruntime", label: str | None = None, reference: list[dict] | None = None
              ) -> LayerwiseResult:
    """Compare the graph at ``onnx_path`` (run by ``backend``) with torch fp32, boundary by boundary.
    ``reference``: torch's boundaries for the same feeds, when already computed (several stages)."""
    import time

    from .onnx_graph import load_onnx

    began = time.perf_counter()
    tolerances = layer_tolerance(precision)
    onnx_model = load_onnx(onnx_path)  # parsed once: a fused albert-base graph is ~45 MB
    boundaries = locate_boundaries(onnx_model, model_layers(model), onnx_path)
    feed_list = list(feeds)
    if reference is None:
        reference = torch_boundaries(model, feed_list)
    candidate = run_graph(onnx_model, boundaries, feed_list, backend, precision)
    rows = compare_boundaries(reference, candidate, [f["attention_mask"] for f in feed_list], tolerances)
    return LayerwiseResult(str(label or onnx_path), backend, precision, model.weights,
                           [list(f["input_ids"].shape) for f in feed_list], tolerances, rows,
                           time.perf_counter() - began)


def first_layers_over(model: LoadedModel, stage_files: dict, feeds: Iterable, stages: Iterable[str],
                      precisions: dict | None = None) -> dict[str, str]:
    """For each failing stage of an equivalence check: "layer k" (the first row over tolerance),
    "none" when no row is, or why the layers could not be compared (torch runs once for all)."""
    from tqdm import tqdm

    from .config import STAGE_PRECISION

    precisions = {**STAGE_PRECISION, **(precisions or {})}
    feed_list, stages = list(feeds), list(stages)
    found, reference = {}, None
    for stage in tqdm(stages, desc="layerwise", unit="stage", leave=False, disable=len(stages) < 2):
        try:
            if reference is None:
                reference = torch_boundaries(model, feed_list)
            result = layerwise(model, stage_files[stage], feed_list, precision=precisions.get(stage, "fp32"),
                               reference=reference, label=stage)
        except AlbertIxrtError as exc:
            found[stage] = f"not compared ({exc})"
            continue
        found[stage] = (result.first_over_tolerance or "none") + (
            f" (non-finite output, NaN/Inf, first in {result.first_nonfinite})" if result.first_nonfinite else "")
    return found


def first_layer_lines(found: dict[str, str]) -> list[str]:
    """One line per stage, as failure messages and report.md say it."""
    return [f"stage {stage!r}: first layer over tolerance: {first}" for stage, first in found.items()]
