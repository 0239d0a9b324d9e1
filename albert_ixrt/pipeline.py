"""``albert-ixrt run``'s driver: the acceptance steps (``steps.py``) in order, each timed and
recorded, then report.json + report.md (``run_report.py``).

The steps themselves live in ``steps.py``, shared with the commands and the pytest fixtures; this
module only orders them, records each one's status, time and detail, and writes the report even
when a step fails.
"""
from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import steps as run_steps
from .errors import AlbertIxrtError
from .evaluate import EvalResult
from .fileio import sweep_partials, write_json_atomic, write_text_atomic
from .run_report import render_markdown, time_advice
from .squad.data import load_squad


@dataclass
class Step:
    name: str
    status: str          # "ok" | "failed" | "skipped" | "not run" (with the reason in detail["reason"])
    seconds: float
    detail: dict = field(default_factory=dict)


#: Steps of ``albert-ixrt run``, in order; --skip may leave out the optional ones.
STEPS = ("load", "features", "convert", "equivalence", "evaluate", "thresholds", "bench", "report")
OPTIONAL_STEPS = ("convert", "equivalence", "bench")
SKIPPED_BY_OPTION = "asked with --skip"


#: Files ``run`` writes into ``--out``: removed when a run starts, so none can be a previous run's
#: (onnx/ is a cache of converted graphs and stays; its manifest says what it holds).
RUN_OUTPUTS = ("report.md", "report.json", "equivalence.json", "predictions.json", "metrics.json", "bench.json",
               "perf_report.md", "perf_report.json", "throughput.png")


class _Timer:
    """Times one step and appends it to ``steps``; an exception marks the step failed with its
    reason (and lets it propagate: the run stops there and still writes its report)."""

    def __init__(self, steps: list[Step], name: str, announce=None):
        self.steps, self.name, self.announce = steps, name, announce
        self.status, self.detail = "ok", {}
        self.t0 = time.perf_counter()  # also when only __exit__ is called (a failure blamed between steps)

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, etype, exc, tb):
        if exc is not None:
            self.status = "failed"
            if isinstance(exc, KeyboardInterrupt):
                self.detail = {**self.detail, "reason": "interrupted (Ctrl-C)"}
            else:
                self.detail = {**self.detail, "reason": error_line(exc), "error_type": type(exc).__name__}
                if not isinstance(exc, AlbertIxrtError):  # a bug or a library failure: keep the traceback
                    self.detail["traceback"] = "".join(traceback.format_exception(etype, exc, tb))
        step = Step(self.name, self.status, time.perf_counter() - self.t0, self.detail)
        self.steps.append(step)
        if self.announce:
            self.announce(step)
        return False


