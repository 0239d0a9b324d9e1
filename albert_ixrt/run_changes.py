"""Which run each result of ``albert-ixrt report PARENT`` comes from, and what changed against the
previous run of the same subject.

A *run* is a folder holding a run record (``report.json`` of ``albert-ixrt run``, either schema:
``runs.py``): the dated folders of a results folder, or a folder of the layout before them.  A
result file belongs to the deepest run folder above it.  "The same subject" is the same model,
backend, precision and device (``RunEntry.subject_key``); "the previous run" is the newest run of
that subject that started before (runs ordered as ``runs.list_runs`` orders them).

Changes are differences of what both runs measured: sequences/s for the same batch size, sequence
length and transfer mode, and the ByteMLPerf-compatible EM / F1 (the reference's metric) of runs
with real weights; anything else is said in words, never shown as a number.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .runs import REPORT, STAGING_PREFIX, RunEntry, read_record, run_entry

#: EM / F1 keys of the reference's metric, in metrics.json "scores" and schema 2's figures.accuracy.
EM_KEY, F1_KEY = "bytemlperf_exact_match", "bytemlperf_f1"
FIRST_RUN = "first run of this subject"


def in_staging(path: Path, root: Path) -> bool:
    """A path inside a run's staging folder (a run still writing, or one that was killed): not a result."""
    return any(part.startswith(STAGING_PREFIX) for part in path.relative_to(root).parts)


def runs_under(folder: str | os.PathLike) -> list[RunEntry]:
    """Every run folder under ``folder`` (itself included), oldest first; staging folders and
    symlinks (``latest``) are not followed, so each run is found once."""
    folder = Path(folder)
    found = []
    records = []
    for root, dirs, files in os.walk(folder):  # followlinks=False: `latest` is not a second copy of a run
        dirs[:] = [d for d in dirs if not d.startswith(STAGING_PREFIX)]
        records += [Path(root) / REPORT] if REPORT in files else []
    for record_path in sorted(records):
        data = read_record(record_path.parent)
        if data is not None:
            entry = run_entry(record_path.parent, data)
            if record_path.parent == folder and folder.is_symlink():  # `report DIR/latest`: the run's own name
                entry = replace(run_entry(folder.resolve(), data), folder=folder)
            found.append(entry)
    return sorted(found, key=lambda r: r.order)


def run_of(path: Path, runs: list[RunEntry]) -> RunEntry | None:
    """The run whose folder holds ``path`` (the deepest one), or None."""
    holders = [r for r in runs if r.folder == path.parent or r.folder in path.parents]
    return max(holders, key=lambda r: len(r.folder.parts), default=None)


def previous_of(run: RunEntry, runs: list[RunEntry]) -> RunEntry | None:
    """The newest run of the same subject that started before ``run``."""
    earlier = [r for r in runs if r.subject_key == run.subject_key and r.order < run.order]
    return earlier[-1] if earlier else None


def run_accuracy(run: RunEntry, metrics: list[dict]) -> tuple[float, float] | str:
    """The run's ByteMLPerf-compatible (EM, F1), or why there is none: schema 2's figures, else the
    run's own metrics.json; only for real weights (random or known-answer weights measure nothing)."""
    weights = run.weights or next((str((m.get("model") or {}).get("weights")) for m in metrics
                                   if (m.get("model") or {}).get("weights")), None)
    if weights != "real":
        return f"n/a ({weights or 'unknown'} weights)"
    figures = ((run.record or {}).get("figures") or {}).get("accuracy") or {}
    for scores in [figures, *[m.get("scores") or {} for m in metrics]]:
        if isinstance(scores.get(EM_KEY), (int, float)) and isinstance(scores.get(F1_KEY), (int, float)):
            return float(scores[EM_KEY]), float(scores[F1_KEY])
    return "not measured"


def run_throughput(run: RunEntry, bench_rows) -> dict[tuple, float]:
    """sequences/s by (batch size, sequence length, transfer): the run's bench rows, else schema 2's
    figures.perf (transfer as the record says it, "with_copies" when it does not)."""
    out = {(r.batch_size, r.seq_len, r.transfer): r.sequences_per_s for r in bench_rows}
    if not out:
        for p in ((run.record or {}).get("figures") or {}).get("perf") or []:
            try:
                out[(int(p["batch_size"]), int(p["seq_len"]), str(p.get("transfer", "with_copies")))] = \
                    float(p["sequences_per_s"])
            except (KeyError, TypeError, ValueError):
                continue
    return out


def throughput_change(now: float, before: float) -> str:
    pct = f" ({(now / before - 1) * 100:+.1f} %)" if before > 0 else ""
    return f"seq/s {now - before:+.1f}{pct}"


def accuracy_change(now, before) -> str | None:
    """'EM +0.10, F1 -0.05', or None unless both runs have numbers."""
    if isinstance(now, tuple) and isinstance(before, tuple):
        return f"EM {now[0] - before[0]:+.2f}, F1 {now[1] - before[1]:+.2f}"
    return None


def run_change(run: RunEntry, previous: RunEntry | None, accuracy: dict, throughput: dict) -> str:
    """The runs table's cell: EM/F1 and sequences/s (at the largest batch both measured) against
    ``previous``; ``accuracy``/``throughput`` map run folders to ``run_accuracy``/``run_throughput``."""
    if previous is None:
        return FIRST_RUN
    parts = [accuracy_change(accuracy[run.folder], accuracy[previous.folder])]
    now, before = throughput[run.folder], throughput[previous.folder]
    common = sorted(set(now) & set(before))
    if common:
        key = max(common, key=lambda k: (k[0], k[1], k[2] == "with_copies"))
        parts.append(f"{throughput_change(now[key], before[key])} at batch {key[0]}")
    parts = [p for p in parts if p]
    return f"{'; '.join(parts) if parts else 'no figure both runs measured'} vs {previous.name}"


def commit_cell(run: RunEntry) -> str:
    if not run.commit:
        return "not recorded"
    return run.commit[:10] + (" (dirty)" if run.dirty else "")


def started_cell(run: RunEntry) -> str:
    return run.started.strftime("%Y-%m-%d %H:%M:%S") if run.started else "unknown"
