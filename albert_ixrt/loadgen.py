"""MLPerf LoadGen over the project's runners: SingleStream and Offline, PerformanceOnly.

LoadGen owns the traffic pattern and the statistics; we supply a QSL (query sample library:
real SQuAD features, one sample = one feature) and a SUT (system under test: a runner, fed in
batches).  This is the MLPerf Inference split: the SUT never sees dataset logic, the QSL never
sees a model.  Counts default small ("quick" mode) so a run on the tiny model ends in seconds; the
figures are still LoadGen's own (read from ``mlperf_log_summary.txt``), but such a run is not meant
to be VALID: LoadGen says INVALID and why (duration, query count, early stopping), and we pass its
reasons, recommendations and logged errors on.  ``LoadgenSettings.mlperf_valid`` follows MLPerf's
duration and query-count rules (``config.MLPERF_*``, with their source) for runs meant to be VALID.

SingleStream sends one sample at a time and reports latency percentiles; Offline sends every
sample at once and reports samples/s, with the SUT batching them ``batch_size`` at a time.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .bench import fold_ids
from .config import MLPERF_MIN_DURATION_MS, MLPERF_MIN_QUERY_COUNT, MLPERF_PERFORMANCE_SAMPLE_COUNT
from .errors import BackendUnavailable
from .fileio import write_json_atomic
from .runners.base import Runner
from .squad.features import Feature, stack_batch

SCENARIOS = ("SingleStream", "Offline")
#: "quick": small counts, seconds on the tiny model, not meant to be VALID; "mlperf": MLPerf's rules.
MODES = ("quick", "mlperf")
QUICK_NOTE = ("quick mode: a short run, not meant to be VALID under MLPerf's rules "
              f"(>= {MLPERF_MIN_DURATION_MS // 1000} s and >= {MLPERF_MIN_QUERY_COUNT['SingleStream']} "
              f"SingleStream queries / {MLPERF_MIN_QUERY_COUNT['Offline']} Offline samples); "
              "--mlperf-valid runs by those rules")


def _lg():
    try:
        import mlperf_loadgen
    except ImportError as exc:
        raise BackendUnavailable("loadgen", f"mlcommons-loadgen is not installed ({exc})") from None
    return mlperf_loadgen


@dataclass(frozen=True)
class LoadgenSettings:
    scenario: str = "SingleStream"
    batch_size: int = 16              # Offline: samples per runner call
    seq_len: int | None = None        # pad/crop every sample to this; None: each feature's full length
    min_query_count: int = 32         # SingleStream queries (Offline: one query of this many samples)
    min_duration_ms: int = 1000
    max_duration_ms: int = 60_000
    performance_sample_count: int = 64
    expected_latency_ms: float = 10.0  # SingleStream hint to LoadGen
    expected_qps: float = 100.0        # Offline hint: LoadGen sizes the query from it and the duration
    mode: str = "quick"                # see MODES

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}, got {self.scenario!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.batch_size < 1 or self.min_query_count < 1 or self.performance_sample_count < 1:
            raise ValueError("batch_size, min_query_count and performance_sample_count must be >= 1")
        if self.mode == "mlperf":
            short = self.rule_violations()
            if short:
                raise ValueError(f"{'; '.join(short)}: below MLPerf's rules for a run meant to be VALID")

    def rule_violations(self) -> list[str]:
        """Where these settings fall short of MLPerf's duration and query-count rules."""
        need = {"min_duration_ms": MLPERF_MIN_DURATION_MS, "min_query_count": MLPERF_MIN_QUERY_COUNT[self.scenario]}
        out = [f"{k} {getattr(self, k)} < {v}" for k, v in need.items() if getattr(self, k) < v]
        if 0 < self.max_duration_ms < MLPERF_MIN_DURATION_MS:
            out.append(f"max_duration_ms {self.max_duration_ms} stops the run before {MLPERF_MIN_DURATION_MS}")
        return out

    @classmethod
    def mlperf_valid(cls, scenario: str, **overrides) -> "LoadgenSettings":
        """MLPerf's rules (config.MLPERF_*): 600 s, 1024 SingleStream queries or 10833 Offline
        samples, BERT's performance sample count, no duration cap.  ``overrides`` may only raise them."""
        rules = dict(min_duration_ms=MLPERF_MIN_DURATION_MS, min_query_count=MLPERF_MIN_QUERY_COUNT[scenario],
                     max_duration_ms=0, performance_sample_count=MLPERF_PERFORMANCE_SAMPLE_COUNT)
        return cls(scenario=scenario, mode="mlperf", **{**rules, **overrides})


