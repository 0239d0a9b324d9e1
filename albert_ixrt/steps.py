"""The acceptance steps, one function each: load -> features -> convert -> equivalence -> evaluate ->
thresholds -> bench.

``albert-ixrt run`` (``pipeline.run_acceptance``) strings them together and writes the report; the
commands (convert, evaluate, bench, layerwise, ...) and the pytest session fixtures call the same
functions, so a verdict the CLI reports and one pytest asserts come from one code path.  Each step
returns a small result object whose ``detail()`` is what the run's report records for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import assets
from .config import DEFAULT_MODEL_ID, DEFAULT_SQUAD, REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF, \
    SQUAD_DEV_QUESTIONS, SquadSettings
from .engine_input import ENGINE_BACKENDS, engine_graph, engine_stage  # noqa: F401 (re-exported)
from .errors import AlbertIxrtError, InputFileError
from .evaluate import EvalResult, evaluate
from .model import LoadedModel, load_model
from .squad.data import Example, load_squad
from .squad.features import Feature
from .tokenizer import AlbertTokenizer

#: Features compared stage by stage in the equivalence step (as in `convert --verify`), and its batch.
EQUIVALENCE_FEATURES, EQUIVALENCE_BATCH = 16, 8
#: The bench step: the reference shapes, a short run (the full harness is `albert-ixrt bench`).
BENCH_BATCH_SIZES, BENCH_SEQ_LEN, BENCH_ITERATIONS = (1, 16), DEFAULT_SQUAD.max_seq_length, 5
#: Backends that run an engine built from an ONNX stage (TensorRT, and ixRT's TensorRT-compatible API):
#: engine_input.ENGINE_BACKENDS, re-exported with the one decision (engine_stage, engine_graph).


# --------------------------------------------------------------------------------------------
# load: the model, its tokenizer and the SQuAD file
# --------------------------------------------------------------------------------------------
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


@dataclass
class Subject:
    """What a run judges: the model, its tokenizer, the SQuAD file, and whether it is the self-test."""
    model: LoadedModel
    tokenizer: AlbertTokenizer
    squad_path: Path
    tiny: bool = False

    @property
    def title(self) -> str:
        return title_for(self.model, self.tiny)

    @property
    def label(self) -> str:
        return label_for(self.model, self.tiny)

    def detail(self) -> dict:
        return {**self.model.describe(), "tokenizer": str(self.tokenizer.path), "squad": str(self.squad_path)}


def load_subject(*, profile: str = "real", model_spec: str | None = None, random_weights: bool = False,
                 squad: str | Path | None = None, tokenizer: str | None = None) -> Subject:
    """The load step: the model (``--profile tiny``: the embedded self-test model), the tokenizer
    that belongs to it (vocabulary checked), and the SQuAD file (tiny: the shipped sample)."""
    tiny = profile == "tiny"
    model = load_model("tiny" if tiny else (model_spec or DEFAULT_MODEL_ID), random_weights=random_weights)
    tok = AlbertTokenizer(resolve_tokenizer(model, tokenizer))
    check_vocab(tok, model)
    if tiny:
        from .selftest import squad_sample_path

        squad_path = Path(squad) if squad else squad_sample_path()
    else:
        squad_path = assets.squad_dev_path(squad)
    return Subject(model, tok, Path(squad_path), tiny)


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


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------
@dataclass
class FeatureSet:
    examples: list[Example]
    features: list[Feature]

    def detail(self) -> dict:
        return {"examples": len(self.examples), "features": len(self.features)}


def prepare_data(squad: str | Path, tokenizer: AlbertTokenizer, settings: SquadSettings = DEFAULT_SQUAD,
                 limit: int | None = None, progress: bool = True,
                 shard: tuple[int, int] | None = None, *, use_cache: bool = True,
                 workers: int = 1) -> tuple[list[Example], list[Feature]]:
    """Examples (the first ``limit``, then shard ``shard=(index, count)`` of them) and their features
    (from the feature cache unless ``use_cache`` is false; ``workers`` processes build them)."""
    from .feature_cache import cached_features
    from .parallel import shard as take_shard

    examples = load_squad(squad)
    chosen = range(len(examples))
    if limit is not None:
        if limit < 1:
            raise AlbertIxrtError(f"--limit must be >= 1, got {limit}")
        chosen = chosen[:limit]
    if shard is not None:
        part = take_shard(chosen, *shard)        # a contiguous run of example indices
        chosen = range(part[0], part[-1] + 1) if part else range(chosen.start, chosen.start)
    return examples[chosen.start:chosen.stop], cached_features(
        squad, tokenizer, settings, examples=examples, select=(chosen.start, chosen.stop), use_cache=use_cache,
        workers=workers, progress=progress)


def features_step(subject: Subject, limit: int | None = None, progress: bool = True,
                  settings: SquadSettings = DEFAULT_SQUAD, *, use_cache: bool = True, workers: int = 1) -> FeatureSet:
    return FeatureSet(*prepare_data(subject.squad_path, subject.tokenizer, settings, limit, progress,
                                    use_cache=use_cache, workers=workers))


# --------------------------------------------------------------------------------------------
# convert, and which graph an engine builds from
# --------------------------------------------------------------------------------------------
@dataclass
class Conversion:
    """The convert step: the stages' folder, their manifest, and the graph checks' problems."""
    onnx_dir: Path
    manifest: dict
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def stage_files(self) -> dict[str, Path]:
        from .export import stage_paths

        return stage_paths(self.manifest, self.onnx_dir)

    def detail(self) -> dict:
        d: dict = {"graph_problems": self.problems, **{
            name: {k: e[k] for k in ("file", "node_count", "fused_ops", "size_bytes", "seconds")}
            for name, e in self.manifest["stages"].items()}}
        if self.problems:
            d["reason"] = f"{len(self.problems)} graph problem(s): {self.problems[0]}"
        return d


def convert_step(model: LoadedModel, onnx_dir: str | Path, progress: bool = True) -> Conversion:
    """Convert ``model`` into ``onnx_dir`` (each stage reused while unchanged) and check every graph."""
    from .export import convert, graph_problems

    manifest = convert(model, Path(onnx_dir), progress=progress)
    return Conversion(Path(onnx_dir), manifest, graph_problems(manifest))


def conversion_dir(model: LoadedModel) -> Path:
    """Where ``model``'s conversion is cached (by the hash of its weights)."""
    return assets.CACHE_DIR / "onnx" / model.source_sha256[:16]


