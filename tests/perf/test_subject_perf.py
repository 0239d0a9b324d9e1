"""Perf acceptance on the subject under test: pytest-benchmark timings of the runner under test at
--perf-batch-sizes (default 1 and 16) at sequence 384, and at real bucketed lengths (the padded
lengths evaluation's length bucketing gives the first dev questions).  Each entry's extra_info
names the subject (model, weights, backend, precision, device, engine label), gives sequences/s and
batches/s with the batch size and p50/p90/p99, and carries the reference row (QPS 50.99 = batches/s
at batch 16 on an MR-V100) beside it.  Each test also checks a sample of the outputs it timed against
torch fp32 on the same inputs (MLPerf compliance TEST01's idea): a configuration that breaks the
numerics cannot post a throughput."""
from __future__ import annotations

import numpy as np
import pytest

from albert_ixrt.pytest_plugin import option, perf_rows

pytestmark = [pytest.mark.perf, pytest.mark.usefixtures("albert_record_subject")]

SEQ = 384
#: Rows of each timed batch checked against torch fp32 (a sample: torch fp32 runs only on these).
CHECKED_ROWS = 4
#: Batch size of the bucketed timings (the reference's), and which buckets are timed.
BUCKET_BATCH = 16
BUCKETS = ("shortest", "median", "longest")


def pytest_generate_tests(metafunc):
    if "perf_batch" in metafunc.fixturenames:
        metafunc.parametrize("perf_batch", sorted(set(option(metafunc.config, "perf_batch_sizes"))))


def _percentiles(stats) -> dict:
    data = np.asarray(stats.data, dtype=np.float64) * 1e3
    return {f"p{q}_ms": round(float(np.percentile(data, q)), 4) for q in (50, 90, 99)}


def _time_and_check(request, benchmark, subject, model, runner, reference, feed, rounds: int, label: str) -> dict:
    """Time ``runner.infer(feed)``, record the subject and figures, then check the timed outputs."""
    from albert_ixrt.pytest_plugin import engine_label, is_emulated
    from albert_ixrt.report import reference_row
    from albert_ixrt.verdicts import outputs_match_reference

    timed: list = []

    def call():
        timed[:] = [runner.infer(feed)]   # keep the outputs of the last timed call

    batch, seq = feed["input_ids"].shape
    d = runner.describe()
    emulated = is_emulated(d)
    info = {"model": model.name, "weights": model.weights, "backend": subject.backend,
            "precision": subject.precision, "device": d.get("device", subject.device), "engine": engine_label(runner),
            "emulated": emulated, "batch_size": int(batch), "seq_len": int(seq), "lengths": label,
            "real_tokens_mean": round(float(feed["attention_mask"].sum(1).mean()), 1)}
    if emulated:
        info["not_published"] = "emulated engine: timings of the stand-in, not TensorRT figures"
    ref = reference_row()
    info["reference_row"] = {"model": ref.model, "batch_size": ref.batch_size, "precision": ref.precision,
                             "batches_per_s": ref.batches_per_s, "sequences_per_s": round(ref.sequences_per_s, 2),
                             "seq_len": ref.seq_len, "device": ref.device}
    benchmark.extra_info.update(info)
    benchmark.pedantic(call, rounds=rounds, warmup_rounds=1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        mean = benchmark.stats.stats.mean
        figures = {"batches_per_s": round(1.0 / mean, 3), "sequences_per_s": round(batch / mean, 3),
                   "rounds": benchmark.stats.stats.rounds, **_percentiles(benchmark.stats.stats)}
        benchmark.extra_info.update(figures)
        perf_rows(request.config).append({**info, **figures})
    rows = slice(0, min(CHECKED_ROWS, batch))
    sample = {k: v[rows] for k, v in feed.items()}
    start, end = timed[0]
    verdict = outputs_match_reference(reference.infer(sample), (start[rows], end[rows]), sample["attention_mask"],
                                      subject.precision, what="timed")
    benchmark.extra_info["timed_outputs_check"] = verdict.message
    assert verdict.passed, verdict.message
    return info


def test_throughput_at_384(request, benchmark, albert_subject, albert_subject_model, albert_subject_runner,
                           albert_reference_runner, perf_features, perf_batch):
    from albert_ixrt.bench import real_feed

    feed = real_feed(perf_features, perf_batch, SEQ)
    info = _time_and_check(request, benchmark, albert_subject, albert_subject_model, albert_subject_runner,
                           albert_reference_runner, feed, rounds=5 if perf_batch == 1 else 3, label="padded to 384")
    assert info["batch_size"] == perf_batch and info["seq_len"] == SEQ


@pytest.mark.parametrize("bucket", BUCKETS)
def test_throughput_at_bucketed_lengths(request, benchmark, albert_subject, albert_subject_model,
                                        albert_subject_runner, albert_reference_runner, perf_features, bucket):
    from albert_ixrt.evaluate import plan_batches
    from albert_ixrt.squad.features import stack_batch

    plan = [p for p in plan_batches(perf_features, BUCKET_BATCH, bucket=True) if len(p[0]) == BUCKET_BATCH]
    assert len(plan) >= 3, f"{len(perf_features)} features make only {len(plan)} full batches"
    idx, seq = {"shortest": plan[0], "median": plan[len(plan) // 2], "longest": plan[-1]}[bucket]
    feed = stack_batch([perf_features[i] for i in idx], pad_to=seq)
    info = _time_and_check(request, benchmark, albert_subject, albert_subject_model, albert_subject_runner,
                           albert_reference_runner, feed, rounds=3, label=f"bucketed ({bucket} bucket)")
    assert info["seq_len"] == seq <= SEQ