class FeatureQSL:
    """Query sample library: sample i is feature i, as a [1, seq] feed ready for stacking."""

    def __init__(self, features: Sequence[Feature], seq_len: int | None = None, vocab_size: int | None = None):
        if not features:
            raise ValueError("the QSL needs at least one feature")
        self.features = list(features)
        self.seq_len = seq_len or len(self.features[0].input_ids)
        self.vocab_size = vocab_size
        self.loaded: dict[int, Feature] = {}

    def __len__(self) -> int:
        return len(self.features)

    def load(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.loaded[i] = self.features[i]

    def unload(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.loaded.pop(i, None)

    def batch(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """The feed of loaded samples ``indices`` (LoadGen only asks for samples it loaded)."""
        feed = stack_batch([self.loaded[i] for i in indices], pad_to=self.seq_len)
        if self.vocab_size is not None:
            feed["input_ids"] = fold_ids(feed["input_ids"], self.vocab_size)
        return feed


class RunnerSUT:
    """System under test: answers LoadGen's queries with a runner, ``batch_size`` samples a call.

    Each response carries the sample's start and end logits (float32, concatenated), the payload
    an accuracy run would log; the arrays stay referenced until LoadGen has copied them.
    """

    def __init__(self, runner: Runner, qsl: FeatureQSL, batch_size: int = 1):
        self.runner = runner
        self.qsl = qsl
        self.batch_size = batch_size
        self.samples_done = 0
        self.calls = 0

    def issue_queries(self, query_samples) -> None:
        lg = _lg()
        for k in range(0, len(query_samples), self.batch_size):
            chunk = query_samples[k:k + self.batch_size]
            start, end = self.runner.infer(self.qsl.batch([q.index for q in chunk]))
            self.calls += 1
            payloads = [np.ascontiguousarray(np.concatenate([start[i], end[i]]).astype(np.float32))
                        for i in range(len(chunk))]
            responses = [lg.QuerySampleResponse(q.id, p.ctypes.data, p.nbytes) for q, p in zip(chunk, payloads)]
            lg.QuerySamplesComplete(responses)
            self.samples_done += len(chunk)

    def flush_queries(self) -> None:
        pass


@dataclass
class LoadgenResult:
    scenario: str
    valid: bool | None
    samples_per_second: float | None
    latency_ns: dict                  # LoadGen's latency lines: min, max, mean, 50.00, 90.00, ...
    samples_issued: int
    runner_calls: int
    summary: dict = field(default_factory=dict)
    runner: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    log_dir: str = ""
    mode: str = "quick"
    checks: dict = field(default_factory=dict)           # "Min duration satisfied": "NO", ...
    invalid_reasons: list = field(default_factory=list)  # the failed checks and LoadGen's errors, in words
    recommendations: list = field(default_factory=list)  # LoadGen's own advice
    early_stopping: list = field(default_factory=list)
    errors: list = field(default_factory=list)           # error / warning lines of mlperf_log_detail.txt
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def console_lines(self) -> list[str]:
        """What a person reads: the verdict, why, LoadGen's advice and where its logs are."""
        verdict = {True: "VALID", False: "INVALID"}.get(self.valid, "no verdict")
        if self.mode == "mlperf":
            how = "MLPerf rules"
        elif self.valid is False:
            how = "expected of a quick run, which is too short for MLPerf's rules; --mlperf-valid runs by them"
        else:   # never "VALID (... not meant to be VALID)"
            how = "a quick run; --mlperf-valid runs by MLPerf's rules"
        lines = [f"{self.scenario}: LoadGen says {verdict} ({how})"]
        lines += [f"  why: {r}" for r in self.invalid_reasons]
        lines += [f"  LoadGen recommends: {r}" for r in self.recommendations]
        lines += [f"  early stopping: {r}" for r in self.early_stopping if not self.valid]
        if self.log_dir:
            lines.append(f"  LoadGen's logs: {Path(self.log_dir) / 'mlperf_log_summary.txt'} (and mlperf_log_detail.txt)")
        return lines


_SUMMARY_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.+?)\s*$")


def parse_summary(text: str) -> dict[str, str]:
    """``key : value`` lines of ``mlperf_log_summary.txt`` (the first occurrence of a key wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _SUMMARY_LINE.match(line)
        if m and not line.lstrip().startswith("*") and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


_CHECK = re.compile(r"^\s+(Min duration satisfied|Min queries satisfied|Early stopping satisfied)\s*:\s*(\S+)")


def summary_sections(text: str) -> dict:
    """The parts of ``mlperf_log_summary.txt`` that say why: the validity checks, the
    "Recommendations:" bullets and the "Early Stopping Result:" bullets (a bullet may wrap)."""
    checks: dict[str, str] = {}
    lists: dict[str, list[str]] = {"recommendations": [], "early_stopping": []}
    current = None
    for line in text.splitlines():
        m = _CHECK.match(line)
        if m:
            checks[m.group(1)] = m.group(2)
            continue
        head = line.strip()
        if head == "Recommendations:":
            current = "recommendations"
        elif head == "Early Stopping Result:":
            current = "early_stopping"
        elif current and line.startswith(" * "):
            lists[current].append(head[2:].strip())
        elif current and line.startswith(" ") and head and lists[current]:
            lists[current][-1] += " " + head          # a wrapped bullet
        else:
            current = None
    return {"checks": checks, **lists}


def detail_errors(text: str) -> list[str]:
    """``key: value`` of each error or warning LoadGen logged in ``mlperf_log_detail.txt``."""
    out = []
    for line in text.splitlines():
        if not line.startswith(":::MLLOG "):
            continue
        try:
            record = json.loads(line[len(":::MLLOG "):])
        except json.JSONDecodeError:
            continue
        meta = record.get("metadata") or {}
        if meta.get("is_error") or meta.get("is_warning"):
            kind = "error" if meta.get("is_error") else "warning"
            out.append(f"LoadGen {kind} ({record.get('key')}): {record.get('value')}")
    return out


def invalid_reasons(checks: dict[str, str], errors: Sequence[str], settings: LoadgenSettings) -> list[str]:
    """The failed checks in words (with the setting each one measures), then LoadGen's errors."""
    words = {
        "Min duration satisfied": f"the run ended before min_duration {settings.min_duration_ms} ms",
        "Min queries satisfied": f"fewer than min_query_count {settings.min_query_count} "
                                 + ("queries" if settings.scenario == "SingleStream" else "samples"),
        "Early stopping satisfied": "too few queries for LoadGen's early-stopping estimate (it needs >= 64)",
    }
    return [f"{k} : {v}: {words.get(k, 'not met')}" for k, v in checks.items() if v.lower() != "yes"] + \
        [e for e in errors if e.startswith("LoadGen error")]


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def result_from_summary(summary: dict[str, str], scenario: str) -> tuple[bool | None, float | None, dict]:
    valid = {"VALID": True, "INVALID": False}.get(summary.get("Result is", ""))
    # Offline reports samples/s; SingleStream its queries/s (one sample each) without LoadGen's overhead
    rate = _number(summary.get("Samples per second") or summary.get("QPS w/o loadgen overhead"))
    latency = {}
    for key, value in summary.items():
        m = re.match(r"^(Min|Max|Mean|[\d.]+ percentile) latency \(ns\)$", key)
        if m and _number(value) is not None:
            latency[m.group(1).replace(" percentile", "").lower()] = _number(value)
    return valid, rate, latency


def make_test_settings(lg, s: LoadgenSettings):
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, s.scenario)
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = s.min_duration_ms
    ts.max_duration_ms = s.max_duration_ms
    ts.min_query_count = s.min_query_count
    if s.scenario == "SingleStream":
        ts.single_stream_expected_latency_ns = int(s.expected_latency_ms * 1e6)
    else:
        ts.offline_expected_qps = s.expected_qps
    return ts


def run_loadgen(runner: Runner, features: Sequence[Feature], settings: LoadgenSettings = LoadgenSettings(), *,
                log_dir: str | Path | None = None, vocab_size: int | None = None) -> LoadgenResult:
    """One LoadGen test; logs go to ``log_dir`` (a temporary folder when None)."""
    from .bench import refuse_emulated

    refuse_emulated(runner)  # an emulated engine's timings are never published
    lg = _lg()
    qsl = FeatureQSL(features, settings.seq_len, vocab_size)
    sut = RunnerSUT(runner, qsl, settings.batch_size if settings.scenario == "Offline" else 1)
    tmp = None
    if log_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="albert-ixrt-loadgen-")
        log_dir = tmp.name
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    lg_sut = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    lg_qsl = lg.ConstructQSL(len(qsl), min(settings.performance_sample_count, len(qsl)), qsl.load, qsl.unload)
    try:
        lg.StartTestWithLogSettings(lg_sut, lg_qsl, make_test_settings(lg, settings), log_settings)
    finally:
        lg.DestroyQSL(lg_qsl)
        lg.DestroySUT(lg_sut)
    result = result_from_logs(log_dir, settings, sut.samples_done, sut.calls, runner.describe(),
                              kept=tmp is None)
    if tmp is not None:
        tmp.cleanup()
    return result


