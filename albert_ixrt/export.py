"""PyTorch -> ONNX -> onnxsim -> ORT-fused -> FP16: the conversion pipeline, one cached stage at a time.

Stages and what each output is for:

========== ========================= ==========================================================
stage      file                      consumer
========== ========================= ==========================================================
exported   model.onnx                reference ONNX (TorchScript exporter, opset 17)
simplified model.sim.onnx            **TensorRT / ixRT input** for fp32 and weakly typed fp16
                                     engines: standard ONNX ops only, so the engine builder does
                                     its own fusions (see graph_checks)
fused      model.fused.onnx          onnxruntime: contrib ops Attention (all layers, see fusion.py),
                                     SkipLayerNormalization, FastGelu, EmbedLayerNormalization
                                     (not TensorRT-parser ops)
fp16       model.fused.fp16.onnx     onnxruntime FP16 (int64 inputs and fp32 outputs kept)
trt_fp16   model.sim.fp16.onnx       **strongly typed TensorRT / ixRT fp16 input**: the simplified
                                     graph in fp16 (standard ops; LayerNorm and Softmax fp32, see
                                     TRT_FP32_OPS), built from ``simplified``, not from ``fp16``
========== ========================= ==========================================================

Every stage is cached: its *cache key* hashes the content of its input (the model's
``source_sha256`` for the export, the previous stage's file otherwise), its settings and the
versions of the tools it uses.  A stage is reused when ``manifest.json`` records the same key
and the file on disk still has the recorded sha256.  Every file is written to a temporary name
and renamed (``fileio.atomic_path``), and the manifest says ``"complete": false`` until the
last stage is done, so an interrupted run never leaves something that looks finished.
"""
from __future__ import annotations

import datetime
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import expected_fused_ops
from .errors import InputFileError
from .fileio import atomic_path, sha256_file, sha256_json, sweep_partials, write_json_atomic
from .model import INPUT_NAMES, OUTPUT_NAMES, LoadedModel
from .fusion import FUSION_MODEL_TYPE, quiet_onnxruntime_logs
from .onnx_graph import (dedupe_initializers, drop_duplicate_nodes, fp16_share, fused_op_counts, graph_summary,
                         load_onnx, nonfinite_constants)

#: Bump when a stage's code changes in a way that changes its output (invalidates every cache).
PIPELINE_VERSION = 2
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1
DEFAULT_OPSET = 17

#: Why the TorchScript exporter: measured with torch 2.13, ``dynamo=False`` exports ALBERT
#: correctly at opset 17, the highest opset the TensorRT 8.6/10 and ixRT ONNX parsers target
#: with native LayerNormalization; the dynamo exporter needs opset >= 18 (at 17 it writes
#: ``Split(num_outputs=...)``, an opset-18 attribute, so the model is invalid) and onnxscript.
#: onnxruntime's BERT fusion patterns are also written against TorchScript-exported graphs.
EXPORTER = "torch.onnx.export(dynamo=False)"
EXPORTER_REASON = ("TorchScript exporter: valid at opset 17 (the dynamo exporter needs opset >= 18 and "
                   "onnxscript; at 17 it emits an invalid Split(num_outputs)); its graphs match "
                   "onnxruntime's BERT fusion patterns")

#: onnxsim passes we switch off, and why.  Both keep the simplified graph in the shape the
#: onnxruntime BERT fuser recognises (MatMul -> Add(bias) -> Reshape -> Transpose per Q/K/V):
#: * ``fuse_matmul_add_bias_into_gemm_batched`` (onnxsim 0.8 addition) rewrites every rank-3
#:   MatMul+Add into Reshape-Gemm-Reshape, after which no Attention fuses;
#: * ``eliminate_nop_with_unit`` deletes ``x + 0``: the random-weight twin's biases are all zero,
#:   so the bias Adds vanish and again no Attention fuses.  Real biases are non-zero, so for a real
#:   model the pass would do nothing; keeping it off makes the twin's graph the real model's graph.
SIMPLIFY_SKIPPED_PASSES = ("fuse_matmul_add_bias_into_gemm_batched", "eliminate_nop_with_unit")

