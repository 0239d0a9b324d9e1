"""The sign-off record: what a session judged, written the same way by both doors.

``record(session, writer)`` is the report.json dict (schema 2): the subject resolved (model path,
weights / tokenizer / dev set sha256, backend, precision, the device actually used, the GPU and driver,
the runtime and whether it is emulated), the suite's version and commit, every step and item with its
verdict and figures, and the verdict line.  ``write_record`` writes it into a folder with report.md
and the evidence files (equivalence.json, predictions.json + metrics.json, bench.json, perf_report.*,
onnx/ with the judged graphs).  ``render_markdown`` and ``summary`` are built from the dict alone,
so a failed or partial session renders the same way.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ..fileio import write_json_atomic, write_text_atomic
from .results import SIGNED_OFF
from .session import Session

SCHEMA = 2


def _runner_description(session: Session) -> dict:
    runner = session.peek("runner")
    return runner.describe() if runner is not None else {}


def subject_record(session: Session) -> dict:
    """The subject as judged: what was named, resolved, hashed, and what actually ran it."""
    from .subject import gpu_identity

    s = session.plan.subject
    loaded = session.peek("subject")
    out = {"named": s.named, "named_by": s.named_by, "model": s.model, "backend": s.backend,
           "precision": s.precision, "device_asked": s.device, "reference_device": s.reference_device,
           "batch_size": session.plan.feeds.eval_batch, "seq_len": session.plan.feeds.seq_len}
    if loaded is not None:
        out.update(loaded.describe())
    from .subject import file_sha256

    for kind in ("onnx", "engine"):                  # the user's own artefact, the subject itself
        if getattr(s, kind):
            out.update({kind: getattr(s, kind), f"{kind}_sha256": file_sha256(getattr(s, kind))})
    runner = _runner_description(session)
    device = str(runner["device"]) if runner.get("device") else resolved(s)
    out.update(device=device, runtime=runtime_label(runner, s.backend), emulated=runner.get("emulated") or False,
               engine=runner.get("engine"), graph=runner.get("onnx"), **gpu_identity(device))
    return out


def resolved(subject) -> str:
    """The device the subject runs on when no runner was built yet ("auto" resolved), or what was asked."""
    from ..errors import BackendUnavailable
    from .plan import device_in_use

    try:
        return device_in_use(subject.backend, subject.device)
    except BackendUnavailable:
        return subject.device


def runtime_label(runner: dict, backend: str) -> str | None:
    """What runs the subject, with its version: the engine library's label (emulated ones say so), or
    onnxruntime's or torch's version (asked of the library when no runner was built)."""
    if runner.get("tensorrt"):
        return str(runner["tensorrt"])
    if backend == "onnxruntime":
        import onnxruntime

        return f"onnxruntime {runner.get('onnxruntime') or onnxruntime.__version__}"
    if backend == "torch":
        import torch

        return f"torch {torch.__version__}"
    try:
        from ..trt_api import emulation_label, import_module

        module, _ = import_module(backend)
        return emulation_label(module) or f"{'ixRT' if backend == 'ixrt' else 'TensorRT'} {module.__version__}"
    except (ImportError, AttributeError):
        return None


def figures_record(session: Session) -> dict:
    steps = {r.name: r for r in session.results()}
    accuracy = None
    if "evaluate" in steps and steps["evaluate"].figures:
        f = steps["evaluate"].figures
        accuracy = {k: f.get(k) for k in ("exact_match", "f1", "bytemlperf_exact_match", "bytemlperf_f1",
                                          "questions", "features")}
    perf = [{"item": i.name, "status": i.status, **i.figures}
            for i in (steps["perf"].items if "perf" in steps else [])]
    return {"accuracy": accuracy, "perf": perf}


def record(session: Session, writer: str, finished: str | None = None, state: str = "finished",
           verdict=None) -> dict:
    """report.json of ``session`` (schema 2); ``verdict``: the door's (pytest's, from its test outcomes,
    the same rule), else the session's own."""
    from .session import _now
    from .subject import suite_identity

    verdict = verdict or session.verdict()
    return {"schema": SCHEMA, "writer": writer, "state": state, "started": session.started,
            "finished": finished or _now(), "suite": suite_identity(), "subject": subject_record(session),
            "options": session.plan.options.given(), "plan": session.plan.summary(),
            "requested": session.requested, "title": title(session), "verdict": verdict.as_dict(),
            "runner": _runner_description(session),
            "passed": verdict.status == SIGNED_OFF,
            "steps": [r.as_dict() for r in session.results()], "figures": figures_record(session)}


