"""The torch reference runner: eager fp32 / fp16 / bf16 on CPU or CUDA, optionally torch.compile.

fp32 is the reference every other runner is compared with.  On CPU, fp16 and bf16 run under
autocast (matmuls in reduced precision, reductions in fp32); on CUDA the weights are cast.
Every sequence uses only its own attention mask, so a result never depends on the batch size
or on the other sequences of a batch (tests/unit/test_torch_runner.py checks it).
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..errors import BackendUnavailable
from .base import Feed, Runner, check_feed, register

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable("torch", f"device {device!r} requested but torch sees no CUDA GPU")
    return device


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model, precision: str = "fp32", device: str = "auto", compile: bool = False,
                 compile_mode: str | None = None):
        import torch

        if precision not in _DTYPES:
            raise BackendUnavailable("torch", f"precision {precision!r} not supported (fp32, fp16, bf16)")
        self.model_info = model if hasattr(model, "module") else None
        module = model.module if self.model_info is not None else model
        self.precision = precision
        self.device = resolve_device(device)
        self.dtype = getattr(torch, _DTYPES[precision])
        self.compiled = compile
        module = module.eval().to(self.device)
        if self.device != "cpu" and precision != "fp32":
            module = module.to(self.dtype)
        if compile:
            mode = compile_mode or ("reduce-overhead" if self.device != "cpu" else None)
            module = torch.compile(module, mode=mode, dynamic=False)
            self.compile_mode = mode
        self.module = module
        self._torch = torch

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

    def infer_tensors(self, tensors):
        """Run on device tensors; returns device tensors (no host copy)."""
        with self._torch.inference_mode(), self._autocast():
            return self.module(*tensors)

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
             "threads": t.get_num_threads(), "torch": t.__version__}
        if self.model_info is not None:
            d["weights"] = self.model_info.weights
        return d


@register("torch")
def _make(model=None, precision: str = "fp32", device: str = "auto", compile: bool = False, **_ignored) -> TorchRunner:
    if model is None:
        raise BackendUnavailable("torch", "needs a model")
    return TorchRunner(model, precision=precision, device=device, compile=compile)
