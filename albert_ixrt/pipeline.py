"""The acceptance run, step by step: load -> (convert) -> evaluate -> report.

Each step is a small function the commands and the tests share; ``run_acceptance`` strings them
together for ``albert-ixrt run`` and writes ``report.json`` + ``report.md``.
"""
from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import assets
from .config import (DEFAULT_MODEL_ID, DEFAULT_SQUAD, REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF,
                     SQUAD_DEV_QUESTIONS, SquadSettings)
from .errors import AlbertIxrtError, InputFileError
from .evaluate import EvalResult, evaluate
from .fileio import sweep_partials, write_json_atomic, write_text_atomic
from .model import LoadedModel, load_model
from .squad.data import Example, load_squad
from .squad.features import Feature, build_features
from .tokenizer import AlbertTokenizer


def resolve_tokenizer(model: LoadedModel, option: str | None) -> Path:
    """The tokenizer that belongs to ``model``: explicit option, the model directory's own
    spiece.model, the self-test model for the tiny profile, else the shared/default lookup."""
    if option:
        return assets.tokenizer_path(option)
    if model.kind == "tiny":
        from .selftest import selftest_spiece

        return selftest_spiece()
    own = Path(model.name) / "spiece.model"
    if model.kind == "directory" and own.is_file():
        return own
    return assets.tokenizer_path(None)


def check_vocab(tokenizer: AlbertTokenizer, model: LoadedModel) -> None:
    vocab = model.config.get("vocab_size")
    if vocab and tokenizer.vocab_size > vocab:
        raise InputFileError(tokenizer.path, f"tokenizer has {tokenizer.vocab_size} pieces but model {model.name} "
                                             f"embeds only {vocab}: they do not belong together")


def prepare_data(squad: str | Path, tokenizer: AlbertTokenizer, settings: SquadSettings = DEFAULT_SQUAD,
                 limit: int | None = None, progress: bool = True,
                 shard: tuple[int, int] | None = None) -> tuple[list[Example], list[Feature]]:
    """Examples (the first ``limit``, then shard ``shard=(index, count)`` of them) and their features."""
    from .parallel import shard as take_shard

    examples = load_squad(squad)
    if limit is not None:
        if limit < 1:
            raise AlbertIxrtError(f"--limit must be >= 1, got {limit}")
        examples = examples[:limit]
    if shard is not None:
        examples = take_shard(examples, *shard)
    return examples, build_features(examples, tokenizer, settings, progress=progress)


def make_runner(backend: str, model: LoadedModel | None, precision: str, onnx: str | Path | None = None, **kw):
    """A runner for ``backend``; ONNX-based backends take ``onnx`` (or convert ``model`` first)."""
    from .runners import create_runner

    if backend == "torch":
        return create_runner("torch", model=model, precision=precision, **kw)
    if backend in ("tensorrt", "ixrt"):
        from .engine import import_tensorrt

        import_tensorrt(backend)  # a missing library is reported now, not after a conversion
    if onnx is None:
        if model is None:
            raise AlbertIxrtError(f"backend {backend} needs --onnx or --model")
        onnx = convert_for_backend(model, backend, precision)
    return create_runner(backend, onnx_path=str(onnx), precision=precision, **kw)


def convert_for_backend(model: LoadedModel, backend: str, precision: str) -> Path:
    """Convert ``model`` (each stage cached by content hash) and return the graph ``backend``
    starts from (``export.ENGINE_INPUTS``): TensorRT/ixRT the simplified standard-op graph
    (strongly typed TensorRT fp16: its fp16 twin ``trt_fp16``), onnxruntime the fused one."""
    from .export import stage_paths

    out, manifest = converted(model)
    typing = None
    if backend in ("tensorrt", "ixrt"):
        from .trt_api import detect_typing

        typing = detect_typing(backend)
    return stage_paths(manifest, out)[engine_stage(manifest, out, backend, precision, typing)]


def converted(model: LoadedModel, progress: bool = True) -> tuple[Path, dict]:
    """(folder, manifest) of ``model``'s conversion in the cache (each stage reused when unchanged)."""
    from .export import convert

    out = assets.CACHE_DIR / "onnx" / model.source_sha256[:16]
    return out, convert(model, out, progress=progress)