#: onnxruntime transformer-optimizer settings: the pure-python fusions only (opt_level 0), so the
#: result does not depend on which ORT graph optimisations the installed build has.
FUSION_OPT_LEVEL = 0
#: What fuses ALBERT's attention (recorded in the stage settings, so the cache key changes with it).
ATTENTION_FUSION = "fusion.AlbertAttentionFusion (FusionAttention + SkipLayerNorm operand retry: layer 0)"

STAGE_FILES = {
    "exported": "model.onnx",
    "simplified": "model.sim.onnx",
    "fused": "model.fused.onnx",
    "fp16": "model.fused.fp16.onnx",
    "trt_fp16": "model.sim.fp16.onnx",
}
#: The stage each stage is built from, where it is not the one before it.
STAGE_SOURCE = {"trt_fp16": "simplified"}
#: The stages written only with ``fp16=True``.
FP16_STAGES = ("fp16", "trt_fp16")
#: The graph-check target of each stage's file (see graph_checks: TensorRT takes the simplified graph).
STAGE_CHECK_TARGET = {"exported": "tensorrt", "simplified": "tensorrt", "fused": "onnxruntime",
                      "fp16": "onnxruntime", "trt_fp16": "tensorrt"}
#: Which file each engine family starts from: ``engine_input.ENGINE_INPUTS`` (the one decision, in
#: a floor module), re-exported here for the manifest's ``engine_inputs``.
from .engine_input import ENGINE_INPUTS, engine_input  # noqa: E402,F401 (re-exported)

#: trt_fp16: what stays fp32, on top of onnxruntime's DEFAULT_OP_BLOCK_LIST (ops without fp16
#: kernels; none of them holds float data in ALBERT).  The field's evidence:
#: * LayerNormalization (its mean/variance over 768 values): TensorRT's builder itself warns that
#:   "layernorm after self-attention in FP16 may cause overflow" and advises FP32 layernorm at
#:   opset 17; onnxruntime's fp16 recipes (GPT-2 ``op_block_list=auto``, Stable Diffusion CUDA
#:   ``force_fp32_ops``) keep LayerNormalization / SkipLayerNormalization in fp32; PyTorch autocast
#:   runs layer_norm in fp32.
#: * Softmax, with the mask Add feeding it and the mask's Where: PyTorch autocast runs softmax in
#:   fp32; in fp16 ``scores + mask`` with the mask at the fp16 limit (-65504) overflows to -inf for
#:   any negative score, and a row whose attention_mask is all zero becomes all -inf -> NaN.  In
#:   fp32 the (clamped, finite) mask stays finite and so do such rows (tested).
#: Everything else (MatMuls, GELU, embeddings, residual Adds) computes in fp16.  Open on a GPU: a
#: fp32 Softmax between fp16 BMMs may keep a strongly typed TensorRT from its fused MHA kernel
#: (which accumulates softmax in fp32 by itself); measure before relaxing it.
TRT_FP32_OPS = ("LayerNormalization", "Softmax")
TRT_FP32_REASON = ("LayerNormalization and Softmax (+ its mask Add and Where) in fp32: TensorRT warns fp16 "
                   "LayerNorm may overflow; onnxruntime's fp16 recipes and torch autocast keep LayerNorm and "
                   "softmax fp32; an fp16 mask Add overflows to -inf (NaN on an all-padded row)")

#: Dummy export batch: 2 x 16, and the second row padded, so that no size-1 dimension is
#: specialised and the attention-mask path cannot be traced away as "all ones".
EXPORT_BATCH, EXPORT_SEQ, EXPORT_PAD = 2, 16, 5


