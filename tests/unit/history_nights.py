"""Synthesised nights for the history tests, made from real records: a pytest-benchmark JSON the perf
tests wrote (fixtures/history/perf_tiny_cpu.json) and a sign-off record (report_schema2_h200.json),
each copied per night with its own commit, run time and round times scaled by that night's factor."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "history"
PERF_JSON = FIXTURES / "perf_tiny_cpu.json"
REPORT_V2 = FIXTURES / "report_schema2_h200.json"
RUN_V1 = FIXTURES / "run_v1"
FIRST_NIGHT = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc)


def commit(i: int) -> str:
    """Night i's commit: 40 hex digits of its own."""
    return hashlib.sha1(f"night {i}".encode()).hexdigest()


def quiet(n: int, noise: float = 0.01, seed: int = 7) -> list[float]:
    """Round-time factors of n quiet nights: night-to-night noise ``noise`` (log-normal), seeded."""
    return list(np.exp(np.random.default_rng(seed).normal(0.0, noise, n)))


def benchmark_nights(folder: Path, factors: list[float], keep: int | None = None) -> list[Path]:
    """One pytest-benchmark JSON per night; night i's rounds take factors[i] times the real ones
    (``keep``: only the first ``keep`` benchmarks of the real file)."""
    real = json.loads(PERF_JSON.read_text(encoding="utf-8"))
    real["benchmarks"] = real["benchmarks"][:keep]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(factors):
        night = copy.deepcopy(real)
        night["commit_info"]["id"] = commit(i)
        night["datetime"] = (FIRST_NIGHT + dt.timedelta(days=i)).isoformat()
        for b in night["benchmarks"]:
            b["stats"]["data"] = [s * f for s in b["stats"]["data"]]
            b["stats"]["median"] *= f
        paths.append(folder / f"bench-{i:02d}.json")
        paths[-1].write_text(json.dumps(night), encoding="utf-8")
    return paths


def report_nights(folder: Path, factors: list[float], accuracy: list[dict] | None = None,
                  subject: dict | None = None, first: int = 0) -> list[Path]:
    """One schema-2 report.json per night; ``accuracy[i]`` overrides night i's figures, ``subject``
    the subject's fields (another GPU, another TensorRT)."""
    real = json.loads(REPORT_V2.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for j, f in enumerate(factors):
        i = first + j
        night = copy.deepcopy(real)
        night["suite"]["commit"] = commit(i)
        night["started"] = (FIRST_NIGHT + dt.timedelta(days=i)).isoformat()
        night["subject"].update(subject or {})
        for row in night["figures"]["perf"]:
            row["samples_s"] = [s * f for s in row["samples_s"]]
            row["p50_ms"] *= f
        if accuracy and accuracy[j]:
            night["figures"]["accuracy"].update(accuracy[j])
        paths.append(folder / f"report-{i:02d}.json")
        paths[-1].write_text(json.dumps(night), encoding="utf-8")
    return paths
