"""The history of nights: one record per subject per source, kept in an append-only JSON-lines file.

A *source* is what a night's run left behind: a pytest-benchmark JSON of the perf acceptance tests
(``--benchmark-json``), a sign-off record (``report.json``: schema 2, or the older schema-less one), or
a run folder holding ``report.json`` (or a ``latest`` link/entry naming the run folder that does).
Each subject of a source (one perf row: batch x sequence at one way of choosing lengths; or the
accuracy of a run without a matching perf row) becomes one *record*, keyed into a *series* by what
must stay fixed for two nights to be comparable: the subject and the machine (``SERIES_FIELDS``).
Another GPU, driver or TensorRT starts another series instead of moving this one.

The store is append-only: ``append_records`` writes whole lines in one ``write`` at the end of the
file and never rewrites earlier ones (a failed write is cut back to the old length); a damaged line
is refused with its line number before anything is written.  Adding a source twice adds nothing:
records are keyed by the source's content hash and the subject.

Pure data handling, no torch: ``history_check`` judges the nights, ``history_plot`` draws them.
"""
from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import InputFileError, json_problem
from .fileio import sha256_bytes, sha256_json
from .runs import LATEST_FILE, LATEST_LINK, REPORT, parse_started

#: The version of the record layout this code writes; readers refuse newer ones by line number.
HISTORY_SCHEMA = 1
#: What a series is keyed by, in the order its title says them.  ``harness``: what measured the
#: night (pytest-benchmark, ``albert-ixrt run``, ``albert-ixrt pytest``), whose rounds differ.
SERIES_FIELDS = ("harness", "model", "weights", "weights_sha256", "backend", "precision", "device",
                 "device_name", "driver", "runtime", "emulated", "batch_size", "seq_len", "lengths")
#: The four accuracy figures a record may hold, labelled as every report labels them.
ACCURACY_METRICS = {"exact_match": "EM (official)", "f1": "F1 (official)",
                    "bytemlperf_exact_match": "EM (ByteMLPerf-compatible)",
                    "bytemlperf_f1": "F1 (ByteMLPerf-compatible)"}
_PERF_FIGURES = ("sequences_per_s", "batches_per_s", "p50_ms", "p90_ms", "p99_ms", "rounds")
_REQUIRED = ("history_schema", "series", "key", "subject", "night", "time", "source")


# --------------------------------------------------------------------------------------------
# Sources -> records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    path: Path
    data: dict
    sha256: str
    kind: str        # "pytest-benchmark" | "report" (schema 2) | "report-v1" (schema-less)