# ---------------------------------------------------------------------------------------------
# Stage 1: torch -> ONNX
# ---------------------------------------------------------------------------------------------
def export_inputs():
    """The dummy feed traced by the exporter (int64, one row right-padded)."""
    import torch

    ids = torch.arange(EXPORT_BATCH * EXPORT_SEQ, dtype=torch.long).reshape(EXPORT_BATCH, EXPORT_SEQ) % 97 + 5
    mask = torch.ones_like(ids)
    mask[1, EXPORT_SEQ - EXPORT_PAD:] = 0
    types = torch.zeros_like(ids)
    types[:, EXPORT_SEQ // 2:] = 1
    return ids, mask, types


def exportable_module(model: LoadedModel):
    """The nn.Module / ScriptModule torch.onnx.export can take (a TorchScript model is wrapped)."""
    inner = getattr(model.module, "module", None)
    if model.kind == "torchscript" and inner is not None:
        return inner
    return model.module


def export_torch(model: LoadedModel, dest: Path, opset: int):
    """torch.onnx.export with dynamic batch and sequence axes on every input and output."""
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)}
    module = exportable_module(model)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The exporter warns that negative indices of aten::index would be wrong; HF's mask
        # builder indexes with aranges (never negative), and the equivalence tests cover it.
        warnings.filterwarnings("ignore", message=".*aten::index.*")
        # transformers' mask builder branches on ``kv_length - mask length > 0``, which is 0 for
        # every input without a KV cache, so the traced constant branch is right for all shapes.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"transformers\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # A TorchScript module's forward has no Python signature to match inputs against; our
        # inputs are positional and complete, so skipping that step is right.
        warnings.filterwarnings("ignore", message="no signature found for")
        try:
            torch.onnx.export(module, export_inputs(), str(dest), input_names=list(INPUT_NAMES),
                              output_names=list(OUTPUT_NAMES), dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True, dynamo=False)
        except Exception as exc:
            if model.kind == "torchscript":
                raise InputFileError(model.name, f"TorchScript model cannot be exported to ONNX: "
                                                 f"{str(exc).strip().splitlines()[0][:300]}") from None
            raise
    exported = load_onnx(dest)
    check_exported_io(exported, model)
    return exported


def check_exported_io(onnx_model, model: LoadedModel) -> None:
    got_in = [i.name for i in onnx_model.graph.input]
    got_out = [o.name for o in onnx_model.graph.output]
    if got_in != list(INPUT_NAMES) or got_out != list(OUTPUT_NAMES):
        raise InputFileError(model.name, f"exported graph has inputs {got_in} and outputs {got_out}; expected "
                                         f"{list(INPUT_NAMES)} -> {list(OUTPUT_NAMES)}")


# ---------------------------------------------------------------------------------------------
# Stage 2: onnxsim
# ---------------------------------------------------------------------------------------------
def simplify_onnx(src: Path, dest: Path):
    """onnxsim with dynamic axes kept (no input shapes are overwritten)."""
    import onnx
    import onnxsim

    simplified, ok = onnxsim.simplify(load_onnx(src), skipped_optimizers=list(SIMPLIFY_SKIPPED_PASSES))
    if not ok:
        raise RuntimeError(f"onnxsim could not validate the simplified model of {src}")
    onnx.save(simplified, str(dest))
    return simplified


# ---------------------------------------------------------------------------------------------
# Stage 3: onnxruntime transformer fusion, then deduplication of the copied shared weights
# ---------------------------------------------------------------------------------------------
def fuse_onnx(src: Path, dest: Path, num_heads: int, hidden_size: int, expected_ops: dict[str, int]):
    """Fuse with onnxruntime's BERT optimizer (all 12 attention layers: see fusion.py), check the
    fused-op counts the model config implies, then re-share identical initializers.

    ALBERT shares one layer's weights across all 12 layers; each fused Attention gets its own
    concatenated QKV weight, so fusion writes the same tensors 11 more times (44.6 MB -> 122 MB).
    """
    from .fusion import check_fusion, fuse_albert

    result = fuse_albert(load_onnx(src), num_heads, hidden_size)
    fused = result.model.model
    counts = fused_op_counts(fused)
    check_fusion(counts, expected_ops)
    size_before = fused.ByteSize()
    removed = dedupe_initializers(fused)
    _save(result.model, dest)
    extra = {"duplicate_initializers_removed": removed, "bytes_before_dedup": size_before,
             "bytes_after_dedup": fused.ByteSize(), "attention_operand_swaps": result.operand_swaps}
    note = fusion_note(counts, expected_ops)
    return fused, {**extra, "fusion_note": note} if note else extra


