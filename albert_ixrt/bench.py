"""Throughput and latency of one runner, per batch size and sequence length.

Definitions (they decide whether a number is comparable with the reference row):

- *batches/s* is what trtexec and the DeepSparkInference table call "QPS": one query = one batch
  (the reference: 50.99 batches/s at batch 16).  *sequences/s* = batch size x batches/s.
- Latency is host wall time of one ``infer`` call, with ``runner.synchronize()`` before the timer
  stops, so queued GPU work is never left out.  mean / p50 / p90 / p99 over the timed iterations.
- Throughput: on the CPU, 1 / mean latency (calls are synchronous anyway).  On a GPU, batches are
  also enqueued back to back with one synchronize at the end (as trtexec does), and that rate is
  the throughput; per-call latency still comes from the synchronous loop.
- ``with_copies``: feed in host memory, logits back in host memory (what an application sees).
  ``device_only``: inputs copied to the device once, outputs left there (what the engine does).
  Only runners with ``to_device``/``infer_tensors`` on a non-CPU device get the second figure.

Inputs are always real SQuAD features (tiled to the batch, cropped or padded to the length),
never zeros or random ids: padding-aware kernels and attention masks make zeros unrepresentative.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import DEFAULT_SQUAD
from .errors import InputFileError
from .fileio import write_json_atomic
from .runners.base import Feed, Runner
from .squad.features import Feature

SCHEMA = "albert-ixrt/bench/1"
DEFAULT_BATCH_SIZES = (1, 16)
DEFAULT_SEQ_LENS = (DEFAULT_SQUAD.max_seq_length,)
#: ALBERT's special ids (<pad> <unk> [CLS] [SEP] [MASK]): kept as they are when ids are folded.
N_SPECIAL_IDS = 5
TRANSFER_LABELS = {
    "with_copies": "end to end: host->device inputs, device->host logits included",
    "device_only": "device only: inputs already on the device, logits left there",
}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def fold_ids(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Map ids >= ``vocab_size`` into the vocabulary, leaving the special ids alone.

    For models with a small vocabulary (the tiny test model) fed features of the real tokenizer:
    the cost of an embedding lookup does not depend on which row it reads.
    """
    if vocab_size <= N_SPECIAL_IDS:
        raise ValueError(f"vocab_size must exceed {N_SPECIAL_IDS}, got {vocab_size}")
    ids = np.asarray(ids)
    big = ids >= vocab_size
    return np.where(big, N_SPECIAL_IDS + (ids - N_SPECIAL_IDS) % (vocab_size - N_SPECIAL_IDS), ids)


def real_feed(features: Sequence[Feature], batch_size: int, seq_len: int, *, start: int = 0,
              vocab_size: int | None = None, pad_id: int = 0) -> Feed:
    """A [batch, seq] feed of real features: ``batch_size`` features from ``start`` (cycling when
    there are fewer), each cropped or padded (with ``pad_id``, mask 0) to ``seq_len``."""
    if not features:
        raise ValueError("no features to build a benchmark feed from")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch size and sequence length must be >= 1, got {batch_size} x {seq_len}")
    rows = [features[(start + i) % len(features)] for i in range(batch_size)]
    feed = {}
    for name, fill in (("input_ids", pad_id), ("attention_mask", 0), ("token_type_ids", 0)):
        out = np.full((batch_size, seq_len), fill, dtype=np.int64)
        for r, f in enumerate(rows):
            values = np.asarray(getattr(f, name))[:seq_len]
            out[r, :len(values)] = values
        feed[name] = out
    if vocab_size is not None:
        feed["input_ids"] = fold_ids(feed["input_ids"], vocab_size)
    return feed


def describe_feed(feed: Feed, source: str = "SQuAD v1.1 dev features") -> dict:
    """What the benchmark fed, so a reader can tell real inputs from padding."""
    mask = feed["attention_mask"]
    ids = feed["input_ids"]
    return {"source": source, "shape": list(ids.shape), "real_tokens_mean": round(float(mask.sum(1).mean()), 1),
            "nonzero_ids": int(np.count_nonzero(ids)), "distinct_ids": int(len(np.unique(ids)))}


# --------------------------------------------------------------------------------------------
# Settings and results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchSettings:
    """Warm-up, then timed iterations until ``iterations`` are done and ``min_seconds`` have
    passed, or ``max_seconds`` is reached (at least ``min_iterations`` always run)."""

    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS
    warmup: int = 3
    iterations: int = 20
    min_seconds: float = 0.0
    max_seconds: float | None = 60.0
    min_iterations: int = 3
    transfers: str = "auto"     # "auto" | "with_copies" | "device_only" | "both"

    def __post_init__(self):
        if self.warmup < 0 or self.iterations < 1 or self.min_iterations < 1:
            raise ValueError("warmup must be >= 0, iterations and min_iterations >= 1")
        if self.transfers not in ("auto", "with_copies", "device_only", "both"):
            raise ValueError(f"transfers must be auto, with_copies, device_only or both, got {self.transfers!r}")