def title(session: Session) -> str:
    """The report's title: the subject, "emulated" first where the engine is the stand-in."""
    reasons = [r for r in session.subject_reasons() if "emulated" in r]
    head = "EMULATED ENGINE: " if reasons else ""
    return head + session.plan.subject.describe()


# ---------------------------------------------------------------------------------------------
# Files of a record folder
# ---------------------------------------------------------------------------------------------
def write_evidence(session: Session, folder: Path) -> list[str]:
    """The evidence files beside the report: equivalence.json, predictions.json + metrics.json,
    bench.json (never for an emulated engine), onnx/ (the judged graphs, hard-linked from the cache
    where possible).  Returns the relative paths written."""
    written = []
    steps = {r.name: r for r in session.results()}
    eq = steps.get("equivalence")
    if eq is not None and eq.detail.get("equivalence"):
        write_json_atomic(folder / "equivalence.json", eq.detail["equivalence"])
        written.append("equivalence.json")
    evaluation = session.peek("evaluation")
    if evaluation is not None:
        evaluation.write(folder)
        written += ["predictions.json", "metrics.json"]
    bench = bench_report(session)
    if bench is not None:
        bench.write(folder / "bench.json")
        written.append("bench.json")
    written += link_graphs(session, folder)
    return written


def bench_report(session: Session):
    """The perf items as a ``bench.BenchReport`` (what ``albert-ixrt report`` and perf_report read), or
    None when nothing was timed or the engine is emulated (its timings are never published)."""
    from ..bench import BenchReport, BenchResult, LatencyStats, environment

    perf = next((r for r in session.results() if r.name == "perf"), None)
    runner = _runner_description(session)
    timed = [i for i in (perf.items if perf else []) if i.figures.get("samples_s")]
    if not timed or runner.get("emulated"):
        return None
    model = session.artefact("subject").model.describe()
    results = [BenchResult(backend=str(runner.get("backend")), precision=str(runner.get("precision")),
                           device=str(runner.get("device", "cpu")), batch_size=f["batch_size"], seq_len=f["seq_len"],
                           transfer="with_copies", iterations=f["rounds"], seconds=float(sum(f["samples_s"])),
                           batches_per_s=f["batches_per_s"], sequences_per_s=f["sequences_per_s"],
                           latency=LatencyStats.from_seconds(f["samples_s"]),
                           throughput_method="1 / mean latency (synchronous calls)", stopped_by="count",
                           weights=model.get("weights", "unknown"), model=model.get("model", ""), runner=runner,
                           feed={"lengths": f.get("lengths"), "real_tokens_mean": f.get("real_tokens_mean")})
               for f in (i.figures for i in timed)]
    return BenchReport(results, environment(), model, {"timer": "acceptance perf items"})


def link_graphs(session: Session, folder: Path) -> list[str]:
    conversion = session.peek("conversion")
    if conversion is None:
        return []
    out, manifest, _ = conversion
    dest = folder / "onnx"
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ["manifest.json", *(e["file"] for e in manifest["stages"].values())]:
        src = Path(out) / name
        if not src.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):
            (dest / name).unlink()
        try:
            os.link(src, dest / name)
        except OSError:
            shutil.copy2(src, dest / name)
        written.append(f"onnx/{name}")
    return written


def write_record(session: Session, folder: Path, writer: str, *, shown_as: Path | None = None,
                 state: str = "finished", verdict=None) -> dict:
    """Write the record of ``session`` into ``folder`` (report.json last): the evidence, perf_report.*,
    report.md and report.json.  ``shown_as``: where the folder will end up (a staging folder is renamed
    into place after this), so the report names files where the reader finds them."""
    from .report_md import render_markdown, write_perf_report

    folder = Path(folder)
    files = write_evidence(session, folder)
    files += write_perf_report(session, folder, shown_as or folder)
    rec = record(session, writer, state=state, verdict=verdict)
    rec["folder"] = str(shown_as or folder)
    rec["files"] = sorted({*files, "report.md", "report.json"})
    rec["owned"] = rec["files"]   # results_dir's ownership rule: the files a later run may replace
    write_text_atomic(folder / "report.md", render_markdown(rec))
    write_json_atomic(folder / "report.json", rec)
    return rec