def fusion_note(fused_ops: dict[str, int], expected_ops: dict[str, int]) -> str | None:
    """What the fused stage says when no ALBERT config told it what to expect (a TorchScript model
    without a config.json beside it, a known-answer lookup table): whether anything fused at all."""
    if expected_ops:
        return None
    if not any(fused_ops.values()):
        return ("not applicable: no ALBERT config (no fused-op counts to expect) and onnxruntime's BERT fuser "
                "found nothing to fuse; the graph passes through unfused")
    return "no ALBERT config beside the model: the fused-op counts were not checked against one"


# ---------------------------------------------------------------------------------------------
# Stage 4: FP16
# ---------------------------------------------------------------------------------------------
def fp16_onnx(src: Path, dest: Path):
    """onnxruntime's float16 converter on the fused graph, keeping int64 inputs and fp32 outputs
    (``keep_io_types``), so every runner is fed and scored the same way."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    onnx_model = OnnxModel(load_onnx(src))
    with quiet_onnxruntime_logs():
        onnx_model.convert_float_to_float16(keep_io_types=True)
    half = onnx_model.model
    removed = dedupe_initializers(half)
    _save(onnx_model, dest)
    return half, {"duplicate_initializers_removed": removed}


# ---------------------------------------------------------------------------------------------
# Stage 5: FP16 for strongly typed TensorRT / ixRT (standard ONNX ops only)
# ---------------------------------------------------------------------------------------------
def trt_fp16_onnx(src: Path, dest: Path):
    """onnxruntime's float16 converter on the *simplified* graph (no contrib ops, so TensorRT's
    ONNX parser takes it): fp16 weights and compute, int64 inputs and fp32 outputs kept
    (``keep_io_types``), ``TRT_FP32_OPS`` and the softmax mask path in fp32, values beyond fp16
    clamped to +-65504 (the converter's ``max_finite_val``: no -inf mask constant), ALBERT's shared
    weights still one tensor each."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = load_onnx(src)
    blocked_nodes = softmax_mask_nodes(model)
    with quiet_onnxruntime_logs():
        half = convert_float_to_float16(model, keep_io_types=True,
                                        op_block_list=[*DEFAULT_OP_BLOCK_LIST, *TRT_FP32_OPS],
                                        node_block_list=blocked_nodes)
    duplicate_casts = drop_duplicate_nodes(half)  # onnxruntime 1.31's converter; none from 1.32 on
    removed = dedupe_initializers(half)
    with quiet_onnxruntime_logs():
        OnnxModel(half).topological_sort()  # the converter appends its Casts at the end
    onnx.save(half, str(dest))
    return half, {"duplicate_initializers_removed": removed, "duplicate_casts_removed": duplicate_casts,
                  "fp32_nodes": len(blocked_nodes), "nonfinite_constants": nonfinite_constants(half),
                  "fp16_share": fp16_share(half)}


def softmax_mask_nodes(model) -> list[str]:
    """Names of the nodes that add the attention mask before each Softmax: the Add feeding the
    Softmax and the Where that builds the additive mask (kept fp32 with the Softmax)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    names = []
    for node in model.graph.node:
        add = producer.get(node.input[0]) if node.op_type == "Softmax" else None
        if add is None or add.op_type != "Add":
            continue
        names.append(add.name)
        names += [producer[i].name for i in add.input if i in producer and producer[i].op_type == "Where"]
    return sorted(set(names))


def _save(onnx_model, dest: Path) -> None:
    """Save through onnxruntime's OnnxModel: it sorts the nodes topologically and declares the
    ``com.microsoft`` opset its contrib ops need (``onnx.save`` alone would leave it out)."""
    with quiet_onnxruntime_logs():
        onnx_model.save_model_to_file(str(dest))


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One cached step: ``build(input_path, tmp_dest) -> (ModelProto, extra dict)``."""

    name: str
    settings: dict
    tools: tuple[str, ...]
    build: Callable

    @property
    def source(self) -> str | None:
        """The stage whose file this one is built from (None: the stage before it)."""
        return STAGE_SOURCE.get(self.name)

    @property
    def filename(self) -> str:
        return STAGE_FILES[self.name]


def tool_versions() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import onnxsim
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "onnx": onnx.__version__, "onnxsim": onnxsim.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__}