def converted(model: LoadedModel, progress: bool = True) -> tuple[Path, dict]:
    """(folder, manifest) of ``model``'s conversion in the user cache (each stage reused when unchanged)."""
    from .export import convert

    out = conversion_dir(model)
    return out, convert(model, out, progress=progress)


def engine_options(backend: str, batch_size: int, bench_batch_sizes=(), tf32: bool = False,
                   max_seq: int = DEFAULT_SQUAD.max_seq_length) -> dict:
    """Runner options of an engine (empty for other backends): the profile covers every batch the run
    feeds (evaluation at ``batch_size``, the equivalence step's batches, the bench sizes) at any length up
    to max_seq_length, decided before the build; TF32 only when asked."""
    if backend not in ENGINE_BACKENDS:
        return {}
    from .engine import ShapeProfile

    profile = ShapeProfile.for_feeds([batch_size, EQUIVALENCE_BATCH, *bench_batch_sizes], max(max_seq, BENCH_SEQ_LEN))
    return {"profile": profile, "tf32": tf32}


def convert_for_backend(model: LoadedModel, backend: str, precision: str) -> Path:
    """Convert ``model`` (each stage cached by content hash) and return the graph ``backend``
    starts from (``engine_input.engine_graph``, the one decision)."""
    out, manifest = converted(model)
    return engine_graph(manifest, out, backend, precision)


def make_runner(backend: str, model: LoadedModel | None, precision: str, onnx: str | Path | None = None, **kw):
    """A runner for ``backend``; ONNX-based backends take ``onnx`` (or convert ``model`` first)."""
    from .runners import create_runner

    if backend == "torch":
        return create_runner("torch", model=model, precision=precision, **kw)
    if backend in ENGINE_BACKENDS:
        from .engine import import_tensorrt

        import_tensorrt(backend)  # a missing library is reported now, not after a conversion
    if onnx is None:
        if model is None:
            raise AlbertIxrtError(f"backend {backend} needs --onnx or --model")
        onnx = convert_for_backend(model, backend, precision)
    return create_runner(backend, onnx_path=str(onnx), precision=precision, **kw)


