"""The acceptance run, step by step: load -> (convert) -> evaluate -> report.

Each step is a small function the commands and the tests share; ``run_acceptance`` strings them
together for ``albert-ixrt run`` and writes ``report.json`` + ``report.md``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from . import assets
from .config import (DEFAULT_MODEL_ID, DEFAULT_SQUAD, REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF,
                     SQUAD_DEV_QUESTIONS, SquadSettings)
from .errors import AlbertIxrtError, InputFileError
from .evaluate import EvalResult, evaluate
from .fileio import write_json_atomic, write_text_atomic
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
    starts from: TensorRT/ixRT the simplified standard-op graph, onnxruntime the fused one."""
    from .export import ENGINE_INPUTS, convert, stage_paths

    out = assets.CACHE_DIR / "onnx" / model.source_sha256[:16]
    manifest = convert(model, out, progress=True)
    stage = ENGINE_INPUTS.get(f"{backend}-{precision}") or ENGINE_INPUTS.get(backend)
    if stage is None:
        raise AlbertIxrtError(f"no ONNX stage is known for backend {backend!r}")
    return stage_paths(manifest, out)[stage]


@dataclass
class Step:
    name: str
    status: str          # "ok" | "failed" | "skipped" (with the reason in detail)
    seconds: float
    detail: dict = field(default_factory=dict)


#: Steps of ``albert-ixrt run``, in order; --skip may leave out the optional ones.
STEPS = ("load", "features", "convert", "equivalence", "evaluate", "thresholds", "bench", "report")
OPTIONAL_STEPS = ("convert", "equivalence", "bench")
#: Features compared stage by stage in the equivalence step (as in `convert --verify`).
EQUIVALENCE_FEATURES = 16
#: The bench step: the reference shapes, a short run (the full harness is `albert-ixrt bench`).
BENCH_BATCH_SIZES, BENCH_SEQ_LEN, BENCH_ITERATIONS = (1, 16), DEFAULT_SQUAD.max_seq_length, 5


class _Timer:
    """Times one step and appends it to ``steps``."""

    def __init__(self, steps: list[Step], name: str):
        self.steps, self.name = steps, name
        self.status, self.detail = "ok", {}

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.steps.append(Step(self.name, self.status, time.perf_counter() - self.t0, self.detail))


def run_acceptance(*, profile: str = "real", model_spec: str | None = None, random_weights: bool = False,
                   squad: str | None = None, tokenizer: str | None = None, backend: str = "torch",
                   precision: str = "fp32", batch_size: int = 8, limit: int | None = None,
                   out_dir: str | Path = "results", progress: bool = True,
                   skip: tuple[str, ...] = ()) -> tuple[dict, EvalResult]:
    """Run the acceptance pipeline (``STEPS``) and write its files into ``out_dir``: the ONNX
    stages and manifest.json (onnx/), equivalence.json, predictions.json, metrics.json,
    bench.json, perf_report.md/.json + throughput.png, and report.json + report.md."""
    unknown = set(skip) - set(OPTIONAL_STEPS)
    if unknown:
        raise AlbertIxrtError(f"cannot skip {sorted(unknown)}; optional steps are {', '.join(OPTIONAL_STEPS)}")
    out_dir = Path(out_dir)
    steps: list[Step] = []
    tiny = profile == "tiny"

    with _Timer(steps, "load") as step:
        model = load_model("tiny" if tiny else (model_spec or DEFAULT_MODEL_ID), random_weights=random_weights)
        tok = AlbertTokenizer(resolve_tokenizer(model, tokenizer))
        check_vocab(tok, model)
        if tiny:
            from .selftest import squad_sample_path

            squad_path = Path(squad) if squad else squad_sample_path()
        else:
            squad_path = assets.squad_dev_path(squad)
        step.detail = {**model.describe(), "tokenizer": str(tok.path), "squad": str(squad_path)}

    with _Timer(steps, "features") as step:
        examples, features = prepare_data(squad_path, tok, DEFAULT_SQUAD, limit, progress)
        step.detail = {"examples": len(examples), "features": len(features)}

    onnx_dir = out_dir / "onnx"
    manifest = None
    if "convert" not in skip:
        from .export import convert, graph_problems

        with _Timer(steps, "convert") as step:
            manifest = convert(model, onnx_dir, progress=progress)
            problems = graph_problems(manifest)
            step.status = "failed" if problems else "ok"
            step.detail = {"graph_problems": problems, **{
                name: {k: e[k] for k in ("file", "node_count", "fused_ops", "size_bytes", "seconds")}
                for name, e in manifest["stages"].items()}}
    if "equivalence" not in skip and manifest is not None:
        from .compare import SquadFeeds, compare_manifest

        with _Timer(steps, "equivalence") as step:
            result = compare_manifest(model, manifest, onnx_dir, SquadFeeds(features[:EQUIVALENCE_FEATURES], 8))
            write_json_atomic(out_dir / "equivalence.json", result.to_dict())
            step.status = "ok" if result.passed else "failed"
            step.detail = {"passed": result.passed, "failures": result.failures(), "table": result.table()}

    onnx = None
    if backend != "torch" and manifest is not None:
        from .export import ENGINE_INPUTS, stage_paths

        onnx = stage_paths(manifest, onnx_dir)[ENGINE_INPUTS.get(f"{backend}-{precision}") or ENGINE_INPUTS[backend]]
    with make_runner(backend, model, precision, onnx) as runner:
        with _Timer(steps, "evaluate") as step:
            result = evaluate(runner, examples, features, batch_size=batch_size, progress=progress,
                              model_info=model.describe())
            result.write(out_dir)
            step.detail = {"scores": result.scores.as_dict(),
                           "features_per_second": round(result.features_per_second, 2), "runner": result.runner}
        with _Timer(steps, "thresholds") as step:
            step.status, step.detail = judge_thresholds(result, model, tiny)
        if "bench" not in skip:
            from .bench import BenchSettings, run_benchmark

            with _Timer(steps, "bench") as step:
                settings = BenchSettings(batch_sizes=BENCH_BATCH_SIZES, seq_lens=(BENCH_SEQ_LEN,),
                                         iterations=BENCH_ITERATIONS, warmup=1)
                bench = run_benchmark(runner, features, settings, model_info=model.describe(),
                                      vocab_size=model.config.get("vocab_size"))
                bench.write(out_dir / "bench.json")
                step.detail = {"table": bench.table()}

    with _Timer(steps, "report") as step:
        from .report import write_report

        step.detail = {k: str(v) for k, v in write_report(out_dir).items()}

    report = {"profile": profile, "label": label_for(model, tiny), "model": model.describe(),
              "squad": str(squad_path), "passed": all(st.status != "failed" for st in steps),
              "steps": [st.__dict__ for st in steps]}
    write_json_atomic(out_dir / "report.json", report)
    write_text_atomic(out_dir / "report.md", render_markdown(report, result))
    return report, result