def attention_heads(model: LoadedModel) -> tuple[int, int]:
    """(num_heads, hidden_size) for the fuser; 0 lets onnxruntime detect them (TorchScript models)."""
    return int(model.config.get("num_attention_heads") or 0), int(model.config.get("hidden_size") or 0)


def attn_implementation(model: LoadedModel) -> str | None:
    hf = getattr(model.module, "hf", None)
    return getattr(getattr(hf, "config", None), "_attn_implementation", None)


def pipeline(model: LoadedModel, opset: int, fp16: bool) -> list[Stage]:
    num_heads, hidden_size = attention_heads(model)
    expected = expected_fused_ops(model.config)
    stages = [
        Stage("exported", {"opset": opset, "exporter": EXPORTER, "attn_implementation": attn_implementation(model),
                           "dummy": [EXPORT_BATCH, EXPORT_SEQ, EXPORT_PAD]},
              ("torch", "transformers", "onnx"), lambda src, dest: (export_torch(model, dest, opset), {})),
        Stage("simplified", {"skipped_passes": list(SIMPLIFY_SKIPPED_PASSES)}, ("onnx", "onnxsim"),
              lambda src, dest: (simplify_onnx(src, dest), {})),
        Stage("fused", {"model_type": FUSION_MODEL_TYPE, "opt_level": FUSION_OPT_LEVEL, "num_heads": num_heads,
                        "hidden_size": hidden_size, "dedupe_initializers": True, "attention_fusion": ATTENTION_FUSION,
                        "expected_fused_ops": expected},
              ("onnx", "onnxruntime"), lambda src, dest: fuse_onnx(src, dest, num_heads, hidden_size, expected)),
    ]
    if fp16:
        stages.append(Stage("fp16", {"keep_io_types": True, "converter": "OnnxModel.convert_float_to_float16"},
                            ("onnx", "onnxruntime"), fp16_onnx))
        stages.append(Stage("trt_fp16", {"source": STAGE_SOURCE["trt_fp16"], "keep_io_types": True,
                                         "converter": "onnxruntime.transformers.float16.convert_float_to_float16",
                                         "fp32_ops": [*TRT_FP32_OPS, "softmax mask Add", "mask Where"],
                                         "fp32_reason": TRT_FP32_REASON},
                            ("onnx", "onnxruntime"), trt_fp16_onnx))
    return stages


def cache_key(stage: Stage, input_sha256: str, versions: dict) -> str:
    return sha256_json({"pipeline": PIPELINE_VERSION, "stage": stage.name, "input": input_sha256,
                        "settings": stage.settings, "tools": {t: versions[t] for t in stage.tools}})


def read_manifest(out_dir) -> dict | None:
    """The previous run's manifest, or None when absent or unreadable (then nothing is reused)."""
    import json

    path = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == MANIFEST_SCHEMA else None


def reusable(previous: dict | None, stage: Stage, key: str, dest: Path) -> dict | None:
    """The previous entry of ``stage`` when its key matches and its file is intact."""
    entry = ((previous or {}).get("stages") or {}).get(stage.name)
    if not entry or entry.get("cache_key") != key or not dest.is_file():
        return None
    if dest.stat().st_size != entry.get("size_bytes") or sha256_file(dest) != entry.get("sha256"):
        return None
    return entry