def engine_stage(manifest: dict, out, backend: str, precision: str, typing: str | None = None) -> str:
    """The stage ``backend`` builds from (``export.engine_input``; strongly typed TensorRT takes fp16
    from the graph), checked to be in ``manifest``."""
    from .export import engine_input
    from .trt_api import STRONG

    try:
        stage = engine_input(backend, precision, strongly_typed=typing == STRONG)
    except KeyError:
        raise AlbertIxrtError(f"no ONNX stage is known for backend {backend!r}") from None
    if stage not in manifest.get("stages", {}):
        raise AlbertIxrtError(f"{Path(out) / 'manifest.json'}: no {stage!r} stage, which {backend} {precision} "
                              f"builds from ({typing or 'default'} typing); re-run albert-ixrt convert (with fp16)")
    return stage


@dataclass
class Step:
    name: str
    status: str          # "ok" | "failed" | "skipped" | "not run" (with the reason in detail["reason"])
    seconds: float
    detail: dict = field(default_factory=dict)


#: Steps of ``albert-ixrt run``, in order; --skip may leave out the optional ones.
STEPS = ("load", "features", "convert", "equivalence", "evaluate", "thresholds", "bench", "report")
OPTIONAL_STEPS = ("convert", "equivalence", "bench")
#: Features compared stage by stage in the equivalence step (as in `convert --verify`).
EQUIVALENCE_FEATURES = 16
#: The bench step: the reference shapes, a short run (the full harness is `albert-ixrt bench`).
BENCH_BATCH_SIZES, BENCH_SEQ_LEN, BENCH_ITERATIONS = (1, 16), DEFAULT_SQUAD.max_seq_length, 5


#: Files ``run`` writes into ``--out``: removed when a run starts, so none can be a previous run's
#: (onnx/ is a cache of converted graphs and stays; its manifest says what it holds).
RUN_OUTPUTS = ("report.md", "report.json", "equivalence.json", "predictions.json", "metrics.json", "bench.json",
               "perf_report.md", "perf_report.json", "throughput.png")
SKIPPED_BY_OPTION = "asked with --skip"
#: How to shorten each step, for the "where the time went" advice (steps without one are not advised on).
SHORTER = {
    "bench": "--skip bench, or fewer/smaller --bench-batch-sizes (now {bench}); "
             "the full harness is `albert-ixrt bench`",
    "equivalence": f"--skip equivalence (it runs {EQUIVALENCE_FEATURES} features through torch and every ONNX stage)",
    "evaluate": "--limit K evaluates only the first K questions (accuracy is then not judged)",
    "features": "--limit K featurizes only the first K questions",
    "convert": "the graphs in OUT/onnx are reused on the next run while the model is unchanged; "
               "--skip convert also skips equivalence",
}