@dataclass
class LatencyStats:
    """Per-call latency in milliseconds."""

    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> "LatencyStats":
        if len(samples) == 0:
            raise ValueError("no latency samples")
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(ms.mean()), float(p50), float(p90), float(p99), float(ms.min()), float(ms.max()),
                   float(ms.std()))


@dataclass
class BenchResult:
    backend: str
    precision: str
    device: str
    batch_size: int
    seq_len: int
    transfer: str                   # key of TRANSFER_LABELS
    iterations: int
    seconds: float                  # timed wall time of the latency loop
    batches_per_s: float            # "QPS" as in trtexec / the reference row
    sequences_per_s: float          # batch_size * batches_per_s
    latency: LatencyStats
    throughput_method: str
    stopped_by: str                 # "count" | "time limit"
    weights: str = "unknown"        # "real" | "random"
    model: str = ""
    runner: dict = field(default_factory=dict)
    feed: dict = field(default_factory=dict)

    @property
    def transfer_label(self) -> str:
        return TRANSFER_LABELS[self.transfer]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["transfer_label"] = self.transfer_label
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BenchResult":
        d = dict(d)
        d.pop("transfer_label", None)
        d["latency"] = LatencyStats(**d["latency"])
        return cls(**d)


@dataclass
class BenchReport:
    results: list[BenchResult]
    environment: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"schema": SCHEMA, "environment": self.environment, "model": self.model, "settings": self.settings,
               "results": [r.as_dict() for r in self.results]}
        if self.model.get("weights") == "random":
            out["warning"] = "random weights: speed only; these runs say nothing about accuracy"
        return out

    def write(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.as_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "BenchReport":
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a benchmark report (schema {d.get('schema')!r}, expected {SCHEMA!r})")
        return cls([BenchResult.from_dict(r) for r in d["results"]], d.get("environment", {}), d.get("model", {}),
                   d.get("settings", {}))

    @classmethod
    def read(cls, path: str | os.PathLike) -> "BenchReport":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputFileError(path, f"not a readable albert-ixrt benchmark report ({exc})") from None

    def seconds_by_batch(self) -> dict[int, float]:
        """Timed seconds per batch size (every length and transfer mode together), for run's time advice."""
        out: dict[int, float] = {}
        for r in self.results:
            out[r.batch_size] = round(out.get(r.batch_size, 0.0) + r.seconds, 2)
        return out

    def table(self) -> str:
        return format_table(self.results)


def format_table(results: Sequence[BenchResult]) -> str:
    """A fixed-width table for the terminal."""
    head = ("backend", "prec", "device", "batch", "seq", "transfer", "batches/s", "seq/s", "mean ms", "p50",
            "p90", "p99", "iters")
    rows = [head]
    for r in results:
        lat = r.latency
        rows.append((r.backend, r.precision, r.device[:24], str(r.batch_size), str(r.seq_len), r.transfer,
                     f"{r.batches_per_s:.2f}", f"{r.sequences_per_s:.1f}", f"{lat.mean_ms:.2f}", f"{lat.p50_ms:.2f}",
                     f"{lat.p90_ms:.2f}", f"{lat.p99_ms:.2f}", str(r.iterations)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if k >= 3 else c.ljust(w) for k, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------
def timed_loop(step: Callable[[], object], sync: Callable[[], None], settings: BenchSettings,
               clock: Callable[[], float] = time.perf_counter) -> tuple[list[float], str]:
    """Warm up, then time ``step`` + ``sync`` per call; (latencies in seconds, what stopped it)."""
    for _ in range(settings.warmup):
        step()
    sync()
    samples: list[float] = []
    began = clock()
    while True:
        t0 = clock()
        step()
        sync()
        samples.append(clock() - t0)
        elapsed = clock() - began
        n = len(samples)
        if n >= settings.iterations and elapsed >= settings.min_seconds:
            return samples, "count"
        if n >= settings.min_iterations and settings.max_seconds is not None and elapsed >= settings.max_seconds:
            return samples, "time limit"


def pipelined_rate(step: Callable[[], object], sync: Callable[[], None], n: int,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """Calls per second with ``n`` calls enqueued back to back and one synchronize at the end."""
    sync()
    t0 = clock()
    for _ in range(n):
        step()
    sync()
    return n / (clock() - t0)


def runner_device(runner: Runner) -> str:
    return str(runner.describe().get("device", "cpu"))


def on_accelerator(runner: Runner) -> bool:
    return runner_device(runner) != "cpu"


def transfers_for(runner: Runner, choice: str) -> list[str]:
    """Which figures to produce: device-only needs a runner that exposes device tensors."""
    can_split = hasattr(runner, "to_device") and hasattr(runner, "infer_tensors")
    if choice == "with_copies" or (choice == "auto" and not (can_split and on_accelerator(runner))):
        return ["with_copies"]
    if not can_split:
        raise ValueError(f"{runner.name} has no to_device/infer_tensors: it cannot be timed without copies")
    return {"device_only": ["device_only"]}.get(choice, ["with_copies", "device_only"])


def measure(runner: Runner, feed: Feed, settings: BenchSettings, transfer: str = "with_copies",
            model_info: dict | None = None, feed_info: dict | None = None) -> BenchResult:
    """One (batch, seq, transfer) point."""
    if transfer == "with_copies":
        def step():
            return runner.infer(feed)
    else:
        on_device = runner.to_device(feed)
        runner.synchronize()

        def step():
            return runner.infer_tensors(on_device)
    samples, stopped_by = timed_loop(step, runner.synchronize, settings)
    latency = LatencyStats.from_seconds(samples)
    batches_per_s, method = 1e3 / latency.mean_ms, "1 / mean latency (synchronous calls)"
    if on_accelerator(runner):
        batches_per_s = pipelined_rate(step, runner.synchronize, max(settings.iterations, len(samples)))
        method = "back-to-back enqueue, one synchronize at the end"
    batch, seq = feed["input_ids"].shape
    desc = runner.describe()
    model_info = model_info or {}
    return BenchResult(
        backend=str(desc.get("backend", runner.name)), precision=str(desc.get("precision", runner.precision)),
        device=runner_device(runner), batch_size=int(batch), seq_len=int(seq), transfer=transfer,
        iterations=len(samples), seconds=float(sum(samples)), batches_per_s=float(batches_per_s),
        sequences_per_s=float(batches_per_s * batch), latency=latency, throughput_method=method,
        stopped_by=stopped_by, weights=str(model_info.get("weights", desc.get("weights", "unknown"))),
        model=str(model_info.get("model", "")), runner=desc, feed=feed_info or describe_feed(feed))


def refuse_emulated(runner) -> None:
    """One clear error when ``runner`` is an engine of the test suite's TensorRT stand-in: its timings are
    onnxruntime's on the CPU and are never published as an engine's (bench, loadgen)."""
    emulated = runner.describe().get("emulated") if hasattr(runner, "describe") else None
    if emulated:
        from .errors import AlbertIxrtError

        raise AlbertIxrtError(f"{emulated}: refusing to time an emulated engine (its timings are never published)")


def run_benchmark(runner: Runner, features: Sequence[Feature], settings: BenchSettings = BenchSettings(), *,
                  model_info: dict | None = None, vocab_size: int | None = None,
                  on_result: Callable[[BenchResult], None] | None = None) -> BenchReport:
    """Every (batch size, sequence length, transfer) point of ``settings`` for one runner.  An engine of
    the test suite's TensorRT stand-in ("emulated TensorRT ... (onnxruntime)") is refused: its timings
    are onnxruntime's on the CPU and must never be published as an engine's."""
    refuse_emulated(runner)
    results = []
    for seq in settings.seq_lens:
        for batch in settings.batch_sizes:
            feed = real_feed(features, batch, seq, vocab_size=vocab_size)
            info = describe_feed(feed)
            if vocab_size is not None:
                info["ids_folded_into_vocab"] = vocab_size
            for transfer in transfers_for(runner, settings.transfers):
                result = measure(runner, feed, settings, transfer, model_info, info)
                results.append(result)
                if on_result:
                    on_result(result)
    return BenchReport(results, environment(), model_info or {}, asdict(settings))


def environment() -> dict:
    """The machine and library versions, stored with every report."""
    import torch

    env = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
           "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu_model(),
           "cpus_usable": len(os.sched_getaffinity(0)), "torch": torch.__version__, "numpy": np.__version__}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def onnx_vocab_size(onnx_path: str | os.PathLike) -> int | None:
    """Rows of the word-embedding table that ``input_ids`` indexes (None when not found), so a
    given ONNX file is never fed ids beyond its vocabulary."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    ids = {"input_ids"}  # and its Casts: a fused graph feeds EmbedLayerNormalization int32 ids
    for node in model.graph.node:
        if ids & set(node.input):
            if node.op_type == "Cast":
                ids.update(node.output)
                continue
            tables = [shapes[name] for name in node.input if len(shapes.get(name, [])) == 2]
            if tables:
                return int(tables[0][0])
    return None