def run_stage(stage: Stage, src: Path | None, dest: Path, key: str, input_sha256: str, opset: int) -> dict:
    """Build ``stage`` into a temp file, describe it, then rename it into place."""
    start = time.perf_counter()
    with atomic_path(dest) as tmp:
        onnx_model, extra = stage.build(src, tmp)
        digest = sha256_file(tmp)
        size = tmp.stat().st_size
        seconds = time.perf_counter() - start
    return {"file": dest.name, "cache_key": key, "input_sha256": input_sha256, "settings": stage.settings,
            "sha256": digest, "size_bytes": size, "seconds": round(seconds, 3), "reused": False,
            **graph_summary(onnx_model), **extra, "graph_check": stage_check(stage, onnx_model, opset)}


def stage_check(stage: Stage, onnx_model, opset: int) -> dict:
    """graph_checks' verdict for the engine family that consumes this stage's file."""
    from .graph_checks import check_graph

    return check_graph(onnx_model, target=STAGE_CHECK_TARGET[stage.name], expected_opset=opset).to_dict()


def new_manifest(model: LoadedModel, opset: int, fp16: bool, versions: dict) -> dict:
    return {
        "schema": MANIFEST_SCHEMA, "complete": False, "pipeline_version": PIPELINE_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model.describe(), "source_sha256": model.source_sha256, "weights": model.weights,
        "opset": opset, "fp16": fp16, "exporter": EXPORTER, "exporter_reason": EXPORTER_REASON,
        "engine_inputs": {k: STAGE_FILES[v] for k, v in ENGINE_INPUTS.items() if fp16 or v not in FP16_STAGES},
        "tools": versions, "stages": {},
    }


def convert(model: LoadedModel, out_dir, *, opset: int = DEFAULT_OPSET, fp16: bool = True, progress: bool = True,
            force: bool = False) -> dict:
    """Run (or reuse) every stage into ``out_dir``; write and return ``manifest.json``'s content."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep_partials(out_dir)  # half-written stage files of a run that was killed (SIGKILL skips cleanup)
    versions = tool_versions()
    previous = None if force else read_manifest(out_dir)
    manifest = new_manifest(model, opset, fp16, versions)
    input_sha256, src = model.source_sha256, None
    stages = pipeline(model, opset, fp16)
    bar = tqdm(stages, desc="convert", unit="stage", disable=not progress, leave=False)
    for stage in bar:
        bar.set_postfix_str(stage.name)
        if stage.source:
            input_sha256, src = manifest["stages"][stage.source]["sha256"], out_dir / STAGE_FILES[stage.source]
        dest = out_dir / stage.filename
        key = cache_key(stage, input_sha256, versions)
        entry = reusable(previous, stage, key, dest)
        if entry is not None:
            entry = {**entry, "reused": True}
        else:
            entry = run_stage(stage, src, dest, key, input_sha256, opset)
        manifest["stages"][stage.name] = entry
        write_json_atomic(out_dir / MANIFEST_NAME, manifest)
        input_sha256, src = entry["sha256"], dest
    manifest["complete"] = True
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)
    return manifest


def stage_paths(manifest: dict, out_dir) -> dict[str, Path]:
    """Stage name -> file path, for the stages the manifest lists."""
    return {name: Path(out_dir) / entry["file"] for name, entry in manifest["stages"].items()}


def graph_problems(manifest: dict) -> list[str]:
    """Every stage's graph-check problems, for the engine family that consumes that stage."""
    lines = []
    for name, entry in manifest["stages"].items():
        check = entry.get("graph_check") or {}
        lines += [f"{name} ({check.get('target')}): {p}" for p in check.get("problems", [])]
    return lines


def stage_table(manifest: dict) -> str:
    """The readable per-stage summary the ``convert`` command prints."""
    rows = [("stage", "file", "nodes", "fused ops", "size MB", "seconds", "cached")]
    for name, e in manifest["stages"].items():
        fused = ", ".join(f"{k} {v}" for k, v in e["fused_ops"].items()) or "-"
        rows.append((name, e["file"], str(e["node_count"]), fused, f"{e['size_bytes'] / 1e6:.1f}",
                     f"{e['seconds']:.1f}", "yes" if e["reused"] else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"{name}: {e['fusion_note']}" for name, e in manifest["stages"].items() if e.get("fusion_note")]
    return "\n".join(lines)