def judge_thresholds(result: EvalResult, model: LoadedModel, tiny: bool) -> tuple[str, dict]:
    """The reference thresholds (ByteMLPerf-compatible EM/F1, as the reference measured them) on
    real weights (or a known-answer model, judged the same way) over the whole dev set; a
    random-weight model or a partial run is not judged."""
    from .verdicts import reference_thresholds

    s = result.scores
    wanted = {"bytemlperf_exact_match": REFERENCE_EM_BYTEMLPERF, "bytemlperf_f1": REFERENCE_F1_BYTEMLPERF}
    if model.weights not in ("real", "known-answer") or tiny:
        return "skipped", {"reason": "random weights: accuracy is not judged", "thresholds": wanted}
    if s.questions != SQUAD_DEV_QUESTIONS:
        return "skipped", {"reason": f"{s.questions} questions evaluated, thresholds hold for the full dev set "
                                     f"({SQUAD_DEV_QUESTIONS})", "thresholds": wanted}
    verdict = reference_thresholds(s)
    return ("ok" if verdict.passed else "failed"), {**verdict.detail, "message": verdict.message}


def label_for(model: LoadedModel, tiny: bool) -> str:
    if tiny:
        from .selftest import SELFTEST_LABEL

        return SELFTEST_LABEL
    if model.weights == "known-answer":
        return "known-answer model: proves the accuracy gate's verdict, not any model's accuracy"
    return "random weights: conversion and speed only, not accuracy" if model.weights == "random" else "real weights"


def render_markdown(report: dict, result) -> str:
    s = result.scores
    verdict = "all steps passed" if report["passed"] else "FAILED: " + ", ".join(
        st["name"] for st in report["steps"] if st["status"] == "failed")
    lines = [
        f"# albert-ixrt acceptance run ({report['profile']})", "",
        f"**{report['label']}** — {verdict}", "",
        f"- model: `{report['model']['model']}` ({report['model']['weights']} weights)",
        f"- data: `{report['squad']}` ({s.questions} questions, {s.features} features)",
        f"- runner: {result.runner}", "",
        "| step | status | seconds |", "|---|---|---|",
        *[f"| {st['name']} | {st['status']} | {st['seconds']:.1f} |" for st in report["steps"]], "",
        "| metric | Exact Match | F1 |", "|---|---|---|",
        f"| official SQuAD v1.1 (mean over {s.questions} questions) | {s.exact_match:.2f} | {s.f1:.2f} |",
        f"| ByteMLPerf-compatible (sums / {s.features} features) | {s.bytemlperf_exact_match:.2f} | "
        f"{s.bytemlperf_f1:.2f} |", "",
    ]
    judged = next((st for st in report["steps"] if st["name"] == "thresholds"), None)
    if judged and "message" in judged["detail"]:
        lines += [f"Reference thresholds: {judged['detail']['message']}", ""]
    for name, title in (("equivalence", "Equivalence with torch fp32"), ("bench", "Throughput and latency")):
        step = next((st for st in report["steps"] if st["name"] == name), None)
        if step:
            lines += [f"## {title}", "", "```", step["detail"]["table"], "```", ""]
    lines += ["Throughput table against the reference row: `perf_report.md` (plot: `throughput.png`).", ""]
    return "\n".join(lines)


def summarize(report: dict, result) -> str:
    """One screenful for the terminal."""
    rows = [report["label"],
            *[f"  {st['name']:<11} {st['status']:<7} {st['seconds']:7.1f} s" for st in report["steps"]],
            *[f"  {line}" for line in result.scores.summary_lines()]]
    for st in report["steps"]:
        if st["name"] in ("equivalence", "bench"):
            rows += ["", st["detail"]["table"]]
    rows.append("PASSED" if report["passed"] else "FAILED: " + ", ".join(
        st["name"] for st in report["steps"] if st["status"] == "failed"))
    return "\n".join(rows)