class _Timer:
    """Times one step and appends it to ``steps``; an exception marks the step failed with its
    reason (and lets it propagate: the run stops there and still writes its report)."""

    def __init__(self, steps: list[Step], name: str, announce=None):
        self.steps, self.name, self.announce = steps, name, announce
        self.status, self.detail = "ok", {}

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
                   skip: tuple[str, ...] = (), bench_batch_sizes: tuple[int, ...] = BENCH_BATCH_SIZES,
                   announce: bool | None = None) -> tuple[dict, EvalResult | None]:
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

    model = result = None
    failure: BaseException | None = None
    try:
        with timer("load") as step:
            model = load_model("tiny" if tiny else (model_spec or DEFAULT_MODEL_ID), random_weights=random_weights)
            report.update(title=title_for(model, tiny), label=label_for(model, tiny), model=model.describe())
            tok = AlbertTokenizer(resolve_tokenizer(model, tokenizer))
            check_vocab(tok, model)
            if tiny:
                from .selftest import squad_sample_path

                squad_path = Path(squad) if squad else squad_sample_path()
            else:
                squad_path = assets.squad_dev_path(squad)
            report["squad"] = str(squad_path)
            step.detail = {**model.describe(), "tokenizer": str(tok.path), "squad": str(squad_path)}

        with timer("features") as step:
            examples, features = prepare_data(squad_path, tok, DEFAULT_SQUAD, limit, progress)
            step.detail = {"examples": len(examples), "features": len(features)}

        onnx_dir = out_dir / "onnx"
        manifest = None
        if "convert" in skip:
            skipped("convert", SKIPPED_BY_OPTION)
        else:
            from .export import convert, graph_problems

            with timer("convert") as step:
                manifest = convert(model, onnx_dir, progress=progress)
                written.append("onnx/manifest.json")
                problems = graph_problems(manifest)
                step.status = "failed" if problems else "ok"
                step.detail = {"graph_problems": problems, **{
                    name: {k: e[k] for k in ("file", "node_count", "fused_ops", "size_bytes", "seconds")}
                    for name, e in manifest["stages"].items()}}
                if problems:
                    step.detail["reason"] = f"{len(problems)} graph problem(s): {problems[0]}"
        if "equivalence" in skip:
            skipped("equivalence", SKIPPED_BY_OPTION)
        elif manifest is None:
            skipped("equivalence", "needs the convert step, which was skipped")
        else:
            from .compare import SquadFeeds, compare_manifest

            with timer("equivalence") as step:
                feeds = SquadFeeds(features[:EQUIVALENCE_FEATURES], 8)
                eq = compare_manifest(model, manifest, onnx_dir, feeds)
                write_json_atomic(out_dir / "equivalence.json", eq.to_dict())
                written.append("equivalence.json")
                step.status = "ok" if eq.passed else "failed"
                step.detail = {"passed": eq.passed, "failures": eq.failures(), "table": eq.table()}
                if not eq.passed:
                    step.detail.update(drift_detail(model, manifest, onnx_dir, eq, feeds))

        onnx = None
        if backend != "torch" and manifest is not None:
            from .export import ENGINE_INPUTS, stage_paths

            stage = ENGINE_INPUTS.get(f"{backend}-{precision}") or ENGINE_INPUTS[backend]
            onnx = stage_paths(manifest, onnx_dir)[stage]
        with contextlib.ExitStack() as stack:
            with timer("evaluate") as step:
                runner = stack.enter_context(make_runner(backend, model, precision, onnx))
                result = evaluate(runner, examples, features, batch_size=batch_size, progress=progress,
                                  model_info=model.describe())
                result.write(out_dir)
                written += ["predictions.json", "metrics.json"]
                step.detail = {"scores": result.scores.as_dict(),
                               "features_per_second": round(result.features_per_second, 2), "runner": result.runner}
            with timer("thresholds") as step:
                is_reference = (backend, precision) == ("torch", "fp32")
                step.status, step.detail = judge_thresholds(
                    result, model, tiny,
                    None if is_reference else reference_evaluation(model, examples, features, batch_size, progress))
            if "bench" in skip:
                skipped("bench", SKIPPED_BY_OPTION)
            else:
                from .bench import BenchSettings, run_benchmark

                with timer("bench") as step:
                    settings = BenchSettings(batch_sizes=tuple(bench_batch_sizes), seq_lens=(BENCH_SEQ_LEN,),
                                             iterations=BENCH_ITERATIONS, warmup=1)
                    bench = run_benchmark(runner, features, settings, model_info=model.describe(),
                                          vocab_size=model.config.get("vocab_size"))
                    bench.write(out_dir / "bench.json")
                    written.append("bench.json")
                    step.detail = {"table": bench.table()}

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


def time_advice(steps: list[Step], *, skip=(), limit: int | None = None,
                bench_batch_sizes=BENCH_BATCH_SIZES) -> list[str]:
    """Where the time went and how to shorten it: one line per step that took at least a tenth of
    the run (and a second), longest first, with the option that shortens it."""
    total = sum(st.seconds for st in steps)
    lines = []
    for st in sorted(steps, key=lambda s: -s.seconds):
        if st.status in ("skipped", "not run") or st.seconds < max(1.0, 0.1 * total):
            continue
        tip = SHORTER.get(st.name)
        if tip is None:
            continue
        if st.name in ("evaluate", "features") and limit is not None:
            tip = f"a smaller --limit (now {limit})"
        tip = tip.format(bench=" ".join(str(b) for b in bench_batch_sizes))
        lines.append(f"{st.name} took {st.seconds:.1f} s of {total:.1f} s ({100 * st.seconds / total:.0f} %): {tip}")
    return lines



