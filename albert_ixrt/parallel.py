"""Parallel runs: pin each pytest-xdist worker to one GPU, and shard a SQuAD evaluation.

Pinning works through ``CUDA_VISIBLE_DEVICES``, which the CUDA runtime reads once, when a process
first touches the GPU; the suite's pytest plugin sets it in ``pytest_configure`` of each worker,
before any test imports torch.cuda.  The GPU count comes from ``CUDA_VISIBLE_DEVICES`` or
``nvidia-smi -L`` so that counting does not itself initialise CUDA.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Sequence, TypeVar

T = TypeVar("T")


def worker_index(worker_id: str | None) -> int | None:
    """0 for xdist's "gw0", 3 for "gw3"; None outside xdist ("master" or unset)."""
    if not worker_id:
        return None
    m = re.fullmatch(r"gw(\d+)", worker_id)
    return int(m.group(1)) if m else None


def visible_gpus(env: dict | None = None) -> list[str]:
    """The GPU ids this process may use, without initialising CUDA."""
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


def gpu_for_worker(worker_id: str | None, gpus: Sequence[str]) -> str | None:
    """The GPU a worker gets: round robin over the visible GPUs (None: leave the process alone)."""
    idx = worker_index(worker_id)
    if idx is None or not gpus:
        return None
    return gpus[idx % len(gpus)]


def pin_worker_gpu(worker_id: str | None, env: dict | None = None) -> str | None:
    """Restrict this worker process to one GPU; returns the GPU id it got."""
    env = os.environ if env is None else env
    gpu = gpu_for_worker(worker_id, visible_gpus(env))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu


def parse_shard(text: str) -> tuple[int, int]:
    """"2/4" -> (2, 4): shard index (1-based in the text, 0-based returned) and count."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise ValueError(f"shard must look like I/N with 1 <= I <= N, got {text!r}")
    return int(m.group(1)) - 1, int(m.group(2))


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """The ``index``-th of ``count`` contiguous, near-equal slices (whole examples, so every
    example's features stay in one shard and post-processing needs no other shard)."""
    n = len(items)
    lo = n * index // count
    hi = n * (index + 1) // count
    return list(items[lo:hi])