def resolve_source(path: str | os.PathLike) -> Path:
    """The file a source names: the file itself; a run folder's report.json; or, in a results folder,
    the report.json of the run folder its ``latest`` entry (a symlink, or a file holding the folder's
    name) or, where links cannot be made, its ``LATEST`` file names."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise InputFileError(p, "not found")
    if (p / REPORT).is_file():
        return p / REPORT
    for latest in (p / LATEST_LINK, p / LATEST_FILE):
        if latest.is_dir():
            target = latest
        elif latest.is_file():
            name = latest.read_text(encoding="utf-8").strip()
            target = p / name if name else latest
        else:
            continue
        if not (target / REPORT).is_file():
            raise InputFileError(latest, f"names {target}, which holds no {REPORT}")
        return target / REPORT
    raise InputFileError(p, f"a folder without {REPORT} or a {LATEST_LINK!r} entry: not a run folder")


def read_source(path: str | os.PathLike) -> Source:
    """Read and classify one source; anything else is refused in one line naming the file."""
    file = resolve_source(path)
    raw = file.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(file, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(file, json_problem(exc)) from None
    if isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and "machine_info" in data:
        kind = "pytest-benchmark"
    elif isinstance(data, dict) and isinstance(data.get("subject"), dict) and "figures" in data:
        kind = "report"
    elif isinstance(data, dict) and isinstance(data.get("steps"), list) and "writer" in data:
        kind = "report-v1"
    else:
        raise InputFileError(file, "neither a pytest-benchmark JSON (--benchmark-json) nor a sign-off record "
                                   "(report.json)")
    return Source(file, data, sha256_bytes(raw), kind)


def parse_time(text, where) -> datetime:
    """A run time as an aware UTC datetime.  ISO 8601 without a zone is UTC (pytest-benchmark's
    ``datetime`` is ``utcnow()``); the older ``%Y-%m-%d %H:%M:%S %Z`` form of sign-off records is read
    by the same rule as the run list (``runs.parse_started``: UTC, or this host's zone)."""
    if not isinstance(text, str) or not text.strip():
        raise InputFileError(where, "no run time (datetime / started) to order the night by")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = parse_started(text)
    if moment is None:
        raise InputFileError(where, f"run time {text!r} is neither ISO 8601 nor 'YYYY-MM-DD HH:MM:SS ZONE' "
                                    "in UTC or this host's zone")
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def model_label(model) -> str | None:
    """The model as the series key spells it: a local path by its last component (the same checkout
    in another folder is the same model; the weights' sha256 tells copies apart), a hub id as it is."""
    if not model:
        return None
    text = str(model)
    return Path(text).name if os.path.isabs(text) else text


def device_kind(device) -> str | None:
    """``cuda:3`` -> ``cuda``: which card is named by device_name; the index moves with CUDA_VISIBLE_DEVICES."""
    return str(device).split(":")[0] if device else None


def _key(**fields) -> dict:
    return {f: fields.get(f) for f in SERIES_FIELDS}


def _perf(figures: dict, samples) -> dict:
    perf = {f: figures.get(f) for f in _PERF_FIGURES}
    perf["samples_s"] = [float(s) for s in samples] if samples else None
    return perf


def _benchmark_records(src: Source) -> list[dict]:
    d = src.data
    commit = d.get("commit_info") or {}
    when = parse_time(d.get("datetime"), src.path)
    cpu = ((d.get("machine_info") or {}).get("cpu") or {}).get("brand_raw")
    out = []
    for b in d["benchmarks"]:
        e, stats = b.get("extra_info") or {}, b.get("stats") or {}
        figures = dict(e)
        if figures.get("p50_ms") is None and stats.get("median"):
            figures["p50_ms"] = stats["median"] * 1000.0
        figures.setdefault("rounds", stats.get("rounds"))
        device = device_kind(e.get("device"))
        key = _key(harness="pytest-benchmark", model=model_label(e.get("model")), weights=e.get("weights"),
                   weights_sha256=e.get("weights_sha256"), backend=e.get("backend"), precision=e.get("precision"),
                   device=device, device_name=e.get("gpu") or (cpu if device == "cpu" else None),
                   driver=e.get("driver"), runtime=e.get("runtime"), emulated=e.get("emulated"),
                   batch_size=e.get("batch_size"), seq_len=e.get("seq_len"), lengths=e.get("lengths"))
        out.append(_record(src, key, b.get("name", "?"), when, commit.get("id") or e.get("suite_commit"),
                           commit.get("dirty"), _perf(figures, stats.get("data") or e.get("samples_s")), None))
    return out


def _report_records(src: Source) -> list[dict]:
    d = src.data
    s, suite = d["subject"], d.get("suite") or {}
    when = parse_time(d.get("started"), src.path)
    figures = d.get("figures") or {}
    accuracy = figures.get("accuracy")
    base = dict(harness=d.get("writer"), model=model_label(s.get("model")), weights=s.get("weights"),
                weights_sha256=s.get("weights_sha256"), backend=s.get("backend"), precision=s.get("precision"),
                device=device_kind(s.get("device")), device_name=s.get("gpu"), driver=s.get("driver"),
                runtime=s.get("runtime"), emulated=s.get("emulated"))
    out, placed = [], False
    for row in figures.get("perf") or []:
        here = (row.get("batch_size"), row.get("seq_len")) == (s.get("batch_size"), s.get("seq_len"))
        acc = accuracy if here and not placed else None
        placed = placed or acc is not None
        key = _key(**base, batch_size=row.get("batch_size"), seq_len=row.get("seq_len"), lengths=row.get("lengths"))
        out.append(_record(src, key, f"perf {row.get('batch_size')}x{row.get('seq_len')}", when,
                           suite.get("commit"), suite.get("dirty"), _perf(row, row.get("samples_s")), acc))
    if accuracy and not placed:
        key = _key(**base, batch_size=s.get("batch_size"), seq_len=s.get("seq_len"), lengths="evaluation")
        out.append(_record(src, key, "accuracy", when, suite.get("commit"), suite.get("dirty"), None, accuracy))
    return out


def _report_v1_records(src: Source) -> list[dict]:
    """The schema-less record of f22ec55's ``albert-ixrt run``: accuracy sits in its evaluate step's
    detail, the perf rows in the ``bench.json`` the run wrote beside it (listed in its ``files``)."""
    d = src.data
    m = d.get("model") or {}
    when = parse_time(d.get("started"), src.path)
    steps = {s.get("name"): s.get("detail") or {} for s in d["steps"] if isinstance(s, dict)}
    scores = (steps.get("evaluate") or {}).get("scores")
    runner = d.get("runner") or (steps.get("evaluate") or {}).get("runner") or {}
    bench = _v1_bench(src)
    env = bench.get("environment") or {}
    backend, device = runner.get("backend"), device_kind(runner.get("device"))
    base = dict(harness=d.get("writer"), model=model_label(m.get("model")), weights=m.get("weights"),
                weights_sha256=m.get("source_sha256"), backend=backend, precision=runner.get("precision"),
                device=device, device_name=env.get("gpu") or (env.get("cpu") if device == "cpu" else None),
                driver=None, runtime=f"torch {env['torch']}" if backend == "torch" and env.get("torch") else None,
                emulated=None)
    out, placed = [], False
    for row in bench.get("results") or []:
        if (row.get("backend"), row.get("precision")) != (backend, runner.get("precision")):
            continue
        lat = row.get("latency") or {}
        figures = {**row, **{f: lat.get(f) for f in ("p50_ms", "p90_ms", "p99_ms")}, "rounds": row.get("iterations")}
        acc = scores if not placed else None
        placed = True
        key = _key(**base, batch_size=row.get("batch_size"), seq_len=row.get("seq_len"), lengths=row.get("transfer"))
        out.append(_record(src, key, f"bench {row.get('batch_size')}x{row.get('seq_len')}", when, None, None,
                           _perf(figures, None), acc))
    if isinstance(scores, dict) and not placed:
        key = _key(**base, batch_size=None, seq_len=None, lengths="evaluation")
        out.append(_record(src, key, "accuracy", when, None, None, None, scores))
    return out


def _v1_bench(src: Source) -> dict:
    """The bench.json of a schema-less run folder, when the record lists it and it is there."""
    path = src.path.parent / "bench.json"
    if "bench.json" not in (src.data.get("files") or []) or not path.is_file():
        return {}
    try:
        bench = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = json_problem(exc) if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        raise InputFileError(path, problem) from None
    return bench if isinstance(bench, dict) else {}


def series_id(key: dict) -> str:
    """A short stable name of a series: the first 12 hex digits of its key's hash."""
    return sha256_json(key)[:12]


def _record(src: Source, key: dict, entry: str, when: datetime, commit, dirty, perf, accuracy) -> dict:
    acc = None
    if isinstance(accuracy, dict):
        acc = {k: accuracy.get(k) for k in (*ACCURACY_METRICS, "questions", "features")}
    subject = (f"{key['batch_size']}x{key['seq_len']} {key['lengths']}" if key.get("batch_size")
               else key.get("lengths") or entry)
    return {"history_schema": HISTORY_SCHEMA, "series": series_id(key), "key": key, "subject": subject,
            "night": when.date().isoformat(), "time": when.isoformat(), "commit": commit, "dirty": dirty,
            "source": {"kind": src.kind, "path": str(src.path), "sha256": src.sha256, "entry": entry},
            "perf": perf, "accuracy": acc}


def records_from(path: str | os.PathLike, night: str | None = None) -> list[dict]:
    """Every record of one source; ``night`` labels them (default: the UTC date of the source's run)."""
    src = read_source(path)
    build = {"pytest-benchmark": _benchmark_records, "report": _report_records, "report-v1": _report_v1_records}
    records = build[src.kind](src)
    if not records:
        raise InputFileError(src.path, "holds no perf rows and no accuracy figures: nothing to track")
    for r in records:
        if night:
            r["night"] = night
    return records


def record_id(record: dict) -> tuple[str, str]:
    """What makes a record unique: the content of its source and the entry within it."""
    return record["source"]["sha256"], record["source"]["entry"]


# --------------------------------------------------------------------------------------------
# The JSON-lines store
# --------------------------------------------------------------------------------------------
def _check_record(record, path, number: int) -> dict:
    if not isinstance(record, dict):
        raise InputFileError(path, f"line {number}: not a history record (a JSON object)")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise InputFileError(path, f"line {number}: not a history record (no {', '.join(missing)})")
    if not isinstance(record["history_schema"], int) or record["history_schema"] > HISTORY_SCHEMA:
        raise InputFileError(path, f"line {number}: history_schema {record['history_schema']!r} is newer than this "
                                   f"albert-ixrt reads ({HISTORY_SCHEMA}); upgrade albert-ixrt")
    return record


def parse_history(raw: bytes, path) -> list[dict]:
    """The records of a history file's bytes; the first damaged line is refused by its number."""
    if raw and not raw.endswith(b"\n"):
        number = raw.count(b"\n") + 1
        raise InputFileError(path, f"line {number}: no line end (a write was cut short); remove or repair the line")
    records = []
    for number, line in enumerate(raw.split(b"\n")[:-1] if raw else [], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputFileError(path, f"line {number}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise InputFileError(path, f"line {number}: {json_problem(exc).replace(' at line 1,', ' at')}") from None
        records.append(_check_record(record, path, number))
    return records


def load_history(path: str | os.PathLike, missing_ok: bool = False) -> list[dict]:
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return []
        raise InputFileError(p, "not found")
    if p.is_dir():
        raise InputFileError(p, "is a directory, not a history file")
    return parse_history(p.read_bytes(), p)


def append_records(path: str | os.PathLike, records: list[dict]) -> tuple[list[dict], int]:
    """Append the records not in the history yet; return (added, already there).

    Under a lock (``PATH.lock``: two nightly jobs adding at once), the whole file is checked first, so
    a damaged line refuses the add with nothing written; the new lines go in one write at the end of
    the file, and a write that fails part-way is cut back to the old length."""
    from filelock import FileLock

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(p) + ".lock"):
        known = {record_id(r) for r in load_history(p, missing_ok=True)}
        fresh = []
        for r in records:
            if record_id(r) not in known:
                known.add(record_id(r))
                fresh.append(r)
        if fresh:
            _append_lines(p, b"".join(json.dumps(r, ensure_ascii=False, sort_keys=False).encode("utf-8") + b"\n"
                                      for r in fresh))
    return fresh, len(records) - len(fresh)


def _append_lines(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, start)       # only the bytes this call wrote: earlier lines stay as they were
            raise
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Records -> series of nights
# --------------------------------------------------------------------------------------------
@dataclass
class Night:
    """One night of one series: the records of one night label and commit, pooled."""
    label: str
    commit: str | None
    time: str
    batch_size: int | None
    samples_s: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    reported_seq_per_s: list[float] = field(default_factory=list)
    accuracy: dict | None = None

    @property
    def seq_per_s(self) -> float | None:
        """sequences/s of the night's median round (rounds of every record of the night pooled): robust
        to the odd slow round that moves pytest-benchmark's mean-based ``ops``.  Without raw rounds, the
        recorded p50; without that, the recorded sequences/s."""
        batch = self.batch_size or 1
        if self.samples_s:
            return batch / statistics.median(self.samples_s)
        if self.p50_ms:
            return batch / (statistics.median(self.p50_ms) / 1000.0)
        return statistics.median(self.reported_seq_per_s) if self.reported_seq_per_s else None


@dataclass
class Series:
    id: str
    key: dict
    nights: list[Night]

    @property
    def title(self) -> str:
        return series_title(self.key)


def series_title(key: dict) -> str:
    """The series key in words, e.g. ``tiny (random weights) | torch fp32 on cpu AMD EPYC | batch 16 x 384,
    padded to 384 | by pytest-benchmark``; unknown fields are left out."""
    k = {f: v for f, v in key.items() if v not in (None, "")}
    about = [f"{k['weights']} weights"] if "weights" in k else []
    about += [f"sha256 {str(k['weights_sha256'])[:8]}"] if "weights_sha256" in k else []
    model = k.get("model", "model ?") + (f" ({', '.join(about)})" if about else "")
    where = " ".join(str(k[f]) for f in ("device", "device_name") if f in k) or "?"
    stack = ", ".join(f"{f} {k[f]}" for f in ("driver", "runtime") if f in k)
    run = (f"{k.get('backend', '?')} {k.get('precision', '?')} on {where}" + (f" ({stack})" if stack else "")
           + (" (emulated)" if k.get("emulated") else ""))
    shape = (f"batch {k.get('batch_size', '?')} x {k.get('seq_len', '?')}" if "batch_size" in k else "")
    shape = ", ".join(p for p in (shape, str(k.get("lengths", ""))) if p)
    return " | ".join(p for p in (model, run, shape, f"by {k.get('harness', '?')}") if p)


def _night_order(night: Night) -> datetime:
    return datetime.fromisoformat(night.time)


def group_series(records: list[dict]) -> list[Series]:
    """Records -> series (by key), each with its nights in time order (records of one night label and
    commit pooled: several GPUs of one kind the same night are one night's observation)."""
    series: dict[str, Series] = {}
    for r in records:
        s = series.setdefault(r["series"], Series(r["series"], r["key"], []))
        night = next((n for n in s.nights if (n.label, n.commit) == (r["night"], r.get("commit"))), None)
        if night is None:
            night = Night(r["night"], r.get("commit"), r["time"], r["key"].get("batch_size"))
            s.nights.append(night)
        night.time = min(night.time, r["time"], key=datetime.fromisoformat)
        perf = r.get("perf") or {}
        night.samples_s += perf.get("samples_s") or []
        if perf.get("p50_ms"):
            night.p50_ms.append(float(perf["p50_ms"]))
        if perf.get("sequences_per_s"):
            night.reported_seq_per_s.append(float(perf["sequences_per_s"]))
        if r.get("accuracy"):
            night.accuracy = r["accuracy"]
    for s in series.values():
        s.nights.sort(key=_night_order)
    return sorted(series.values(), key=lambda s: s.title)
