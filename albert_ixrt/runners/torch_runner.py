"""The torch reference runner: eager fp32 / fp16 / bf16 on CPU or CUDA, optionally torch.compile.

fp32 is the reference every other runner is compared with.  On CPU, fp16 and bf16 run under
autocast (matmuls in reduced precision, reductions in fp32); on CUDA the weights are cast.
Every sequence uses only its own attention mask, so a result never depends on the batch size
or on the other sequences of a batch (tests/unit/test_torch_runner.py checks it).

Inference runs SDPA attention (``torch.nn.functional.scaled_dot_product_attention``: fused
flash / memory-efficient kernels on a GPU, 1.45x the eager attention there, measured on an H200).  The
eager-attention model stays what ``load_model`` returns, because that is what exports to the
ONNX pattern onnxruntime fuses; the runner works on its own copy of the module.

``compile=True`` wraps the module in ``torch.compile`` (mode ``reduce-overhead`` = CUDA graphs
on a GPU) with static shapes, and pads every batch up to a shape bucket (``config``:
``COMPILE_BATCH_BUCKETS``, ``COMPILE_SEQ_MULTIPLE``) so graphs are reused and recompiles are
bounded.  The first call of each bucket compiles; its time is kept apart (``compile_seconds``).
"""
from __future__ import annotations

import contextlib
import copy
import time

import numpy as np

from ..config import COMPILE_BATCH_BUCKETS, COMPILE_MODES, COMPILE_SEQ_MULTIPLE
from ..errors import BackendUnavailable
from .base import Feed, Runner, check_feed, register

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
ATTENTIONS = ("sdpa", "eager")


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable("torch", f"device {device!r} requested but torch sees no CUDA GPU")
    return device


