"""``albert-ixrt run``'s driver: the acceptance steps (``steps.py``) in order, each timed and
recorded, then report.json + report.md (``run_report.py``).

Every input is resolved (the load step) before ``--out`` is touched; the run then writes into a
staging folder that replaces the previous results only when the run ends, passed or failed
(``results_dir.py``: the lock, the ownership rule and the swap).

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
from .fileio import write_json_atomic, write_text_atomic
from .run_report import render_markdown, time_advice
from .squad.data import load_squad


@dataclass
class Step:
    name: str
    status: str          # "ok" | "failed" | "interrupted" | "skipped" | "not run" (reason in detail["reason"])
    seconds: float
    detail: dict = field(default_factory=dict)


#: Steps of ``albert-ixrt run``, in order; --skip may leave out the optional ones.
STEPS = ("load", "features", "convert", "equivalence", "evaluate", "thresholds", "bench", "report")
OPTIONAL_STEPS = ("convert", "equivalence", "bench")
SKIPPED_BY_OPTION = "asked with --skip"


#: Why a known-answer model skips these steps by itself (issue 17, item 6).
KNOWN_ANSWER_SKIPS = ("convert", "equivalence", "bench")
KNOWN_ANSWER_REASON = "a known-answer model is a TorchScript lookup table: no ONNX form to convert, no speed to measure"
#: The tiny model over the whole dev set on a CPU, seconds per question (features + evaluate), measured
#: 2026-12-01 on the project's 2-core machine (`run --model tiny --limit 300 --skip convert equivalence bench`):
#: ~45 CPU-s for 300 questions; the wall time was ~3x that with six jobs sharing the two cores.
TINY_SECONDS_PER_QUESTION = 0.15


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
                self.status = "interrupted"
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
                 bench_batch_sizes, model_spec: str | None = None, random_weights: bool = False) -> None:
    """Every option of ``run`` checked before any work (the CLI's argparse checks them too; this
    covers callers of ``run_acceptance`` and what argparse cannot relate)."""
    from .options import check_backend_precision, check_input_file, check_positive, check_tokenizer
    from .results_dir import check_results_dir

    if profile not in ("real", "tiny"):
        raise AlbertIxrtError(f"--profile {profile!r} is not a profile; choose real or tiny")
    if profile == "tiny" and (model_spec or random_weights):
        given = f"--model {model_spec}" if model_spec else "--random-weights"
        raise AlbertIxrtError(f"{given} would be ignored: --profile tiny brings its own model (tiny, random weights); "
                              "drop one of them (--profile real --model tiny runs the tiny model on the dev set)")
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
    check_results_dir(out_dir, "--out")  # writable, and holding no file but a previous run's: nothing touched
    if backend in ("tensorrt", "ixrt"):
        from .engine import import_tensorrt

        import_tensorrt(backend)  # a missing library is refused now, not after a conversion


def long_run_note(*, profile: str, model_spec: str | None, limit: int | None, squad) -> str | None:
    """One line before a run that will take long for nothing: the tiny model over the whole dev set."""
    if profile != "real" or model_spec != "tiny" or limit is not None or squad:
        return None
    from .config import SQUAD_DEV_QUESTIONS

    minutes = SQUAD_DEV_QUESTIONS * TINY_SECONDS_PER_QUESTION / 60
    return (f"note: --model tiny over the whole dev set ({SQUAD_DEV_QUESTIONS:,} questions) takes about "
            f"{minutes:.0f} min on a 2-core CPU and judges no accuracy (random weights); --profile tiny runs the "
            "12-question self-test in seconds, --limit K evaluates only the first K questions")


def auto_skips(subject, skip: tuple[str, ...], backend: str) -> tuple[dict[str, str], str | None]:
    """Steps a subject cannot take, with the reason, and the line that says so (item 6: a
    known-answer model has no ONNX form).  Refuses an ONNX backend for it: nothing to build from."""
    if subject.model.weights != "known-answer":
        return {}, None
    if backend != "torch":
        raise AlbertIxrtError(f"--model {subject.model.name}: {KNOWN_ANSWER_REASON}; it runs on --backend torch only")
    more = [s for s in KNOWN_ANSWER_SKIPS if s not in skip]
    if not more:
        return {}, None
    return ({s: KNOWN_ANSWER_REASON for s in more},
            f"albert-ixrt run: --model {subject.model.name} is a known-answer model (a TorchScript lookup table: "
            f"no ONNX form, no speed to measure): skipping {', '.join(more)}")


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

    Options are checked first, then every input is resolved (the load step); a problem with either
    is an ``AlbertIxrtError`` with nothing written.  The run takes ``out_dir``'s lock and writes
    into a staging folder; a step that raises is recorded as failed with its reason, the later steps
    as not run, and the report is written all the same (``report["failure"]`` says whether it was
    bad input); then the staged files replace the previous run's.  Ctrl-C (or SystemExit) discards
    the staging folder, leaves the previous results as they were, and is re-raised.  Each step's
    time is announced on stderr as it finishes (``announce``, default: with ``progress``)."""
    import sys

    from .results_dir import ResultsDir

    validate_run(profile=profile, backend=backend, precision=precision, batch_size=batch_size, limit=limit,
                 skip=skip, squad=squad, tokenizer=tokenizer, out_dir=out_dir, bench_batch_sizes=bench_batch_sizes,
                 model_spec=model_spec, random_weights=random_weights)
    out_dir = Path(out_dir)
    announce = progress if announce is None else announce
    note = long_run_note(profile=profile, model_spec=model_spec, limit=limit, squad=squad)
    if note:
        print(note, file=sys.stderr)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t_start = time.perf_counter()
    steps: list[Step] = []
    written: list[str] = []

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

    # The load step resolves every input before --out is touched: a bad one is refused (exit 2), nothing written.
    subject = run_steps.load_subject(profile=profile, model_spec=model_spec, random_weights=random_weights,
                                     squad=squad, tokenizer=tokenizer)
    load = Step("load", "ok", time.perf_counter() - t_start, subject.detail())
    reasons, line = auto_skips(subject, tuple(skip), backend)
    reasons.update({name: SKIPPED_BY_OPTION for name in skip})
    if line:
        print(line, file=sys.stderr)
    if announce:
        by_reason: dict[str, list[str]] = {}
        for name, why in reasons.items():
            by_reason.setdefault(why, []).append(name)
        skipping = "".join(f"; skipping {', '.join(names)} ({why})" for why, names in by_reason.items())
        print(f"albert-ixrt run: {' -> '.join(s for s in STEPS if s not in reasons)}{skipping}", file=sys.stderr)
    steps.append(load)
    tell(load)
    report: dict = {"writer": "albert-ixrt run", "profile": profile, "state": "running", "started": started,
                    "passed": None, "title": subject.title, "label": subject.label,
                    "model": subject.model.describe(), "squad": str(subject.squad_path), "skip": list(reasons),
                    "steps": [], "files": []}

    with ResultsDir(out_dir) as results:
        work = results.staging  # every file of this run goes here first
        result = None
        failure: BaseException | None = None
        try:
            with timer("features") as step:
                data = run_steps.features_step(subject, limit, progress, **(feature_options or {}))
                step.detail = data.detail()

            conversion = None
            if "convert" in reasons:
                skipped("convert", reasons["convert"])
            else:
                with timer("convert") as step:
                    conversion = run_steps.convert_step(subject.model, work / "onnx", progress)
                    written.append("onnx/manifest.json")
                    step.status, step.detail = ("ok" if conversion.passed else "failed"), conversion.detail()
            # The graph an ONNX-based runner starts from: the one decision (engine_input.engine_graph); without a
            # conversion in this run, make_runner converts into the user cache and asks the same function.
            onnx = None
            if backend != "torch" and conversion is not None:
                onnx = run_steps.engine_graph(conversion.manifest, conversion.onnx_dir, backend, precision)
            # An engine's profile covers every batch this run feeds, decided before the build; TF32 only if asked.
            engine_kw = run_steps.engine_options(backend, batch_size, bench_batch_sizes, tf32)
            if "equivalence" in reasons:
                skipped("equivalence", reasons["equivalence"])
            elif conversion is None:
                skipped("equivalence", "needs the convert step, which was skipped")
            else:
                with timer("equivalence") as step, contextlib.ExitStack() as engine_stack:
                    engine = (engine_stack.enter_context(run_steps.make_runner(backend, subject.model, precision,
                                                                               onnx, **engine_kw))
                              if engine_kw else None)  # the engine's own row; evaluate reuses its cached plan
                    equivalence = run_steps.equivalence_step(subject.model, conversion, data.features, engine=engine)
                    write_json_atomic(work / "equivalence.json", equivalence.result.to_dict())
                    written.append("equivalence.json")
                    step.status, step.detail = ("ok" if equivalence.passed else "failed"), equivalence.detail()

            with contextlib.ExitStack() as stack:
                with timer("evaluate") as step:
                    runner = stack.enter_context(run_steps.make_runner(backend, subject.model, precision, onnx,
                                                                       **engine_kw))
                    result = run_steps.evaluate_step(runner, subject, data, batch_size, progress)
                    result.write(work)
                    written += ["predictions.json", "metrics.json"]
                    step.detail = run_steps.evaluation_detail(result)
                with timer("thresholds") as step:
                    step.status, step.detail = run_steps.thresholds_step(result, subject, data, backend=backend,
                                                                         precision=precision, batch_size=batch_size,
                                                                         progress=progress)
                emulated = runner.describe().get("emulated")
                if "bench" in reasons:
                    skipped("bench", reasons["bench"])
                elif emulated:  # the test suite's TensorRT stand-in: onnxruntime timings, never an engine's
                    skipped("bench", f"{emulated}: an emulated engine's timings are never published")
                else:
                    with timer("bench") as step:
                        bench = run_steps.bench_step(runner, subject, data.features, bench_batch_sizes)
                        bench.write(work / "bench.json")
                        written.append("bench.json")
                        step.detail = {"table": bench.table(), "seconds_by_batch": bench.seconds_by_batch()}

            with timer("report") as step:
                from .report import write_report

                bench_step = next(st for st in steps if st.name == "bench")
                notes = [] if bench_step.status == "ok" else [
                    f"No throughput rows from this run: its bench step was {bench_step.status} "
                    f"({bench_step.detail.get('reason', '')}); only the reference row is shown."]
                paths = write_report(work, notes=notes)
                written += [str(p.relative_to(work)) for p in paths.values()]
                step.detail = {k: str(out_dir / Path(v).relative_to(work)) for k, v in paths.items()}
        except BaseException as exc:  # recorded in the report below; re-raised there when it is Ctrl-C
            failure = exc

        if failure is not None and not isinstance(failure, Exception):
            # Ctrl-C / SystemExit: no verdict; leaving the block discards the staging folder, so the
            # previous results stay as they were.
            where = steps[-1].name if steps and steps[-1].status == "interrupted" else \
                next(s for s in STEPS if s not in {st.name for st in steps})
            print(f"albert-ixrt run: interrupted in the {where} step; {out_dir} keeps the previous results",
                  file=sys.stderr)
            raise failure
        done = {st.name for st in steps}
        if failure is not None:
            recorded = steps and steps[-1].status == "failed" and steps[-1].detail.get("reason") == error_line(failure)
            if not recorded:  # raised between steps: blame the first step that did not finish
                name = next(s for s in STEPS if s not in done)
                _Timer(steps, name).__exit__(type(failure), failure, failure.__traceback__)
                done.add(name)
            report["failure"] = {"step": steps[-1].name, "message": steps[-1].detail["reason"],
                                 "input": isinstance(failure, AlbertIxrtError)}
            for name in STEPS:
                if name in reasons and name not in done:
                    steps.append(Step(name, "skipped", 0.0, {"reason": reasons[name]}))
                elif name not in done:
                    steps.append(Step(name, "not run", 0.0,
                                      {"reason": f"the {report['failure']['step']} step failed"}))
        failed = [st.name for st in steps if st.status == "failed"]
        steps.sort(key=lambda st: STEPS.index(st.name))
        written += ["report.json", "report.md"]
        owned = sorted(set(results.staged_files()) | {"report.json", "report.md"})
        report.update(state="finished", passed=not failed, steps=[st.__dict__ for st in steps], files=written,
                      owned=owned, removed_from_previous_run=sorted(results.previous - set(owned)),
                      seconds=round(time.perf_counter() - t_start, 1),
                      time_advice=time_advice(steps, skip=skip, limit=limit, bench_batch_sizes=bench_batch_sizes))
        if result is not None:
            report["runner"] = result.runner
        write_text_atomic(work / "report.md", render_markdown(report))
        write_json_atomic(work / "report.json", report)
        results.commit()
    return report, result
