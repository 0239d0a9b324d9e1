"""The comparison report: our runs beside the DeepSparkInference reference row.

Reads every benchmark report (``albert-ixrt bench --json``) and every ``metrics.json``
(``albert-ixrt evaluate``) under a folder, and writes

- ``perf_report.md``: the reference table (Model | BatchSize | Precision | QPS | Exact Match |
  F1 Score) with seq/s, batches/s, backend, device and weights beside it, and the reference row;
- ``perf_report.json``: the same rows, machine-readable;
- ``throughput.png``: sequences/s against batch size, one line per runner, the reference marked.

Definitions kept straight: "QPS" is batches/s, as in the reference (50.99 at batch 16 = 815.8
sequences/s).  Exact Match / F1 are the ByteMLPerf-compatible figures, the reference's metric
(official ones are listed under the table).  A run with random weights has no accuracy: its
EM/F1 cells say so instead of showing numbers, and its rows are labelled.

Under run folders (``albert-ixrt run --out DIR``), each row names its run and its change against the
same row of the previous run of the same subject, a "Runs" table lists every run (date, commit,
subject, verdict, EM/F1 and their change), and a row's EM/F1 come from its own run only
(``run_changes.py``).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .bench import SCHEMA as BENCH_SCHEMA
from .bench import BenchReport, BenchResult
from .config import (DEFAULT_SQUAD, REFERENCE_BATCH_SIZE, REFERENCE_DEVICE, REFERENCE_EM_BYTEMLPERF,
                     REFERENCE_F1_BYTEMLPERF, REFERENCE_PRECISION, REFERENCE_QPS_BATCHES, REFERENCE_READING)

#: The reference row's sequence length (DeepSparkInference's ALBERT: SQuAD features of 384 tokens).
REFERENCE_SEQ_LEN = DEFAULT_SQUAD.max_seq_length
from .errors import AssetMissingError, InputFileError
from .fileio import atomic_path, write_json_atomic, write_text_atomic
from .run_changes import (FIRST_RUN, accuracy_change, commit_cell, in_staging, previous_of, run_accuracy, run_change,
                          run_of, run_throughput, runs_under, started_cell, throughput_change)
from .runs import RunEntry

REPORT_MD = "perf_report.md"
REPORT_JSON = "perf_report.json"
PLOT_PNG = "throughput.png"
NO_ACCURACY = "n/a (random weights)"
NOT_MEASURED = "—"
REFERENCE_MODEL = "ALBERT base (DeepSparkInference ixRT, reference)"


@dataclass
class ReportRow:
    model: str
    batch_size: int
    precision: str
    qps: float                     # batches/s ("QPS" of the reference)
    exact_match: float | str       # ByteMLPerf-compatible, or why there is no number
    f1: float | str
    sequences_per_s: float
    batches_per_s: float
    seq_len: int
    transfer: str
    backend: str
    device: str
    weights: str
    vs_reference: float | None = None   # our batches/s over the reference's, where comparable (see vs_reference)
    reference: bool = False
    vs_reference_note: str = ""         # why there is no ratio (or "reference")
    run: str = ""                       # the run folder the row comes from ("" when it is in none)
    run_started: str = ""               # that run's start, UTC
    commit: str = ""                    # the suite's commit that run recorded
    previous_run: str = ""              # the previous run of the same subject, if any
    change: str = ""                    # against the same row of previous_run (sequences/s, EM/F1), in words
    sequences_per_s_change: float | None = None


def reference_row() -> ReportRow:
    return ReportRow(REFERENCE_MODEL, REFERENCE_BATCH_SIZE, REFERENCE_PRECISION, REFERENCE_QPS_BATCHES,
                     REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF, REFERENCE_QPS_BATCHES * REFERENCE_BATCH_SIZE,
                     REFERENCE_QPS_BATCHES, REFERENCE_SEQ_LEN, "device only (trtexec-style)", "ixrt", REFERENCE_DEVICE,
                     "real", 1.0, True, "reference")


#: Models whose speed says nothing about ALBERT base's (a different architecture).
NOT_ALBERT_BASE = ("tiny",)


def vs_reference(result: BenchResult) -> tuple[float | None, str]:
    """(our batches/s over the reference's, or None with the reason).  The ratio is shown only for
    a like-for-like shape: ALBERT base (real weights or its random-weight shape twin, same cost), on
    an accelerator, at the reference's batch size and sequence length.  A CPU row, another batch
    size, or the tiny self-test model would give a ratio that compares nothing (0.03x on a CPU)."""
    if result.model in NOT_ALBERT_BASE:
        return None, f"n/a ({result.model} model, not ALBERT base)"
    if str(result.device).lower().startswith("cpu"):
        return None, f"n/a (CPU; reference is an {REFERENCE_DEVICE})"
    if result.batch_size != REFERENCE_BATCH_SIZE:
        return None, f"n/a (batch {result.batch_size}; reference is batch {REFERENCE_BATCH_SIZE})"
    if result.seq_len != REFERENCE_SEQ_LEN:
        return None, f"n/a (seq {result.seq_len}; reference is seq {REFERENCE_SEQ_LEN})"
    return result.batches_per_s / REFERENCE_QPS_BATCHES, ""


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
LOADGEN_SCHEMA = "albert-ixrt/loadgen/1"


@dataclass
class Inputs:
    bench: list[tuple[Path, BenchReport]]
    metrics: list[tuple[Path, dict]]
    loadgen: list[tuple[Path, dict]] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)   # run folders found (run_changes), oldest first
    root: Path | None = None          # the folder they were collected from

    def relative(self, path: Path) -> Path:
        """``path`` relative to the collected folder (as it is when it lies elsewhere)."""
        try:
            return path.relative_to(self.root) if self.root is not None else path
        except ValueError:
            return path

    def sources(self) -> list[Path]:
        return [p for p, _ in self.bench + self.metrics + self.loadgen]


def _json_files(folder: Path) -> list[Path]:
    """JSON files under ``folder``, not through symlinks (``latest``) nor inside a run's staging folder."""
    skip = {REPORT_JSON}
    return sorted(p for p in folder.rglob("*.json") if p.name not in skip and p.is_file() and not in_staging(p, folder))


#: The score keys a metrics.json from `albert-ixrt evaluate` carries.
METRICS_KEYS = ("exact_match", "f1", "bytemlperf_exact_match", "bytemlperf_f1")


def collect(folder: str | os.PathLike) -> Inputs:
    """Every benchmark report and ``metrics.json`` under ``folder`` (other JSON files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AssetMissingError(f"report folder not found: {folder}")
    bench, metrics, loadgen = [], [], []
    for path in _json_files(folder):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            if path.name in ("bench.json", "metrics.json"):   # ours, and unreadable: say so
                raise InputFileError(path, f"unreadable ({exc})") from None
            continue                                         # someone else's JSON: not ours to judge
        if isinstance(data, dict) and data.get("schema") == BENCH_SCHEMA:
            try:
                bench.append((path, BenchReport.from_dict(data)))
            except (KeyError, TypeError, ValueError) as exc:
                raise InputFileError(path, f"benchmark report with a malformed body (missing or bad {exc})") from None
        elif path.name == "metrics.json" and isinstance(data, dict) and isinstance(data.get("scores"), dict):
            missing = [k for k in METRICS_KEYS if k not in data["scores"]]
            if missing:
                raise InputFileError(path, f"metrics file lacks scores {missing}")
            metrics.append((path, data))
        elif isinstance(data, dict) and data.get("schema") == LOADGEN_SCHEMA:
            loadgen.append((path, data))
    return Inputs(bench, metrics, loadgen, runs=runs_under(folder), root=folder)


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------
def metrics_weights(m: dict) -> str:
    return str((m.get("model") or {}).get("weights") or m.get("runner", {}).get("weights") or "unknown")


def accuracy_for(result: BenchResult, metrics: list[dict]) -> tuple[float | str, float | str]:
    """(EM, F1) of the evaluation of the same model, backend and precision, if any; never from random weights.
    An evaluation that does not name its model (or a bench row that does not) is no evidence for a row."""
    if result.weights == "random":
        return NO_ACCURACY, NO_ACCURACY
    for m in metrics:
        runner = m.get("runner", {})
        evaluated = (m.get("model") or {}).get("model")
        if not evaluated or evaluated != result.model:
            continue  # another model's evaluation, or one that cannot be told apart
        if runner.get("backend") == result.backend and runner.get("precision") == result.precision:
            if metrics_weights(m) != "real":
                return NO_ACCURACY, NO_ACCURACY
            s = m["scores"]
            return float(s["bytemlperf_exact_match"]), float(s["bytemlperf_f1"])
    return NOT_MEASURED, NOT_MEASURED


def model_label(result: BenchResult) -> str:
    name = result.model or "?"
    if name.endswith(".json"):
        name = Path(name).parent.name or name
    return f"{name} [random weights]" if result.weights == "random" else name


def rows_for(inputs: Inputs) -> list[ReportRow]:
    """One row per bench result; a result in a run folder takes EM/F1 only from that run's evaluation,
    is named by its run and compared with the same row of the previous run of its subject."""
    rows, row_run = [], {}
    for path, report in inputs.bench:
        run = run_of(path, inputs.runs)
        metrics = [m for p, m in inputs.metrics if run_of(p, inputs.runs) == run]
        for r in report.results:
            em, f1 = accuracy_for(r, metrics)
            vs, why = vs_reference(r)
            row = ReportRow(model_label(r), r.batch_size, r.precision, r.batches_per_s, em, f1,
                            r.sequences_per_s, r.batches_per_s, r.seq_len, r.transfer, r.backend, r.device,
                            r.weights, vs, False, why)
            if run is not None:
                row.run, row.run_started, row.commit = run.name, started_cell(run), commit_cell(run)
            rows.append(row)
            row_run[id(row)] = run
    for row in rows:
        _compare_with_previous_run(row, row_run[id(row)], rows, row_run, inputs.runs)
    order = {r.folder: i for i, r in enumerate(inputs.runs)}
    rows.sort(key=lambda x: (x.model, x.backend, x.precision, x.seq_len, x.transfer, x.batch_size,
                             order.get(getattr(row_run[id(x)], "folder", None), -1)))
    return rows + [reference_row()]


def _compare_with_previous_run(row: ReportRow, run: RunEntry | None, rows, row_run, runs) -> None:
    """Fill ``row.change``: sequences/s (and EM/F1 where both rows have numbers) against the row of
    the same batch, length and transfer in the previous run of the same subject."""
    if run is None:
        return
    previous = previous_of(run, runs)
    if previous is None:
        row.change = FIRST_RUN
        return
    row.previous_run = previous.name
    same = [r for r in rows if row_run[id(r)] is previous and (r.backend, r.precision, r.batch_size, r.seq_len,
                                                                 r.transfer) ==
            (row.backend, row.precision, row.batch_size, row.seq_len, row.transfer)]
    if not same:
        row.change = f"not measured in {previous.name}"
        return
    before = same[0]
    row.sequences_per_s_change = row.sequences_per_s - before.sequences_per_s
    accuracy = accuracy_change((row.exact_match, row.f1) if isinstance(row.exact_match, float) else None,
                               (before.exact_match, before.f1) if isinstance(before.exact_match, float) else None)
    row.change = ", ".join(p for p in (throughput_change(row.sequences_per_s, before.sequences_per_s), accuracy)
                           if p) + f" vs {previous.name}"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def markdown_table(rows: list[ReportRow]) -> str:
    """The reference's columns first; "Run" and the change against the previous run of the same
    subject last, when any row comes from a run folder."""
    head = ["Model", "BatchSize", "Precision", "QPS", "Exact Match", "F1 Score", "seq/s", "batches/s", "SeqLen",
            "Transfer", "Backend", "Device", "Weights", "vs reference (batches/s)"]
    named = any(r.run for r in rows)
    if named:
        head += ["Run", "Change vs previous run of this subject"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = f"**{r.model}**" if r.reference else r.model
        vs = f"{r.vs_reference:.2f}x" if r.vs_reference is not None else r.vs_reference_note
        cells = [name, str(r.batch_size), r.precision.upper(), _cell(r.qps), _cell(r.exact_match), _cell(r.f1),
                 f"{r.sequences_per_s:.1f}", _cell(r.batches_per_s), str(r.seq_len), r.transfer, r.backend, r.device,
                 r.weights, vs]
        if named:
            cells += [r.run or NOT_MEASURED, r.change or NOT_MEASURED]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def official_scores_lines(inputs: Inputs, shown_as: Path | None = None) -> list[str]:
    """One line per evaluation, named by its folder relative to the results folder (the results folder's
    own name, ``shown_as``'s when given, for one at its top)."""
    lines = []
    shown = Path(shown_as) if shown_as is not None else inputs.root
    for path, m in inputs.metrics:
        s, runner = m["scores"], m.get("runner", {})
        weights = metrics_weights(m)
        folder = inputs.relative(path).parent
        if folder != Path("."):
            where = folder.as_posix()
        else:
            where = (shown.name or str(shown)) if shown is not None else str(path)
        what = f"{runner.get('backend', '?')}/{runner.get('precision', '?')} ({where})"
        if weights != "real":
            lines.append(f"- {what}: {weights} weights — scores not shown (they measure nothing about accuracy)")
        else:
            lines.append(f"- {what}: official SQuAD v1.1 EM {s['exact_match']:.2f} / F1 {s['f1']:.2f}; "
                         f"ByteMLPerf-compatible EM {s['bytemlperf_exact_match']:.2f} / F1 {s['bytemlperf_f1']:.2f}")
    return lines


def run_summaries(inputs: Inputs) -> list[dict]:
    """One entry per run found, oldest first: when, which commit, which subject, its verdict, its
    EM/F1 and the change against the previous run of the same subject (run_changes)."""
    metrics = {r.folder: [m for p, m in inputs.metrics if run_of(p, inputs.runs) == r] for r in inputs.runs}
    bench = {r.folder: [res for p, rep in inputs.bench if run_of(p, inputs.runs) == r for res in rep.results]
             for r in inputs.runs}
    accuracy = {r.folder: run_accuracy(r, metrics[r.folder]) for r in inputs.runs}
    throughput = {r.folder: run_throughput(r, bench[r.folder]) for r in inputs.runs}
    out = []
    for r in inputs.runs:
        previous = previous_of(r, inputs.runs)
        acc = accuracy[r.folder]
        out.append({"run": r.name, "folder": str(r.folder), "started": started_cell(r), "commit": r.commit,
                    "dirty": r.dirty, "subject": r.subject, "weights": r.weights, "backend": r.backend,
                    "precision": r.precision, "device": r.device, "verdict": r.verdict, "schema": r.schema,
                    "exact_match": acc[0] if isinstance(acc, tuple) else acc,
                    "f1": acc[1] if isinstance(acc, tuple) else acc,
                    "previous_run": previous.name if previous else None,
                    "change": run_change(r, previous, accuracy, throughput), "commit_cell": commit_cell(r)})
    return out


def runs_lines(summaries: list[dict]) -> list[str]:
    lines = ["| Run | Started (UTC) | Commit | Subject | Backend | Precision | Device | Verdict | Exact Match | "
             "F1 Score | Change vs previous run of this subject |", "|" + "---|" * 11]
    for s in summaries:
        cells = [s["run"], s["started"], s["commit_cell"], s["subject"] or "unknown", s["backend"] or "?",
                 s["precision"] or "?", s["device"] or "?", s["verdict"] or "?", _cell(s["exact_match"]),
                 _cell(s["f1"]), s["change"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


#: After a quick run's verdict: never "VALID [... not meant to be VALID]".
QUICK_VERDICT_NOTE = {True: " [quick run]", False: " [quick run: too short for MLPerf's rules, as expected]"}


def loadgen_lines(inputs: Inputs) -> list[str]:
    lines = ["| Scenario | Backend | Precision | samples/s | p90 latency ms | samples | LoadGen verdict | Weights |",
             "|---|---|---|---|---|---|---|---|"]
    for _, d in inputs.loadgen:
        runner = d.get("runner", {})
        weights = ((d.get("settings") or {}).get("model") or {}).get("weights", runner.get("weights", "unknown"))
        p90 = (d.get("latency_ns") or {}).get("90.00")
        failed = [f"{k}: {v}" for k, v in (d.get("checks") or {}).items() if str(v).lower() != "yes"]
        verdict = {True: "VALID", False: "INVALID" + (f" ({', '.join(failed)})" if failed else "")}.get(
            d.get("valid"), "?") + (QUICK_VERDICT_NOTE[d.get("valid") is True] if d.get("mode") == "quick" else "")
        rate = d.get("samples_per_second")
        lines.append(f"| {d.get('scenario')} | {runner.get('backend', '?')} | {runner.get('precision', '?')} | "
                     f"{rate if rate is None else f'{rate:.2f}'} | {'' if p90 is None else f'{p90 / 1e6:.2f}'} | "
                     f"{d.get('samples_issued')} | {verdict} | {weights} |")
    return lines


def render_markdown(rows: list[ReportRow], inputs: Inputs, notes: list[str] | tuple[str, ...] = (),
                    shown_as: str | os.PathLike | None = None) -> str:
    """perf_report.md.  ``shown_as``: the folder to name for the collected one (default: that folder)."""
    shown = Path(shown_as) if shown_as is not None else inputs.root
    machines = {(rep.environment.get("cpu"), rep.environment.get("gpu")) for _, rep in inputs.bench}
    random_rows = any(r.weights == "random" for r in rows)
    parts = [
        "# ALBERT SQuAD v1.1: throughput and accuracy against the reference", "",
        f"Reference: DeepSparkInference ALBERT (ixRT) on an {REFERENCE_DEVICE}: {REFERENCE_PRECISION.upper()}, batch "
        f"{REFERENCE_BATCH_SIZE}, QPS {REFERENCE_QPS_BATCHES} where one query = one batch of {REFERENCE_BATCH_SIZE} "
        f"(= {REFERENCE_QPS_BATCHES * REFERENCE_BATCH_SIZE:.1f} sequences/s), EM {REFERENCE_EM_BYTEMLPERF} / F1 "
        f"{REFERENCE_F1_BYTEMLPERF} (ByteMLPerf-compatible metric).", "",
        f"How the reference row is read: {REFERENCE_READING}.", "",
        "QPS = batches/s. Exact Match / F1 are ByteMLPerf-compatible (sums over questions / number of features), "
        "as in the reference.", "",
        markdown_table(rows), "",
        "\"vs reference\" is our batches/s over the reference's, shown only for ALBERT base on an accelerator at "
        f"the reference's batch size {REFERENCE_BATCH_SIZE} and sequence length {REFERENCE_SEQ_LEN}; other rows say "
        "why they are not compared.", "",
    ]
    if not inputs.bench:
        parts += ["No benchmark results were found, so the table holds only the reference row "
                  "(throughput comes from `albert-ixrt bench --json` files or the run's bench step).", ""]
    if inputs.runs:
        parts += ["## Runs", "", "Every run found, oldest first. Exact Match / F1 are ByteMLPerf-compatible and shown "
                  "for real weights only; a change compares a run with the previous run of the same model, backend, "
                  "precision and device.", "", *runs_lines(run_summaries(inputs)), ""]
    parts += [f"Note: {n}" for n in notes] + ([""] if notes else [])
    if random_rows:
        parts += ["Rows marked [random weights] measure speed only: a random-weight model has no accuracy, so its "
                  f"Exact Match / F1 read \"{NO_ACCURACY}\".", ""]
    official = official_scores_lines(inputs, shown)
    if official:
        parts += ["## Evaluations found", "", *official, ""]
    if inputs.loadgen:
        parts += ["## MLPerf LoadGen runs", "", *loadgen_lines(inputs), ""]
    parts += ["## Sources", "", *([f"In `{shown}`:", ""] if shown is not None else []),
              *[f"- `{inputs.relative(p).as_posix()}`" for p in inputs.sources()], ""]
    if len(machines) > 1:
        parts += ["Note: these runs come from different machines; compare rows of one machine only.", ""]
    parts += [f"![throughput vs batch size]({PLOT_PNG})", ""]
    return "\n".join(parts)


def decade_limits(values) -> tuple[float, float]:
    """Whole decades enclosing ``values`` (all > 0): a log axis with these limits has a labelled
    tick at or below its lowest point and at or above its highest (matplotlib's automatic limits
    stop just outside the data, leaving the lowest point under the lowest labelled decade)."""
    import math

    lo, hi = min(values), max(values)
    if not (lo > 0):
        raise ValueError(f"log axis needs positive values, got {lo}")
    bottom, top = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
    return bottom, (top * 10 if top == bottom else top)


def series_caveat(rows: list[ReportRow]) -> str:
    """What a plotted line is not, in words for its legend entry: the self-test model, random
    weights, and why it cannot be held against the reference ("" for a like-for-like line)."""
    first = rows[0]
    parts = []
    if any(r.vs_reference_note.startswith("n/a (tiny") or r.model.split(" ")[0] in NOT_ALBERT_BASE for r in rows):
        parts.append("self-test model, not ALBERT base")
    elif any(r.weights == "random" for r in rows):
        parts.append("random weights: speed only")
    if all(r.vs_reference is None for r in rows):
        why = next((r.vs_reference_note for r in rows if r.batch_size == REFERENCE_BATCH_SIZE), first.vs_reference_note)
        why = why.removeprefix("n/a (").removesuffix(")")
        if not why.startswith("tiny"):
            parts.append(why)
        parts.append("not comparable with the reference")
    return "; ".join(parts)


def empty_plot_reason(notes=()) -> str:
    """Why the plot has no line of ours: the run's own note (e.g. its bench step was skipped), else
    that no benchmark report was found."""
    for note in notes:
        if "throughput" in note.lower() or "bench" in note.lower():
            return note
    return ("No throughput rows: no benchmark results (`albert-ixrt bench --json`, or a run's bench step) were "
            "found; only the reference is shown.")


def throughput_figure(rows: list[ReportRow], notes=()):
    """The throughput plot as a matplotlib figure (``plot_throughput`` saves it).  What cannot be
    compared with the reference says so on the image, and an empty plot says why it is empty."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

    series: dict[str, list[ReportRow]] = {}
    for r in rows:
        if r.reference or not r.sequences_per_s > 0:
            continue
        key = f"{r.model} {r.backend}/{r.precision} seq{r.seq_len} {r.transfer}" + (f" [{r.run}]" if r.run else "")
        series.setdefault(key, []).append(r)
    fig, ax = plt.subplots(figsize=(9, 6))
    for key, points in sorted(series.items()):
        points.sort(key=lambda r: r.batch_size)
        caveat = series_caveat(points)
        ax.plot([p.batch_size for p in points], [p.sequences_per_s for p in points], marker="o",
                linestyle="--" if caveat else "-", label=key + (f"\n  ({caveat})" if caveat else ""))
    ref = reference_row()
    ax.scatter([ref.batch_size], [ref.sequences_per_s], marker="*", s=200, color="black",
               label=f"reference {REFERENCE_DEVICE} {REFERENCE_PRECISION.upper()}: {REFERENCE_QPS_BATCHES} batches/s "
                     f"at batch {REFERENCE_BATCH_SIZE} = {ref.sequences_per_s:.0f} seq/s\n  (the DeepSparkInference "
                     f"ALBERT README's BatchSize 1 reading would be {REFERENCE_QPS_BATCHES} seq/s)")
    if not series:
        ax.text(0.5, 0.5, textwrap.fill(empty_plot_reason(notes), 60), transform=ax.transAxes, ha="center",
                va="center", fontsize=10, bbox={"boxstyle": "round", "facecolor": "#fff3cd", "edgecolor": "#c9a227"})
    ys = [p.sequences_per_s for pts in series.values() for p in pts] + [ref.sequences_per_s]
    xs = sorted({p.batch_size for pts in series.values() for p in pts} | {ref.batch_size})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(xs))          # the batch sizes measured, as plain numbers
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(xs[0] / 1.5, xs[-1] * 1.5)
    ax.set_yscale("log")
    ax.set_ylim(*decade_limits(ys))                        # labelled decades below and above every point
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=20))
    ax.set_xlabel("batch size")
    ax.set_ylabel("sequences / s")
    ax.set_title("ALBERT SQuAD throughput vs batch size")
    ax.grid(True, which="both", alpha=0.3)
    # Below the axes: the legend's caveats are read beside every line, never drawn over one.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), borderaxespad=0.0, frameon=False)
    fig.tight_layout()
    return fig


def plot_throughput(rows: list[ReportRow], dest: Path, notes=()) -> Path:
    """sequences/s against batch size, one line per (model, backend, precision, seq, transfer)."""
    import matplotlib.pyplot as plt

    fig = throughput_figure(rows, notes)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight")   # the legend below the axes included
    plt.close(fig)
    return dest


def write_report(folder: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                 notes: list[str] | tuple[str, ...] = (), *,
                 shown_as: str | os.PathLike | None = None) -> dict[str, Path]:
    """Collect ``folder`` and write the three report files into ``out_dir`` (default: ``folder``);
    ``notes`` (e.g. why this run has no throughput rows) are shown under the table.

    The reports name their sources relative to ``folder``, which they call ``shown_as`` (default: ``folder``
    itself): a run that writes into a staging folder, renamed to its --out at the end, passes that --out, so
    nothing names the staging folder, which is gone by the time anyone reads the report."""
    inputs = collect(folder)
    if not inputs.bench and not inputs.metrics and not inputs.loadgen and not inputs.runs:
        raise AssetMissingError(f"no benchmark reports (albert-ixrt bench --json) or metrics.json under {folder}")
    out = Path(out_dir or folder)
    rows = rows_for(inputs)
    shown = Path(shown_as) if shown_as is not None else Path(folder)
    md = write_text_atomic(out / REPORT_MD, render_markdown(rows, inputs, notes, shown))
    js = write_json_atomic(out / REPORT_JSON, {
        "schema": "albert-ixrt/report/1", "qps_definition": "batches per second (one query = one batch)",
        "accuracy_metric": "ByteMLPerf-compatible exact match / F1",
        "rows": [asdict(r) for r in rows], "notes": list(notes), "loadgen": [d for _, d in inputs.loadgen],
        "runs": run_summaries(inputs),
        "sources": [str(shown / inputs.relative(p)) for p in inputs.sources()]})
    png = plot_throughput(rows, out / PLOT_PNG, notes)
    return {"markdown": md, "json": js, "plot": png}