def error_line(exc: BaseException) -> str:
    """One line for the report: a user-facing error's own sentence, anything else with its type."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, AlbertIxrtError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def validate_run(*, profile: str, backend: str, precision: str, batch_size, limit, skip, squad, tokenizer, out_dir,
                 bench_batch_sizes) -> None:
    """Every option of ``run`` checked before any work (the CLI's argparse checks them too; this
    covers callers of ``run_acceptance`` and what argparse cannot relate)."""
    from .options import check_backend_precision, check_input_file, check_output_dir, check_positive, check_tokenizer

    if profile not in ("real", "tiny"):
        raise AlbertIxrtError(f"--profile {profile!r} is not a profile; choose real or tiny")
    unknown = set(skip) - set(OPTIONAL_STEPS)
    if unknown:
        raise AlbertIxrtError(f"cannot skip {sorted(unknown)}; optional steps are {', '.join(OPTIONAL_STEPS)}")
    check_backend_precision(backend, precision)
    check_positive("--batch-size", batch_size, allow_none=False)
    check_positive("--limit", limit)
    if not bench_batch_sizes:
        raise AlbertIxrtError("--bench-batch-sizes needs at least one batch size")
    for b in bench_batch_sizes:
        check_positive("--bench-batch-sizes", b, allow_none=False)
    check_input_file("--squad", squad, what="SQuAD JSON file")
    if squad:
        load_squad(squad)  # a malformed or SQuAD v2.0 file is refused before any work (under a second)
    check_tokenizer("--tokenizer", tokenizer)
    check_output_dir("--out", out_dir)
    if backend in ("tensorrt", "ixrt"):
        from .engine import import_tensorrt

        import_tensorrt(backend)  # a missing library is refused now, not after a conversion


def clear_previous_outputs(out_dir: Path) -> list[str]:
    """Remove what an earlier run left under the names this run writes; returns their names."""
    gone = []
    for name in RUN_OUTPUTS:
        p = out_dir / name
        if p.is_file() or p.is_symlink():
            p.unlink()
            gone.append(name)
    return gone


def run_acceptance(*, profile: str = "real", model_spec: str | None = None, random_weights: bool = False,
                   squad: str | None = None, tokenizer: str | None = None, backend: str = "torch",
                   precision: str = "fp32", batch_size: int = 8, limit: int | None = None,
                   out_dir: str | Path = "results", progress: bool = True,
                   skip: tuple[str, ...] = (), bench_batch_sizes: tuple[int, ...] = run_steps.BENCH_BATCH_SIZES,
                   announce: bool | None = None, feature_options: dict | None = None,
                   tf32: bool = False) -> tuple[dict, EvalResult | None]:
    """Run the acceptance pipeline (``STEPS``) and write its files into ``out_dir``: the ONNX
    stages and manifest.json (onnx/), equivalence.json, predictions.json, metrics.json,
    bench.json, perf_report.md/.json + throughput.png, and report.json + report.md.

    Options are checked first (``AlbertIxrtError``, nothing written).  Then the previous run's files
    are removed and report.json/report.md say "running"; a step that raises is recorded as failed
    with its reason, the later steps as not run, and the report is written all the same
    (``report["failure"]`` says whether it was bad input).  Each step's time is announced on stderr
    as it finishes (``announce``, default: with ``progress``)."""
    import sys

    validate_run(profile=profile, backend=backend, precision=precision, batch_size=batch_size, limit=limit,
                 skip=skip, squad=squad, tokenizer=tokenizer, out_dir=out_dir, bench_batch_sizes=bench_batch_sizes)
    out_dir = Path(out_dir)
    sweep_partials(out_dir)  # files a killed earlier run left half-written (convert sweeps onnx/ itself)
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = clear_previous_outputs(out_dir)
    tiny = profile == "tiny"
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t_start = time.perf_counter()
    report: dict = {"profile": profile, "state": "running", "started": started, "passed": None,
                    "title": "self-test" if tiny else "running", "label": "", "model": {}, "squad": squad,
                    "skip": list(skip), "steps": [], "files": [], "removed_from_previous_run": removed}
    write_json_atomic(out_dir / "report.json", report)
    write_text_atomic(out_dir / "report.md", f"# albert-ixrt acceptance run: running\n\nStarted {started}. If no "
                                             "`albert-ixrt run` is working on this folder now, that run was "
                                             "interrupted and this is not a verdict.\n")
    steps: list[Step] = []
    written: list[str] = []
    announce = progress if announce is None else announce

    def tell(st: Step) -> None:
        if announce:
            why = st.detail.get("reason") if st.status != "ok" else ""
            print(f"[{len(steps)}/{len(STEPS)}] {st.name}: {st.status} in {st.seconds:.1f} s"
                  + (f" ({why})" if why else ""), file=sys.stderr, flush=True)

    def timer(name: str) -> _Timer:
        return _Timer(steps, name, tell)

    def skipped(name: str, reason: str) -> None:
        steps.append(Step(name, "skipped", 0.0, {"reason": reason}))
        tell(steps[-1])

    if announce:
        skipping = f"; skipping {', '.join(skip)} ({SKIPPED_BY_OPTION})" if skip else ""
        print(f"albert-ixrt run: {' -> '.join(s for s in STEPS if s not in skip)}{skipping}", file=sys.stderr)

    result = None
    failure: BaseException | None = None
    try:
        with timer("load") as step:
            subject = run_steps.load_subject(profile=profile, model_spec=model_spec, random_weights=random_weights,
                                     squad=squad, tokenizer=tokenizer)
            report.update(title=subject.title, label=subject.label, model=subject.model.describe(),
                          squad=str(subject.squad_path))
            step.detail = subject.detail()

        with timer("features") as step:
            data = run_steps.features_step(subject, limit, progress, **(feature_options or {}))
            step.detail = data.detail()

        conversion = None
        if "convert" in skip:
            skipped("convert", SKIPPED_BY_OPTION)
        else:
            with timer("convert") as step:
                conversion = run_steps.convert_step(subject.model, out_dir / "onnx", progress)
                written.append("onnx/manifest.json")
                step.status, step.detail = ("ok" if conversion.passed else "failed"), conversion.detail()
        # The graph an ONNX-based runner starts from: the one decision (steps.backend_graph); without a
        # conversion in this run, make_runner converts into the user cache and asks the same function.
        onnx = None
        if backend != "torch" and conversion is not None:
            onnx = run_steps.backend_graph(conversion.manifest, conversion.onnx_dir, backend, precision)
        # An engine's profile covers every batch this run feeds, decided before the build; TF32 only if asked.
        engine_kw = run_steps.engine_options(backend, batch_size, bench_batch_sizes, tf32)
        if "equivalence" in skip:
            skipped("equivalence", SKIPPED_BY_OPTION)
        elif conversion is None:
            skipped("equivalence", "needs the convert step, which was skipped")
        else:
            with timer("equivalence") as step, contextlib.ExitStack() as engine_stack:
                engine = (engine_stack.enter_context(run_steps.make_runner(backend, subject.model, precision, onnx,
                                                                           **engine_kw))
                          if engine_kw else None)  # the engine's own row; evaluate reuses its cached plan
                equivalence = run_steps.equivalence_step(subject.model, conversion, data.features, engine=engine)
                write_json_atomic(out_dir / "equivalence.json", equivalence.result.to_dict())
                written.append("equivalence.json")
                step.status, step.detail = ("ok" if equivalence.passed else "failed"), equivalence.detail()

        with contextlib.ExitStack() as stack:
            with timer("evaluate") as step:
                runner = stack.enter_context(run_steps.make_runner(backend, subject.model, precision, onnx,
                                                                   **engine_kw))
                result = run_steps.evaluate_step(runner, subject, data, batch_size, progress)
                result.write(out_dir)
                written += ["predictions.json", "metrics.json"]
                step.detail = run_steps.evaluation_detail(result)
            with timer("thresholds") as step:
                step.status, step.detail = run_steps.thresholds_step(result, subject, data, backend=backend,
                                                             precision=precision, batch_size=batch_size,
                                                             progress=progress)
            emulated = runner.describe().get("emulated")
            if "bench" in skip:
                skipped("bench", SKIPPED_BY_OPTION)
            elif emulated:  # the test suite's TensorRT stand-in: onnxruntime timings, never an engine's
                skipped("bench", f"{emulated}: an emulated engine's timings are never published")
            else:
                with timer("bench") as step:
                    bench = run_steps.bench_step(runner, subject, data.features, bench_batch_sizes)
                    bench.write(out_dir / "bench.json")
                    written.append("bench.json")
                    step.detail = {"table": bench.table(), "seconds_by_batch": bench.seconds_by_batch()}

        with timer("report") as step:
            from .report import write_report

            bench_step = next(st for st in steps if st.name == "bench")
            notes = [] if bench_step.status == "ok" else [
                f"No throughput rows from this run: its bench step was {bench_step.status} "
                f"({bench_step.detail.get('reason', '')}); only the reference row is shown."]
            paths = write_report(out_dir, notes=notes)
            written += [str(p.relative_to(out_dir)) if p.is_relative_to(out_dir) else str(p) for p in paths.values()]
            step.detail = {k: str(v) for k, v in paths.items()}
    except BaseException as exc:  # recorded in the report below; re-raised there when it is Ctrl-C
        failure = exc

    done = {st.name for st in steps}
    if failure is not None:
        recorded = steps and steps[-1].status == "failed" and steps[-1].detail.get("reason") in (
            error_line(failure), "interrupted (Ctrl-C)")
        if not recorded:  # raised between steps: blame the first step that did not finish
            name = next(s for s in STEPS if s not in done)
            _Timer(steps, name).__exit__(type(failure), failure, failure.__traceback__)
            done.add(name)
        report["failure"] = {"step": steps[-1].name, "message": steps[-1].detail["reason"],
                             "input": isinstance(failure, AlbertIxrtError)}
        for name in STEPS:
            if name in skip and name not in done:
                steps.append(Step(name, "skipped", 0.0, {"reason": SKIPPED_BY_OPTION}))
            elif name not in done:
                steps.append(Step(name, "not run", 0.0, {"reason": f"the {report['failure']['step']} step failed"}))
    failed = [st.name for st in steps if st.status == "failed"]
    steps.sort(key=lambda st: STEPS.index(st.name))
    written += ["report.json", "report.md"]
    report.update(state="interrupted" if isinstance(failure, KeyboardInterrupt) else "finished",
                  passed=not failed, steps=[st.__dict__ for st in steps], files=written,
                  seconds=round(time.perf_counter() - t_start, 1),
                  time_advice=time_advice(steps, skip=skip, limit=limit, bench_batch_sizes=bench_batch_sizes))
    if result is not None:
        report["runner"] = result.runner
    write_json_atomic(out_dir / "report.json", report)
    write_text_atomic(out_dir / "report.md", render_markdown(report))
    if failure is not None and not isinstance(failure, Exception):
        raise failure  # Ctrl-C / SystemExit: the report says so, the caller still stops
    return report, result