def result_from_logs(log_dir: str | Path, settings: LoadgenSettings, samples_issued: int = 0, runner_calls: int = 0,
                     runner_info: dict | None = None, *, kept: bool = True) -> LoadgenResult:
    """A ``LoadgenResult`` from LoadGen's files in ``log_dir``: figures, verdict and the reasons for it."""
    log_dir = Path(log_dir)
    text = (log_dir / "mlperf_log_summary.txt").read_text(encoding="utf-8", errors="replace")
    detail = log_dir / "mlperf_log_detail.txt"
    errors = detail_errors(detail.read_text(encoding="utf-8", errors="replace")) if detail.is_file() else []
    summary = parse_summary(text)
    sections = summary_sections(text)
    valid, rate, latency = result_from_summary(summary, settings.scenario)
    return LoadgenResult(settings.scenario, valid, rate, latency, samples_issued, runner_calls, summary,
                         runner_info or {}, asdict(settings), str(log_dir) if kept else "", settings.mode,
                         sections["checks"], invalid_reasons(sections["checks"], errors, settings) if valid is not True else [],
                         sections["recommendations"], sections["early_stopping"], errors,
                         QUICK_NOTE if settings.mode == "quick" else "")


def write_result(result: LoadgenResult, path: str | Path) -> Path:
    return write_json_atomic(path, {"schema": "albert-ixrt/loadgen/1", **result.as_dict()})