def judge_thresholds(result: EvalResult, model: LoadedModel, tiny: bool,
                     reference: Callable[[], EvalResult] | None = None) -> tuple[str, dict]:
    """The reference thresholds (ByteMLPerf-compatible EM/F1, as the reference measured them) and
    the MLPerf-style ratio (official F1 >= 99% of the torch fp32 reference; ``reference`` evaluates
    that reference when called, None when the run is the reference itself) on real weights (or a
    known-answer model, judged the same way) over the whole dev set; a random-weight model or a
    partial run is not judged."""
    from .verdicts import mlperf_ratio, reference_thresholds

    s = result.scores
    wanted = {"bytemlperf_exact_match": REFERENCE_EM_BYTEMLPERF, "bytemlperf_f1": REFERENCE_F1_BYTEMLPERF}
    if model.weights not in ("real", "known-answer") or tiny:
        return "skipped", {"reason": "random weights: accuracy is not judged", "thresholds": wanted}
    if s.questions != SQUAD_DEV_QUESTIONS:
        return "skipped", {"reason": f"{s.questions} questions evaluated, thresholds hold for the full dev set "
                                     f"({SQUAD_DEV_QUESTIONS})", "thresholds": wanted}
    verdict = reference_thresholds(s)
    if reference is None:
        mlperf = {"status": "not applicable", "message": "not applicable: this run is the torch fp32 reference "
                                                         "itself (the ratio needs another --backend or --precision)"}
    else:
        ratio = mlperf_ratio(s.f1, reference().scores.f1)
        mlperf = {**ratio.detail, "status": "ok" if ratio.passed else "failed", "message": ratio.message}
    passed = verdict.passed and mlperf["status"] != "failed"
    return ("ok" if passed else "failed"), {**verdict.detail, "message": verdict.message, "mlperf": mlperf}


def reference_evaluation(model: LoadedModel, examples, features, batch_size: int, progress: bool):
    """A zero-argument function evaluating the torch fp32 reference on the run's own features (the
    MLPerf-style ratio's denominator), called only when the thresholds are judged."""
    def run_reference() -> EvalResult:
        with make_runner("torch", model, "fp32") as runner:
            return evaluate(runner, examples, features, batch_size=batch_size, progress=progress,
                            model_info=model.describe())
    return run_reference


def title_for(model: LoadedModel, tiny: bool) -> str:
    """What ran, for the report's title: the self-test, or the model's weights label and name."""
    if tiny:
        return "self-test (tiny random-weight model)"
    return f"{model.label}, {model.name}"


def label_for(model: LoadedModel, tiny: bool) -> str:
    if tiny:
        from .selftest import SELFTEST_LABEL

        return SELFTEST_LABEL
    if model.weights == "known-answer":
        return "known-answer model: proves the accuracy gate's verdict, not any model's accuracy"
    return "random weights: conversion and speed only, not accuracy" if model.weights == "random" else "real weights"


def runner_text(runner: dict) -> str:
    """A runner's description (``Runner.describe()``) as one readable line."""
    if not runner:
        return "—"
    head = f"{runner.get('backend', '?')} {runner.get('precision', '?')}"
    if runner.get("device"):
        head += f" on {runner['device']}"
    rest = []
    for k, v in runner.items():
        if k in ("backend", "precision", "device"):
            continue
        if isinstance(v, dict):
            v = ", ".join(f"{k2} {v2}" for k2, v2 in v.items())
            rest.append(f"{k} ({v})")
        elif isinstance(v, (list, tuple)):
            rest.append(f"{k} {' '.join(map(str, v))}")
        else:
            rest.append(f"{k} {v}")
    return ", ".join([head, *rest])


def drift_detail(model: LoadedModel, manifest: dict, onnx_dir, eq, feeds) -> dict:
    """Where each stage over tolerance drifts (``albert-ixrt layerwise``), for the report: the first
    layer over tolerance per failing stage, and the reason line naming it."""
    from .export import stage_paths
    from .layerwise import first_layer_lines, first_layers_over

    failing = list(dict.fromkeys(c.stage for c in eq.comparisons if not c.passed))
    found = first_layers_over(model, stage_paths(manifest, onnx_dir), feeds, failing)
    lines = first_layer_lines(found)
    return {"first_layer_over_tolerance": found,
            "reason": f"{len(eq.failures())} comparison(s) over tolerance ({'; '.join(lines)}): {eq.failures()[0]}"}


def step_note(st: dict) -> str:
    """Why a step was skipped / failed / not run, or a short what-it-did for an ok step."""
    d = st.get("detail") or {}
    if d.get("reason"):
        return str(d["reason"])
    if st["name"] == "features" and "examples" in d:
        return f"{d['examples']} questions, {d['features']} features"
    if st["name"] == "thresholds" and "measured" in d:
        note = ", ".join(f"{k} {v:.2f} (>= {d['thresholds'][k]})" for k, v in d["measured"].items())
        ratio = (d.get("mlperf") or {}).get("ratio")
        if ratio is not None:
            note += f", official F1 / torch fp32 {ratio:.4f} (>= {d['mlperf']['threshold']})"
        return note
    if st["name"] == "evaluate" and "features_per_second" in d:
        return f"{d['features_per_second']} features/s"
    return ""