# --------------------------------------------------------------------------------------------
# equivalence with torch fp32
# --------------------------------------------------------------------------------------------
@dataclass
class Equivalence:
    """The equivalence step: every stage against torch fp32 on real features, and, where a stage is
    over tolerance, the first layer that drifts (``albert-ixrt layerwise``)."""
    result: object                      # compare.EquivalenceResult
    drift: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.result.passed

    def detail(self) -> dict:
        eq = self.result
        return {"passed": eq.passed, "failures": eq.failures(), "table": eq.table(), **self.drift}


def equivalence_step(model: LoadedModel, conversion: Conversion, features: Sequence[Feature],
                     n_features: int = EQUIVALENCE_FEATURES, engine=None) -> Equivalence:
    """Every stage against torch fp32; ``engine`` (a TensorRT / ixRT runner) as one more row, "engine",
    with its precision's tolerance."""
    from .compare import SquadFeeds, compare_manifest

    feeds = SquadFeeds(features[:n_features], EQUIVALENCE_BATCH)
    eq = compare_manifest(model, conversion.manifest, conversion.onnx_dir, feeds, engine=engine)
    drift = {} if eq.passed else drift_detail(model, conversion.manifest, conversion.onnx_dir, eq, feeds)
    return Equivalence(eq, drift)


def drift_detail(model: LoadedModel, manifest: dict, onnx_dir, eq, feeds) -> dict:
    """Where each stage over tolerance drifts (``albert-ixrt layerwise``), for the report: the first
    layer over tolerance per failing stage, and the reason line naming it."""
    from .export import stage_paths
    from .layerwise import first_layer_lines, first_layers_over

    paths = stage_paths(manifest, onnx_dir)
    failing = list(dict.fromkeys(c.stage for c in eq.comparisons if not c.passed))
    found = first_layers_over(model, paths, feeds, [s for s in failing if s in paths])
    lines = first_layer_lines(found) + [f"{s}: `albert-ixrt layerwise --backend <its backend>` names its first layer "
                                        "over tolerance" for s in failing if s not in paths]
    return {"first_layer_over_tolerance": found,
            "reason": f"{len(eq.failures())} comparison(s) over tolerance ({'; '.join(lines)}): {eq.failures()[0]}"}


# --------------------------------------------------------------------------------------------
# evaluate, thresholds
# --------------------------------------------------------------------------------------------
def evaluate_step(runner, subject: Subject, data: FeatureSet, batch_size: int = 8,
                  progress: bool = True) -> EvalResult:
    return evaluate(runner, data.examples, data.features, batch_size=batch_size, progress=progress,
                    model_info=subject.model.describe())


def evaluation_detail(result: EvalResult) -> dict:
    return {"scores": result.scores.as_dict(), "features_per_second": round(result.features_per_second, 2),
            "runner": result.runner}


def thresholds_step(result: EvalResult, subject: Subject, data: FeatureSet, *, backend: str, precision: str,
                    batch_size: int = 8, progress: bool = True) -> tuple[str, dict]:
    """The thresholds step: ``judge_thresholds`` with the torch fp32 reference evaluated on the
    same features when the run under test is not that reference itself."""
    is_reference = (backend, precision) == ("torch", "fp32")
    reference = None if is_reference else reference_evaluation(subject.model, data.examples, data.features,
                                                                batch_size, progress)
    return judge_thresholds(result, subject.model, subject.tiny, reference)


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


# --------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------
def bench_step(runner, subject: Subject, features: Sequence[Feature],
               batch_sizes: Sequence[int] = BENCH_BATCH_SIZES, seq_len: int = BENCH_SEQ_LEN,
               iterations: int = BENCH_ITERATIONS):
    """A short benchmark of ``runner`` at the reference shapes on real features (a ``BenchReport``)."""
    from .bench import BenchSettings, run_benchmark

    settings = BenchSettings(batch_sizes=tuple(batch_sizes), seq_lens=(seq_len,), iterations=iterations, warmup=1)
    return run_benchmark(runner, features, settings, model_info=subject.model.describe(),
                         vocab_size=subject.model.config.get("vocab_size"))