def bucket_batch(batch: int) -> int:
    """The compiled batch size that serves ``batch`` rows (config.COMPILE_BATCH_BUCKETS)."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    for b in COMPILE_BATCH_BUCKETS:
        if batch <= b:
            return b
    top = COMPILE_BATCH_BUCKETS[-1]
    return -(-batch // top) * top


def bucket_seq(seq: int) -> int:
    """The compiled sequence length that serves ``seq`` tokens (next multiple of COMPILE_SEQ_MULTIPLE)."""
    if seq < 1:
        raise ValueError(f"sequence length must be >= 1, got {seq}")
    return -(-seq // COMPILE_SEQ_MULTIPLE) * COMPILE_SEQ_MULTIPLE


def bucket_shape(batch: int, seq: int) -> tuple[int, int]:
    return bucket_batch(batch), bucket_seq(seq)


def use_attention(module, attention: str):
    """A copy of a Hugging Face QA wrapper whose attention runs ``attention`` ("sdpa" / "eager");
    the weights are copied too, so the caller's (export) model is never changed.  Modules that are
    not Hugging Face models (TorchScript) are returned as they are."""
    if attention not in ATTENTIONS:
        raise BackendUnavailable("torch", f"attention {attention!r} not supported ({', '.join(ATTENTIONS)})")
    hf = getattr(module, "hf", None)
    if hf is None or not hasattr(hf, "config"):
        return module, "as loaded"
    module = copy.deepcopy(module)
    if hasattr(module.hf, "set_attn_implementation"):
        module.hf.set_attn_implementation(attention)
    else:  # older transformers: the forward pass reads the config field
        module.hf.config._attn_implementation = attention
    return module, attention


def _raise_recompile_limit(torch, graphs: int) -> None:
    """Dynamo stops recompiling a function after a limit (8 by default) and falls back to eager;
    allow one graph per shape bucket."""
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name) and getattr(cfg, name) < graphs:
            setattr(cfg, name, graphs)


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model, precision: str = "fp32", device: str = "auto", compile: bool = False,
                 compile_mode: str | None = None, attention: str = "sdpa", compile_backend: str = "inductor"):
        import torch

        if precision not in _DTYPES:
            raise BackendUnavailable("torch", f"precision {precision!r} not supported (fp32, fp16, bf16)")
        if compile_mode is not None and compile_mode not in COMPILE_MODES:
            raise BackendUnavailable("torch", f"compile mode {compile_mode!r} not supported "
                                              f"({', '.join(COMPILE_MODES)})")
        self.model_info = model if hasattr(model, "module") else None
        module = model.module if self.model_info is not None else model
        self.precision = precision
        self.device = resolve_device(device)
        self.dtype = getattr(torch, _DTYPES[precision])
        self.compiled = compile
        module, self.attention = use_attention(module, attention)
        module = module.eval().to(self.device)
        if self.device != "cpu" and precision != "fp32":
            module = module.to(self.dtype)
        self.compile_mode = None
        self.compile_seconds = 0.0
        self._shapes_seen: set[tuple[int, int]] = set()
        if compile:
            mode = compile_mode or ("reduce-overhead" if self.device != "cpu" else "default")
            _raise_recompile_limit(torch, len(COMPILE_BATCH_BUCKETS) * (512 // COMPILE_SEQ_MULTIPLE))
            # compile_backend "eager" (dynamo tracing, no code generation) lets tests check the bucketing
            # and recompile accounting in milliseconds; real runs use inductor.
            kw = {"mode": mode} if compile_backend == "inductor" else {}
            module = torch.compile(module, backend=compile_backend, dynamic=False, **kw)
            self.compile_mode = mode
        self.module = module
        self._torch = torch

    @property
    def uses_cuda_graphs(self) -> bool:
        return self.compiled and self.device != "cpu" and self.compile_mode in ("reduce-overhead", "max-autotune")

    def _autocast(self):
        if self.precision == "fp32" or self.device != "cpu":
            return contextlib.nullcontext()
        return self._torch.autocast("cpu", dtype=self.dtype)

    def to_device(self, feed: Feed):
        """Host -> device copy of a feed (separate, so the benchmark can time it apart)."""
        check_feed(feed)
        t = self._torch
        return tuple(t.as_tensor(np.ascontiguousarray(feed[k]), dtype=t.long).to(self.device, non_blocking=True)
                     for k in ("input_ids", "attention_mask", "token_type_ids"))

    def _pad_to_bucket(self, tensors):
        """Pad [batch, seq] tensors up to their compile bucket: extra rows repeat the last real
        row (so no row is fully masked), extra positions get id 0 and mask 0."""
        t = self._torch
        batch, seq = tensors[0].shape
        b, s = bucket_shape(batch, seq)
        if (b, s) == (batch, seq):
            return tensors
        out = []
        for x in tensors:
            if s != seq:
                x = t.nn.functional.pad(x, (0, s - seq), value=0)
            if b != batch:
                x = t.cat([x, x[-1:].expand(b - batch, -1)], dim=0)
            out.append(x.contiguous())
        return tuple(out)

    def infer_tensors(self, tensors):
        """Run on device tensors; returns device tensors (no host copy), cut back to the input's shape."""
        if not self.compiled:
            with self._torch.inference_mode(), self._autocast():
                return self.module(*tensors)
        batch, seq = tensors[0].shape
        padded = self._pad_to_bucket(tensors)
        shape = tuple(padded[0].shape)
        first = shape not in self._shapes_seen
        if first:
            self.synchronize()
            t0 = time.perf_counter()
        with self._torch.inference_mode(), self._autocast():
            if self.uses_cuda_graphs:
                # Each call is a new step: CUDA-graph outputs of the previous call may be reused.
                self._torch.compiler.cudagraph_mark_step_begin()
            start, end = self.module(*padded)
        if first:
            self.synchronize()
            self.compile_seconds += time.perf_counter() - t0
            self._shapes_seen.add(shape)
        return start[:batch, :seq], end[:batch, :seq]

    def warmup(self, shapes) -> float:
        """Compile (or, eager, just run once) every (batch, seq) of ``shapes`` now; seconds spent."""
        t0 = time.perf_counter()
        t = self._torch
        for batch, seq in sorted(set(shapes)):
            ids = t.full((batch, seq), 2, dtype=t.long, device=self.device)
            # CUDA-graph modes record the graph on a shape's second call: do that now too.
            for _ in range(2 if self.uses_cuda_graphs else 1):
                self.infer_tensors((ids, t.ones_like(ids), t.zeros_like(ids)))
        self.synchronize()
        return time.perf_counter() - t0

    def shapes_for(self, shapes) -> set[tuple[int, int]]:
        """The shapes the module really runs for these (batch, seq) requests."""
        return {bucket_shape(b, s) for b, s in shapes} if self.compiled else set(shapes)

    def infer(self, feed: Feed) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.infer_tensors(self.to_device(feed))
        return (start.float().cpu().numpy(), end.float().cpu().numpy())

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.synchronize()

    def describe(self) -> dict:
        t = self._torch
        d = {"backend": "torch.compile" if self.compiled else "torch", "precision": self.precision,
             "device": t.cuda.get_device_name() if self.device.startswith("cuda") else "cpu",
             "threads": t.get_num_threads(), "torch": t.__version__, "attention": self.attention}
        if self.compiled:
            d.update(compile_mode=self.compile_mode, compile_seconds=round(self.compile_seconds, 3),
                     compiled_shapes=sorted(self._shapes_seen))
        if self.model_info is not None:
            d["weights"] = self.model_info.weights
        return d


@register("torch")
def _make(model=None, precision: str = "fp32", device: str = "auto", compile: bool = False,
          compile_mode: str | None = None, attention: str = "sdpa", compile_backend: str = "inductor",
          **_ignored) -> TorchRunner:
    if model is None:
        raise BackendUnavailable("torch", "needs a model")
    return TorchRunner(model, precision=precision, device=device, compile=compile, compile_mode=compile_mode,
                       attention=attention, compile_backend=compile_backend)
