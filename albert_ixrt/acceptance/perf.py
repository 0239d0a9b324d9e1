"""The perf items: which feed each one times, how its figures are computed from the raw timings, and
the timers of the two doors.

A perf item times ``runner.infer(feed)`` for a few rounds through a *timer* the door supplies (``run``:
``loop_timer``, a plain timed loop; pytest: pytest-benchmark's ``pedantic``, so its JSON, compare and
histogram options work), then turns the raw samples into figures here, once for both doors:
sequences/s and batches/s with the batch size, p50/p90/p99.  The outputs of the last timed call are
checked against torch fp32 by the one rule (MLPerf compliance TEST01's idea: a configuration that
breaks the numerics cannot post a throughput).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..bench import real_feed
from ..evaluate import plan_batches
from .plan import BUCKETS, FeedPlan

#: Real SQuAD questions featurized for the perf feeds: enough for several batches and length buckets.
PERF_EXAMPLES = 200
#: Rows of each timed batch checked against torch fp32 (a sample: torch fp32 runs only on these).
CHECKED_ROWS = 4
#: Timed rounds: batch 1 is cheap, bigger batches take seconds per call on a CPU.
ROUNDS_BATCH_1, ROUNDS, WARMUP = 5, 3, 1

#: A timer: ``timer(call, rounds, warmup) -> raw seconds of each timed round`` (empty: timing disabled).
Timer = Callable[[Callable[[], object], int, int], Sequence[float]]


def perf_lock_path():
    """One lock file per machine (the temp folder) that every perf session holds while it times."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "albert-ixrt-perf.lock"


def hold_machine(stack) -> str | None:
    """Take the machine-wide perf lock for the rest of the session (``stack``: where it is released); when
    another session holds it, say so: these timings then share the machine (None: this session times alone).
    Hand-written around filelock (an OS lock the kernel drops with its holder): no timing library offers it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(perf_lock_path()), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return (f"another albert-ixrt perf session is timing on this machine now (it holds {perf_lock_path()}): "
                "these timings share the machine with it")
    except OSError:
        return None                              # an unwritable temp folder: no lock, no claim either way
    stack.callback(lock.release)
    return None


def loop_timer(call: Callable[[], object], rounds: int, warmup: int) -> list[float]:
    """``run``'s timer: the benchmark harness's timed loop (warm-up, then one sample per call)."""
    from ..bench import BenchSettings, timed_loop

    settings = BenchSettings(warmup=warmup, iterations=rounds, min_iterations=1, max_seconds=None)
    samples, _ = timed_loop(call, lambda: None, settings)
    return samples


def perf_feed(features: Sequence, feeds: FeedPlan, item: str) -> tuple[dict, str]:
    """(feed, what its lengths are) of a perf item: ``b16x384`` pads 16 real features to 384; ``bucketed-X``
    takes the X (shortest, median, longest) batch of evaluation's length bucketing at the bucket batch
    size, cycling that bucket's features to fill it."""
    if item.startswith("bucketed-"):
        bucket = item.split("-", 1)[1]
        plan = plan_batches(features, feeds.bucket_batch, bucket=True)
        picks = {"shortest": plan[0], "median": plan[len(plan) // 2], "longest": plan[-1]}
        if bucket not in BUCKETS:
            raise KeyError(item)
        idx, seq = picks[bucket]
        return real_feed([features[i] for i in idx], feeds.bucket_batch, seq), f"bucketed ({bucket} bucket)"
    batch, seq = (int(x) for x in item[1:].split("x"))
    return real_feed(features, batch, seq), f"padded to {seq}"


def rounds_for(batch: int) -> int:
    return ROUNDS_BATCH_1 if batch == 1 else ROUNDS


def perf_figures(samples: Sequence[float], feed: dict) -> dict:
    """Figures of one item from its raw timings: batches/s (one "query" is one batch, as the reference's
    trtexec-style QPS), sequences/s, p50/p90/p99 latency, rounds, and the raw samples themselves."""
    batch, seq = (int(x) for x in np.shape(feed["input_ids"]))
    out = {"batch_size": batch, "seq_len": seq,
           "real_tokens_mean": round(float(np.asarray(feed["attention_mask"]).sum(1).mean()), 1)}
    if not len(samples):
        return out
    s = np.asarray(samples, dtype=np.float64)
    mean = float(s.mean())
    p50, p90, p99 = np.percentile(s * 1e3, [50, 90, 99])
    out.update(batches_per_s=round(1.0 / mean, 3), sequences_per_s=round(batch / mean, 3), rounds=int(s.size),
               p50_ms=round(float(p50), 4), p90_ms=round(float(p90), 4), p99_ms=round(float(p99), 4),
               samples_s=[round(float(x), 6) for x in s])
    return out