def _verdict(report: dict) -> str:
    if report.get("state") == "interrupted":
        return "INTERRUPTED in " + report["failure"]["step"]
    failed = [st["name"] for st in report["steps"] if st["status"] == "failed"]
    return "all steps passed" if not failed else "FAILED: " + ", ".join(failed)


def render_markdown(report: dict, result=None) -> str:
    """report.md: what ran, each step with its status, time and reason, both metrics, the tables,
    and where the time went.  Built from ``report`` alone (a failed run has no evaluation)."""
    steps = {st["name"]: st for st in report["steps"]}
    scores = (steps.get("evaluate", {}).get("detail") or {}).get("scores")
    lines = [f"# albert-ixrt acceptance run: {report['title']}", "",
             f"**{report['label'] or report['title']}** — {_verdict(report)}", ""]
    if report.get("failure"):
        lines += [f"The run stopped in the **{report['failure']['step']}** step: {report['failure']['message']}", ""]
    model = report.get("model") or {}
    if model:
        lines.append(f"- model: `{model.get('model')}` ({model.get('weights')} weights)")
    if scores:
        lines.append(f"- data: `{report['squad']}` ({scores['questions']} questions, {scores['features']} features)")
    elif report.get("squad"):
        lines.append(f"- data: `{report['squad']}`")
    lines += [f"- runner: {runner_text(report.get('runner') or {})}",
              f"- started {report['started']}, took {report.get('seconds', 0):.1f} s", "",
              "| step | status | seconds | note |", "|---|---|---|---|",
              *[f"| {st['name']} | {st['status']} | {st['seconds']:.1f} | {step_note(st).replace('|', '/')} |"
                for st in report["steps"]], ""]
    if scores:
        lines += ["| metric | Exact Match | F1 |", "|---|---|---|",
                  f"| official SQuAD v1.1 (mean over {scores['questions']} questions) | {scores['exact_match']:.2f} | "
                  f"{scores['f1']:.2f} |",
                  f"| ByteMLPerf-compatible (sums / {scores['features']} features) | "
                  f"{scores['bytemlperf_exact_match']:.2f} | {scores['bytemlperf_f1']:.2f} |", ""]
    judged = steps.get("thresholds") or {}
    if "message" in (judged.get("detail") or {}):
        lines += [f"Reference thresholds: {judged['detail']['message']}", ""]
    if "mlperf" in (judged.get("detail") or {}):
        lines += [f"MLPerf-style ratio: {judged['detail']['mlperf']['message']}", ""]
    for name, title in (("equivalence", "Equivalence with torch fp32"), ("bench", "Throughput and latency")):
        detail = steps.get(name, {}).get("detail") or {}
        if detail.get("table"):
            lines += [f"## {title}", "", "```", detail["table"], "```", ""]
        if detail.get("first_layer_over_tolerance"):
            from .layerwise import first_layer_lines

            lines += [f"- {line}" for line in first_layer_lines(detail["first_layer_over_tolerance"])] + [""]
    if report.get("time_advice"):
        lines += ["## Where the time went", "", *[f"- {line}" for line in report["time_advice"]], ""]
    if "perf_report.md" in report.get("files", []):
        lines += ["Throughput table against the reference row: `perf_report.md` (plot: `throughput.png`).", ""]
    return "\n".join(lines)


def summarize(report: dict, result=None) -> str:
    """One screenful for the terminal."""
    rows = [report["label"] or report["title"]]
    for st in report["steps"]:
        note = step_note(st) if st["status"] != "ok" else ""
        rows.append(f"  {st['name']:<11} {st['status']:<7} {st['seconds']:7.1f} s" + (f"  {note}" if note else ""))
    if result is not None:
        rows += [f"  {line}" for line in result.scores.summary_lines()]
    for st in report["steps"]:
        if st["name"] in ("equivalence", "bench") and (st.get("detail") or {}).get("table"):
            rows += ["", st["detail"]["table"]]
    if report.get("time_advice"):
        rows += ["", "Where the time went (and how to shorten it):", *[f"  {line}" for line in report["time_advice"]]]
    if report.get("failure") and not report["failure"]["input"]:
        rows += ["", f"{report['failure']['step']} failed: {report['failure']['message']} "
                     "(traceback in report.json)"]
    rows.append("PASSED" if report["passed"] else _verdict(report))
    return "\n".join(rows)


def files_line(report: dict, out_dir) -> str:
    """The files this run wrote (and only those), report.md first."""
    files = sorted(report.get("files", []), key=lambda f: (f != "report.md", f != "report.json"))
    return f"{out_dir}/" + ", ".join(f + (" (summary)" if f == "report.md" else "") for f in files)
