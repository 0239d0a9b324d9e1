"""The plan: every decision of an acceptance session, derived once from its ``Options``.

What is judged (the subject: model, weights, backend, precision, devices) and whether the user named
it; what data it reads; which batches it feeds and so which engine shape profile covers them; the
torch fp32 reference and its device; which steps run, which items each judges, and why a step is
left out.  Both doors build the same ``Plan`` from the same options (``run`` from argparse, the
pytest plugin from pytest's), before anything heavy is imported: a usage error is found here, in one
line (``AlbertIxrtError``), before a model loads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import DEFAULT_SQUAD
from ..engine_input import ENGINE_BACKENDS
from ..errors import AlbertIxrtError, BackendUnavailable
from ..export import STAGE_FILES
from ..options import (TORCHSCRIPT_SUFFIXES, check_backend_precision, check_device, check_input_file,
                       check_model_spec, check_tokenizer, looks_like_hub_id)
from .options import ENV_MODEL, RUN, Options

#: The built-in self-test model: what a session judges when no subject is named.
SELF_TEST_MODEL = "tiny"
#: Options that name the subject: any of them given means the user named what is judged, and then
#: a check that cannot judge it fails instead of skipping (unless --allow-skips).
SUBJECT_OPTIONS = ("model", "onnx", "engine", "random-weights", "backend", "precision", "device")

#: The acceptance parts, the steps each consists of, and the markers pytest selects them by.
PARTS = {"conversion": ("convert", "equivalence"), "accuracy": ("evaluate", "thresholds"), "perf": ("perf",)}
#: The part each step belongs to.
STEP_PART = {step: part for part, steps in PARTS.items() for step in steps}
STEP_ORDER = ("load", "features", "convert", "equivalence", "evaluate", "thresholds", "perf", "report")
STAGES = tuple(STAGE_FILES)
#: The runner under test's own row of the equivalence step (an engine's: the engine itself).
RUNNER_ITEM = "runner"
THRESHOLD_ITEMS = ("bytemlperf_exact_match", "bytemlperf_f1", "official_f1_ratio")
#: The conversion items of a user's own artefact: their ONNX file (as one stage), or their engine plan.
ONNX_ITEM, PLAN_ITEM = "onnx", "plan"
#: Bucketed perf timings: batches at the padded lengths evaluation's length bucketing gives.
BUCKETS = ("shortest", "median", "longest")


@dataclass(frozen=True)
class SubjectPlan:
    """What is judged, as named (resolved, checked, not loaded)."""

    model: str                       # absolute path, hub id, or "tiny"
    named_by: str | None             # the option or variable that named it; None: the built-in self-test
    random_weights: bool
    backend: str
    precision: str
    device: str
    reference_device: str
    onnx: str | None = None          # the user's ONNX file judged instead of the suite's conversion
    engine: str | None = None        # the user's engine plan judged instead of an engine the suite builds
    precision_stated: bool = True    # False: --engine without --precision (read from the plan)

    @property
    def named(self) -> bool:
        return self.named_by is not None

    @property
    def self_test(self) -> bool:
        return self.model == SELF_TEST_MODEL

    def describe(self) -> str:
        what = "the built-in tiny self-test model" if self.self_test else self.model
        weights = ", random weights" if self.random_weights else ""
        device = "" if self.device == "auto" else f" on {self.device}"
        if self.onnx or self.engine:
            kind = "ONNX file" if self.onnx else "engine plan"
            precision = self.precision if self.precision_stated else "precision from the plan"
            return f"{kind} {self.onnx or self.engine} on {self.backend} {precision}{device} (reference: {what})"
        return f"{what}{weights} on {self.backend} {self.precision}{device}"


@dataclass(frozen=True)
class DataPlan:
    """What the session reads: the SQuAD file (None: the official dev set, found by ``assets``), the
    tokenizer option, and how many questions."""

    squad: str | None
    sample: bool                     # the tiny self-test's shipped sample
    tokenizer: str | None
    limit: int | None
    use_cache: bool = True
    workers: int = 1


@dataclass(frozen=True)
class FeedPlan:
    """Every batch the session feeds the runner under test, so the engine profile can cover them all."""

    eval_batch: int
    perf_batches: tuple[int, ...]
    seq_len: int = DEFAULT_SQUAD.max_seq_length
    #: equivalence feeds: (batch, what): one unpadded short window, one full-length window, a padded batch
    equivalence: tuple = ((1, "short"), (1, "full window"), (8, "padded"))
    bucket_batch: int = 16

    def batches(self) -> tuple[int, ...]:
        """Every batch size fed (evaluation's last batch may be smaller: engine profiles start at 1)."""
        return tuple(sorted({1, self.eval_batch, *self.perf_batches, self.bucket_batch,
                             *(b for b, _ in self.equivalence)}))

    def perf_items(self) -> tuple[str, ...]:
        return (*(f"b{b}x{self.seq_len}" for b in self.perf_batches),
                *(f"bucketed-{bucket}" for bucket in BUCKETS))


@dataclass(frozen=True)
class StepPlan:
    name: str
    part: str | None                 # conversion / accuracy / perf; None: load, features, report
    items: tuple[str, ...] = ()
    skipped: str | None = None       # why the user left it out (--skip): not judged


@dataclass(frozen=True)
class Plan:
    options: Options
    subject: SubjectPlan
    data: DataPlan
    feeds: FeedPlan
    profile: object | None           # engine.ShapeProfile for tensorrt / ixrt, else None
    steps: tuple[StepPlan, ...] = field(default=())

    def step(self, name: str) -> StepPlan:
        return next(s for s in self.steps if s.name == name)

    @property
    def allow_skips(self) -> bool:
        return self.options.allow_skips

    def summary(self) -> str:
        """One line: what is judged, how, and which steps run."""
        left = [f"{s.name} ({s.skipped})" for s in self.steps if s.skipped]
        data = "the self-test sample" if self.data.sample else (self.data.squad or "the official SQuAD v1.1 dev set")
        line = (f"judging {self.subject.describe()} against torch fp32 on {self.subject.reference_device}, "
                f"data {data}" + (f" (first {self.data.limit} questions)" if self.data.limit else ""))
        return line + (f"; left out: {', '.join(left)}" if left else "")


# ---------------------------------------------------------------------------------------------
# Deriving the plan
# ---------------------------------------------------------------------------------------------
def named_model(options: Options) -> tuple[str, str | None]:
    """(model spec, what named it): --model, else $ALBERT_IXRT_MODEL, else the built-in self-test.
    An empty value of either is a usage error (an unset variable must not judge another model)."""
    if options.model is not None:
        if not options.model.strip():
            raise AlbertIxrtError("--model is empty (an unset variable in the command line?); name the model "
                                  "under test, or leave the option out for the built-in tiny self-test")
        return options.model, "--model"
    if options.env_model is not None:
        if not options.env_model.strip():
            raise AlbertIxrtError(f"${ENV_MODEL} is set but empty; name the model under test in it, or unset it "
                                  "for the built-in tiny self-test")
        return options.env_model, f"${ENV_MODEL}"
    return SELF_TEST_MODEL, None


def resolve_model_spec(spec: str) -> str:
    """A model given as a path is recorded resolved (absolute); a hub id or "tiny" as given."""
    p = Path(spec).expanduser()
    if spec == SELF_TEST_MODEL:
        return spec
    if p.exists() or spec.startswith((".", "/", "~")) or p.suffix in (*TORCHSCRIPT_SUFFIXES, ".json"):
        return str(p.resolve())
    return spec


def hub_id_unreachable(option: str, spec: str) -> None:
    """A hub id while offline (HF_HUB_OFFLINE) must be in the local Hugging Face cache: known now, so it is a
    usage error before any test (online, whether the hub has it is the loader's question)."""
    from ..model import is_offline

    if not looks_like_hub_id(spec) or not is_offline():
        return
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return
    if not isinstance(try_to_load_from_cache(spec, "config.json"), str):
        raise AlbertIxrtError(f"{option} {spec}: no such file or folder here, and not a hub id in the local Hugging "
                              "Face cache (offline: HF_HUB_OFFLINE is set); give the model's folder or file")


def subject_plan(options: Options) -> SubjectPlan:
    spec, named_by = named_model(options)
    if options.profile == "tiny" and named_by:
        raise AlbertIxrtError(f"--profile tiny is the built-in self-test; it cannot judge the model named by "
                              f"{named_by} ({spec}): drop one of them")
    given = options.given()
    if named_by is None and any(name in given for name in SUBJECT_OPTIONS):
        named_by = "--" + next(name for name in SUBJECT_OPTIONS if name in given)
    check_backend_precision(options.backend, options.precision)
    check_device(options.backend, options.device)
    check_device("torch", options.reference_device)
    if spec != SELF_TEST_MODEL:
        option = "--model" if named_by == "--model" else f"${ENV_MODEL}"
        check_model_spec(option, spec, random_weights=options.random_weights)
        hub_id_unreachable(option, spec)
    elif options.random_weights:
        raise AlbertIxrtError("--random-weights applies to a config.json or model directory; the built-in tiny "
                              "model has random weights already")
    onnx, engine = own_artefact(options, spec, named_by)
    return SubjectPlan(resolve_model_spec(spec), named_by, options.random_weights, options.backend,
                       options.precision, options.device, options.reference_device, onnx, engine,
                       precision_stated=not engine or "precision" in given)


def own_artefact(options: Options, spec: str, named_by: str | None) -> tuple[str | None, str | None]:
    """The user's own ONNX file or engine plan, checked: with the backends that run it, and with --model
    naming the torch model it is judged against (resolved paths)."""
    if not (options.onnx or options.engine):
        return None, None
    if options.onnx and options.engine:
        raise AlbertIxrtError("--onnx and --engine each name the subject: give one of them")
    flag = "--onnx" if options.onnx else "--engine"
    if named_by not in ("--model", f"${ENV_MODEL}"):
        raise AlbertIxrtError(f"{flag} needs --model naming the torch model it must match (the reference every "
                              "output is judged against): a hub id, a model directory or a TorchScript file")
    if options.engine and options.backend not in ENGINE_BACKENDS:
        raise AlbertIxrtError(f"--engine {options.engine}: a plan runs on --backend tensorrt or ixrt, not "
                              f"{options.backend}")
    if options.onnx and options.backend == "torch":
        raise AlbertIxrtError(f"--onnx {options.onnx} runs on --backend onnxruntime, tensorrt or ixrt; with torch it "
                              "would be ignored")
    path = str(Path(options.onnx or options.engine).resolve())
    if options.onnx:
        check_user_onnx(path)
    return (path, None) if options.onnx else (None, path)


def check_user_onnx(path: str) -> None:
    """A user's ONNX file before any work: an ONNX model (weights not read), the QA model's inputs and outputs
    by name, each [batch, sequence] with both axes dynamic (the session feeds batches of several sizes at
    several lengths).  One line naming the problem."""
    import onnx

    from ..errors import InputFileError
    from ..model import INPUT_NAMES, OUTPUT_NAMES

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 (protobuf raises several types)
        raise InputFileError(path, f"not an ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") \
            from None
    weights = {t.name for t in model.graph.initializer}      # older exporters list initializers as inputs too
    for kind, values, names in (("inputs", [v for v in model.graph.input if v.name not in weights], INPUT_NAMES),
                                ("outputs", model.graph.output, OUTPUT_NAMES)):
        got = [v.name for v in values]
        if sorted(got) != sorted(names):
            raise InputFileError(path, f"its {kind} are {got}; the QA model's are {list(names)}")
        for v in values:
            dims = list(v.type.tensor_type.shape.dim)
            if len(dims) != 2:
                raise InputFileError(path, f"{kind[:-1]} {v.name!r} has rank {len(dims)}; the QA model's tensors are "
                                           "[batch, sequence]")
            for axis, what in enumerate(("batch", "sequence")):
                if dims[axis].HasField("dim_value"):
                    raise InputFileError(path, f"{kind[:-1]} {v.name!r} fixes its {what} axis to "
                                               f"{dims[axis].dim_value}; the session feeds several {what} sizes: "
                                               f"export it with a dynamic {what} axis")


def data_plan(options: Options, subject: SubjectPlan) -> DataPlan:
    check_input_file("--squad", options.squad, what="SQuAD JSON file")
    check_tokenizer("--tokenizer", options.tokenizer)
    squad = str(Path(options.squad).resolve()) if options.squad else None
    if squad:
        from ..squad.data import load_squad

        load_squad(squad)   # a malformed or SQuAD v2.0 file is refused before any work (under a second)
    workers = options.workers
    if workers is None:
        from ..options import default_workers

        workers = default_workers() if options.door == RUN else 1
    return DataPlan(squad, subject.self_test and squad is None, options.tokenizer, options.limit,
                    not options.no_feature_cache, workers)


def conversion_items(subject: SubjectPlan) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(convert items, equivalence items): the suite's five stages, the user's ONNX file, or their plan."""
    if subject.onnx:
        return (ONNX_ITEM,), (ONNX_ITEM, RUNNER_ITEM)
    if subject.engine:
        return (PLAN_ITEM,), (RUNNER_ITEM,)
    return STAGES, (*STAGES, RUNNER_ITEM)


def step_plans(options: Options, feeds: FeedPlan, subject: SubjectPlan) -> tuple[StepPlan, ...]:
    convert, equivalence = conversion_items(subject)
    items = {"convert": convert, "equivalence": equivalence, "thresholds": THRESHOLD_ITEMS,
             "perf": feeds.perf_items()}
    out = []
    for name in STEP_ORDER:
        skipped = "left out with --skip" if name in options.skip else None
        if name == "equivalence" and "convert" in options.skip and not skipped:
            skipped = "needs the convert step, left out with --skip"
        out.append(StepPlan(name, STEP_PART.get(name), tuple(items.get(name, ())), skipped))
    return tuple(out)


def check_available(subject: SubjectPlan, allow_skips: bool) -> None:
    """What can be known before any model loads: the engine library of a tensorrt / ixrt subject, and a
    CUDA device the subject or the reference names.  Missing: a usage error for a named subject (it
    could not be judged), unless --allow-skips; the default self-test then skips those checks."""
    if not subject.named or allow_skips:
        return
    try:
        if subject.backend in ENGINE_BACKENDS:
            from ..engine import import_tensorrt

            import_tensorrt(subject.backend)
        for backend, device in ((subject.backend, subject.device), ("torch", subject.reference_device)):
            device_unavailable(backend, device)
    except BackendUnavailable as exc:
        raise AlbertIxrtError(f"{subject.describe()} cannot be judged here: {exc.reason} (--allow-skips turns "
                              "checks that need it into skips, and the run is then NOT SIGNED OFF)") from None


def device_unavailable(backend: str, device: str) -> None:
    """``BackendUnavailable`` when ``device`` (a CUDA device, or onnxruntime's cuda / tensorrt execution
    providers) is not here; "auto" and "cpu" always are."""
    if device in ("auto", "cpu"):
        return
    if backend == "onnxruntime":
        import onnxruntime

        from ..runners.ort_runner import choose_providers

        choose_providers(device, onnxruntime.get_available_providers())
    elif backend == "torch":
        from ..runners.torch_runner import resolve_device

        resolve_device(device)


def device_in_use(backend: str, device: str) -> str:
    """The device a runner of ``backend`` asked for ``device`` runs on ("auto" resolved)."""
    if backend in ENGINE_BACKENDS:
        return "cuda"
    if backend == "onnxruntime":
        import onnxruntime

        from ..runners.ort_runner import choose_providers

        return "cpu" if choose_providers(device, onnxruntime.get_available_providers())[0] == "CPUExecutionProvider" \
            else "cuda"
    from ..runners.torch_runner import resolve_device

    return resolve_device(device)


def check_values(options: Options) -> None:
    """What argparse checks while parsing, again for callers that build ``Options`` themselves."""
    from ..options import check_positive
    from .options import BY_NAME, SKIPPABLE

    check_positive("--batch-size", options.batch_size, allow_none=False)
    check_positive("--limit", options.limit)
    check_positive("--workers", options.workers)
    for b in options.perf_batch_sizes:
        check_positive("--perf-batch-sizes", b, allow_none=False)
    unknown = sorted(set(options.skip) - set(SKIPPABLE))
    if unknown:
        raise AlbertIxrtError(f"--skip {' '.join(unknown)}: not a step that can be left out; choose from "
                              f"{', '.join(SKIPPABLE)}")
    if options.profile not in (None, *BY_NAME["profile"].choices):
        raise AlbertIxrtError(f"--profile {options.profile!r} is not a profile; the one profile is tiny (the built-in "
                              "self-test, also the default when no model is named)")


def make_plan(options: Options) -> Plan:
    """The plan of ``options``, or ``AlbertIxrtError`` naming the first problem (nothing loaded yet)."""
    check_values(options)
    subject = subject_plan(options)
    data = data_plan(options, subject)
    feeds = FeedPlan(eval_batch=options.batch_size, perf_batches=tuple(sorted(set(options.perf_batch_sizes))))
    if not feeds.perf_batches:
        raise AlbertIxrtError("--perf-batch-sizes needs at least one batch size")
    profile = None
    if subject.backend in ENGINE_BACKENDS:
        from ..engine import ShapeProfile

        profile = ShapeProfile.for_feeds(feeds.batches(), feeds.seq_len)
    check_available(subject, options.allow_skips)
    return Plan(options, subject, data, feeds, profile, step_plans(options, feeds, subject))
