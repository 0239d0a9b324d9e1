"""The one runner interface: ``infer(feed) -> (start_logits, end_logits)``.

A *feed* is a dict of int64 numpy arrays ``input_ids``, ``attention_mask``, ``token_type_ids``
shaped [batch, seq]; outputs are float32 numpy arrays [batch, seq].  Runners never see dataset
logic (the MLPerf SUT/QSL split): evaluation and benchmarking hand them feeds.

A backend whose library or device is missing stays importable: ``create_runner`` raises
``BackendUnavailable`` with a one-line reason, which the tests turn into a skip.
"""
from __future__ import annotations

import abc
from typing import Callable

import numpy as np

from ..errors import BackendUnavailable

Feed = dict[str, np.ndarray]
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


class Runner(abc.ABC):
    name: str = "runner"
    precision: str = "fp32"

    @abc.abstractmethod
    def infer(self, feed: Feed) -> tuple[np.ndarray, np.ndarray]:
        """Run one batch; return (start_logits, end_logits) as float32 [batch, seq]."""

    def describe(self) -> dict:
        """What produced the numbers: backend, precision, device, threads, ... (recorded with results)."""
        return {"backend": self.name, "precision": self.precision}

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU); the benchmark calls it before stopping a timer."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_feed(feed: Feed) -> tuple[int, int]:
    """Validate a feed; return (batch, seq)."""
    missing = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k not in feed]
    if missing:
        raise ValueError(f"feed lacks {missing}")
    shapes = {k: np.shape(feed[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    if len(set(shapes.values())) != 1 or len(shapes["input_ids"]) != 2:
        raise ValueError(f"feed arrays must share one [batch, seq] shape, got {shapes}")
    return shapes["input_ids"]


_REGISTRY: dict[str, Callable[..., Runner]] = {}


def register(name: str):
    def deco(factory):
        _REGISTRY[name] = factory
        return factory
    return deco


def backends() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def create_runner(backend: str, **kwargs) -> Runner:
    """Build a runner by backend name; ``BackendUnavailable`` when it cannot run here."""
    _load_all()
    if backend not in _REGISTRY:
        raise BackendUnavailable(backend, f"unknown backend; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[backend](**kwargs)


def _load_all() -> None:
    # Importing a runner module registers it; a module may be absent while it is being written.
    import importlib

    for mod in ("torch_runner", "ort_runner", "trt_runner"):
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{mod}":
                raise
