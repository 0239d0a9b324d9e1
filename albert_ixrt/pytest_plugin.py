"""The suite's pytest plugin: options, markers, the subject under test and its session fixtures.

Shipped in the package and registered as a ``pytest11`` entry point named like this module
(``albert_ixrt.pytest_plugin``), so the options exist whatever pytest picks as rootdir (``--model
/models/x`` outside the checkout) and a rootdir conftest that asks for the module by name finds it
already registered (pytest's ``import_plugin`` looks plugins up by that name).

An installed plugin is loaded by every pytest run in its environment, so it stays out of other
projects' way:
- each option has a namespaced spelling (``--albert-model``, ``--albert-backend``, ...) beside the
  documented one (``--model``); where another plugin or conftest already defines the documented
  spelling, only the namespaced one is added, and values are read by the namespaced dest;
- importing it imports no torch (validation of the subject is pure string and path checks);
- its fixtures are all named ``albert_*`` and act only where a test asks for them; its hooks act on
  tests that use them (subject recording, the perf summary) or on nothing.

The *subject under test* (model, weights, backend, precision, device) is chosen once from the
options and checked in ``pytest_configure``, before collection: an unknown backend or precision, a
device the backend cannot use, or a model path that does not exist is a usage error (exit 4, one
line naming the choices).  Missing real weights or data keep their skip (a failure under
``--strict-assets``).  Default subject: the built-in ``tiny`` self-test model.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import pytest

from .errors import AlbertIxrtError

#: Name the plugin is registered under: the module's own (see the module docstring).
PLUGIN_NAME = __name__

MARKERS = {
    "conversion": "acceptance: the subject's graphs and runner against torch fp32 (tests/conversion)",
    "perf": "acceptance: throughput and latency of the subject's runner, pytest-benchmark (tests/perf)",
    "accuracy": "acceptance: SQuAD v1.1 dev-set accuracy of the subject (tests/accuracy)",
    "selftest": "checks of the suite's own machinery on tiny/twin models, planted faults and fakes (tests/selftest)",
    "gpu": "needs a CUDA GPU (skips without one unless --require-gpu)",
    "slow": "minutes, not seconds, on a 2-core CPU",
}

#: The default subject when neither --model nor $ALBERT_IXRT_MODEL names one.
DEFAULT_SUBJECT_MODEL = "tiny"
ENV_MODEL = "ALBERT_IXRT_MODEL"
#: Batch sizes the perf tests time at sequence 384 (the reference's batch 16, and batch 1).
DEFAULT_PERF_BATCH_SIZES = (1, 16)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


#: (documented spelling, dest, addoption keywords).  The namespaced spelling is ``--albert-<name>``.
OPTIONS = (
    ("--model", "albert_model", dict(default=None, help="model under test: hub id, HF directory, TorchScript .pt, "
                                     "or config.json (with --random-weights); default: $ALBERT_IXRT_MODEL, else "
                                     "the built-in tiny self-test model")),
    ("--random-weights", "albert_random_weights", dict(action="store_true", help="allow the seeded random-weight "
                                                       "shape twin of a config.json")),
    ("--squad", "albert_squad", dict(default=None, help="SQuAD v1.1 dev JSON (default: $ALBERT_IXRT_SQUAD or "
                                     "../shared/data)")),
    ("--tokenizer", "albert_tokenizer", dict(default=None, help="spiece.model or model dir (default: the model's "
                                             "own, $ALBERT_IXRT_TOKENIZER or ../shared/data/albert-base-v2)")),
    ("--backend", "albert_backend", dict(default="torch", help="runner under test (torch, onnxruntime, tensorrt, "
                                         "ixrt)")),
    ("--precision", "albert_precision", dict(default="fp32", help="precision of the runner under test")),
    ("--device", "albert_device", dict(default="auto", help="device of the runner under test (torch: cpu, cuda, "
                                       "cuda:N; onnxruntime: cpu, cuda, tensorrt; engines: auto)")),
    ("--perf-batch-sizes", "albert_perf_batch_sizes",
     dict(nargs="+", type=_positive_int, default=list(DEFAULT_PERF_BATCH_SIZES),
          help="batch sizes the perf tests time at sequence 384 (default 1 16)")),
    ("--strict-assets", "albert_strict_assets", dict(action="store_true", help="fail instead of skipping when real "
                                                     "weights or data are missing (nightly CI)")),
    ("--require-gpu", "albert_require_gpu", dict(action="store_true", help="fail instead of skipping when a GPU, "
                                                 "TensorRT or another asked-for backend is missing")),
)


def namespaced(documented: str) -> str:
    return "--albert-" + documented[2:]


def _taken(parser) -> set[str]:
    """Option strings already defined on pytest's parser (by pytest, a plugin or a conftest).
    pytest has no public lookup; its Parser keeps OptionGroups whose Arguments know their names."""
    names: set[str] = set()
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    for group in groups:
        for opt in getattr(group, "options", []) if group is not None else []:
            names.update(opt.names())
    return names


def pytest_addoption(parser):
    """The namespaced spellings now; the documented ones once the initial conftests have added theirs
    (``pytest_load_initial_conftests`` below): pytest's argparse refuses a second definition of an
    option string outright, so whichever side came second would break."""
    group = parser.getgroup("albert-ixrt", "albert-ixrt: the subject under test")
    for documented, dest, kw in OPTIONS:
        group.addoption(namespaced(documented), dest=dest, **kw)


DOCUMENTED_ATTR = "_albert_ixrt_documented"


def add_documented_spellings(parser) -> tuple[list[str], list[str]]:
    """Add ``--model``, ``--backend``, ... beside the namespaced spellings, except where another plugin
    or conftest already defines one; returns (added, left to the other definer).  Idempotent."""
    done = getattr(parser, DOCUMENTED_ATTR, None)
    if done is not None:
        return done
    taken = _taken(parser)
    group = parser.getgroup("albert-ixrt")
    added, left = [], []
    for documented, dest, kw in OPTIONS:
        if documented in taken:
            left.append(documented)
            continue
        kw = {**kw, "help": f"same as {namespaced(documented)}"}
        group.addoption(documented, dest=dest, **kw)
        added.append(documented)
    setattr(parser, DOCUMENTED_ATTR, (added, left))
    return added, left


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    result = yield
    add_documented_spellings(parser)
    return result


def option(config, dest: str):
    """The value of one of this plugin's options by its dest (``"model"`` -> ``albert_model``)."""
    return config.getoption(f"albert_{dest.replace('-', '_')}")


@dataclass(frozen=True)
class SubjectSpec:
    """What the acceptance modules judge, as the user named it (checked, not yet loaded)."""

    model: str
    random_weights: bool
    backend: str
    precision: str
    device: str
    perf_batch_sizes: tuple[int, ...]
    squad: str | None
    tokenizer: str | None
    strict_assets: bool
    require_gpu: bool

    @property
    def is_tiny(self) -> bool:
        return self.model == DEFAULT_SUBJECT_MODEL

    def describe(self) -> dict:
        return {"model": self.model, "backend": self.backend, "precision": self.precision, "device": self.device}


def subject_from(config) -> SubjectSpec:
    return SubjectSpec(model=option(config, "model") or os.environ.get(ENV_MODEL) or DEFAULT_SUBJECT_MODEL,
                   random_weights=bool(option(config, "random_weights")), backend=option(config, "backend"),
                   precision=option(config, "precision"), device=option(config, "device"),
                   perf_batch_sizes=tuple(sorted(set(option(config, "perf_batch_sizes")))),
                   squad=option(config, "squad"), tokenizer=option(config, "tokenizer"),
                   strict_assets=bool(option(config, "strict_assets")),
                   require_gpu=bool(option(config, "require_gpu")))


def check_subject(subject: SubjectSpec) -> None:
    """Usage errors in what the user named (``AlbertIxrtError``, one line): no torch, no model load."""
    from .options import (check_backend_precision, check_device, check_input_file, check_model_spec,
                          check_tokenizer)

    check_backend_precision(subject.backend, subject.precision)
    check_device(subject.backend, subject.device)
    if not subject.is_tiny:
        check_model_spec("--model", subject.model, random_weights=subject.random_weights)
    check_input_file("--squad", subject.squad, what="SQuAD JSON file")
    check_tokenizer("--tokenizer", subject.tokenizer)


SUBJECT_KEY = pytest.StashKey["SubjectSpec"]()


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    subject = subject_from(config)
    try:
        check_subject(subject)
    except AlbertIxrtError as exc:
        raise pytest.UsageError(f"albert-ixrt: {exc}") from None
    config.stash[SUBJECT_KEY] = subject
    if this_suite(config):
        # Under pytest-xdist with several GPUs, each worker gets one (before anything touches CUDA).
        from .parallel import pin_worker_gpu

        pin_worker_gpu(os.environ.get("PYTEST_XDIST_WORKER"))


def this_suite(config) -> bool:
    """Is this pytest run the albert-ixrt suite (its checkout as rootdir, or an albert-ixrt option
    given)?  Process-wide effects (GPU pinning, the report header) are kept to such runs."""
    if (config.rootpath / "albert_ixrt" / "pytest_plugin.py").is_file():
        return True
    return any(config.getoption(dest) not in (None, False, kw.get("default")) for _, dest, kw in OPTIONS)


def pytest_report_header(config):
    subject = config.stash.get(SUBJECT_KEY, None)
    if subject is None or not this_suite(config):
        return None
    weights = " (random weights)" if subject.random_weights else ""
    lines = [f"albert-ixrt subject: model {subject.model}{weights}, backend {subject.backend}, "
             f"precision {subject.precision}, device {subject.device}"]
    _, left = getattr(config._parser, DOCUMENTED_ATTR, ((), ()))
    if left:
        lines.append(f"albert-ixrt: {', '.join(left)} belong(s) to another plugin or conftest here; this suite reads "
                     f"{', '.join(namespaced(o) for o in left)}")
    return lines


# ---------------------------------------------------------------------------------------------
# Skips and failures the options decide
# ---------------------------------------------------------------------------------------------
def skip_or_fail(request, reason: str, *, strict_option: str) -> None:
    """Skip with ``reason``; fail instead when the user asked for strictness with ``strict_option``
    (``--strict-assets`` or ``--require-gpu``)."""
    if option(request.config, strict_option.lstrip("-")):
        pytest.fail(f"{reason} (and {strict_option} was given)", pytrace=False)
    pytest.skip(reason)


def distributed(config) -> bool:
    """True under an xdist worker, or on the controller of a distributed run."""
    if os.environ.get("PYTEST_XDIST_WORKER") or hasattr(config, "workerinput"):
        return True
    try:
        return config.getoption("dist", "no") != "no" or bool(config.getoption("numprocesses", None))
    except ValueError:
        return False


#: Why perf tests skip under pytest-xdist: pytest-benchmark switches itself off there, and parallel workers
#: would time each other.
XDIST_PERF_REASON = ("perf tests need a serial run: pytest-benchmark disables itself under pytest-xdist and "
                     "parallel workers time each other; rerun with -p no:xdist (or -n 0)")


def warn_perf_distributed(config, folder: str) -> None:
    """A perf folder's conftest calls this in pytest_configure: under xdist, say once why its tests skip."""
    if distributed(config):
        warnings.warn(pytest.PytestWarning(f"{folder}: {XDIST_PERF_REASON}"))


def perf_items(config, items, folder: str) -> list:
    """The collected ``items`` that live under ``folder``; under xdist each is skipped with the reason."""
    here = os.path.join(folder, "")
    mine = [item for item in items if str(item.fspath).startswith(here)]
    if distributed(config):
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=XDIST_PERF_REASON))
    return mine


# ---------------------------------------------------------------------------------------------
# The subject's artefacts, each built once per session through the run's own steps (steps.py)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def albert_subject(request) -> SubjectSpec:
    """The subject under test as the options name it (validated at configure time)."""
    return request.config.stash[SUBJECT_KEY]


@pytest.fixture(scope="session")
def albert_subject_loaded(request, albert_subject):
    """``steps.load_subject``: the model, the tokenizer that belongs to it, the SQuAD dev set (the real
    one for every subject, the tiny self-test model included).  Missing weights or data skip (fail
    under --strict-assets)."""
    from . import assets, steps

    s = albert_subject
    try:
        squad = assets.squad_dev_path(s.squad, download=False)
        return steps.load_subject(profile="tiny" if s.is_tiny else "real", model_spec=None if s.is_tiny else s.model,
                                  random_weights=s.random_weights, squad=squad, tokenizer=s.tokenizer)
    except assets.AssetMissingError as exc:
        skip_or_fail(request, f"subject under test not found: {exc}", strict_option="--strict-assets")


@pytest.fixture(scope="session")
def albert_subject_model(albert_subject_loaded):
    return albert_subject_loaded.model


@pytest.fixture(scope="session")
def albert_subject_tokenizer(albert_subject_loaded):
    return albert_subject_loaded.tokenizer


@pytest.fixture(scope="session")
def albert_dev_examples(albert_subject_loaded):
    from .squad.data import load_squad

    return load_squad(albert_subject_loaded.squad_path)


@pytest.fixture(scope="session")
def albert_subject_data(albert_subject_loaded):
    """``steps.features_step``: the whole dev set's features with the subject's tokenizer (accuracy)."""
    from . import steps

    return steps.features_step(albert_subject_loaded, progress=False)


@pytest.fixture(scope="session")
def albert_subject_converted(albert_subject_model):
    """``steps.convert_step`` into the conversion cache: every stage (reused while unchanged) and the
    graph checks' problems."""
    from . import steps

    return steps.convert_step(albert_subject_model, steps.conversion_dir(albert_subject_model), progress=False)


#: Batch sizes the conversion checks feed (1 unpadded, 8 padded) and the longest sequence.
CONVERSION_BATCH_SIZES = (1, 8)
MAX_SEQ = 384
#: Real dev inputs of the conversion checks: the shortest distinct contexts (one window each) and
#: the longest context (full 384-token windows).
SHORT_CONTEXTS = 8


@pytest.fixture(scope="session")
def albert_subject_feeds(albert_dev_examples, albert_subject_tokenizer):
    """Real dev inputs through the subject's tokenizer: batch 1 unpadded short, batch 1 unpadded
    long (a full 384-token window), batch 8 padded to its longest (distinct lengths)."""
    from .compare import ChainedFeeds, SquadFeeds
    from .squad.features import build_features

    by_length = sorted({ex.context: ex for ex in albert_dev_examples}.values(), key=lambda ex: len(ex.context))
    short = build_features(by_length[:SHORT_CONTEXTS], albert_subject_tokenizer, progress=False)
    long = build_features(by_length[-1:], albert_subject_tokenizer, progress=False)
    return ChainedFeeds(SquadFeeds(short[:1], 1), SquadFeeds(long[:1], 1), SquadFeeds(short[:8], 8))


@pytest.fixture(scope="session")
def albert_subject_equivalence(albert_subject_model, albert_subject_converted, albert_subject_feeds):
    """torch fp32 against every converted stage of the subject on the feeds above, once per session
    (what ``steps.equivalence_step`` compares, on the conversion tests' chosen inputs)."""
    from .compare import compare_manifest

    conv = albert_subject_converted
    return compare_manifest(albert_subject_model, conv.manifest, conv.onnx_dir, albert_subject_feeds)


#: Batch size of the accuracy evaluation (the reference's batch 16).
ACCURACY_BATCH_SIZE = 16
#: The runner under test once built (so subject recording can name its engine).
RUNNER_KEY = pytest.StashKey[object]()


@pytest.fixture(scope="session")
def albert_subject_runner(request, albert_subject, albert_subject_model):
    """The runner under test, built once (``steps.make_runner``): for TensorRT/ixRT the engine from the
    graph the one engine-input decision picks (``engine_input.engine_graph``), its profile covering every
    batch the session feeds."""
    from . import steps
    from .errors import BackendUnavailable

    s = albert_subject
    kw: dict = {"device": s.device}
    onnx = None
    try:
        if s.backend != "torch":  # torch runs the module itself: no conversion (a TorchScript model has none)
            conv = request.getfixturevalue("albert_subject_converted")
            onnx = steps.engine_graph(conv.manifest, conv.onnx_dir, s.backend, s.precision)
        if s.backend in steps.ENGINE_BACKENDS:
            from .engine import ShapeProfile

            batches = {*s.perf_batch_sizes, *CONVERSION_BATCH_SIZES, ACCURACY_BATCH_SIZE}
            kw["profile"] = ShapeProfile.covering(batches, (1, MAX_SEQ))
        runner = steps.make_runner(s.backend, albert_subject_model, s.precision, onnx, **kw)
    except BackendUnavailable as exc:
        skip_or_fail(request, exc.reason, strict_option="--require-gpu")
    request.config.stash[RUNNER_KEY] = runner
    with runner:
        yield runner
    del request.config.stash[RUNNER_KEY]


@pytest.fixture(scope="session")
def albert_reference_runner(albert_subject_model):
    """torch fp32 on the CPU: what every stage, runner and timed output is checked against."""
    from .steps import make_runner

    with make_runner("torch", albert_subject_model, "fp32", device="cpu") as runner:
        yield runner


def is_emulated(description: dict) -> bool:
    """A TensorRT stand-in labels itself "emulated" (tests/support/emulated-tensorrt): its timings are
    the stand-in's, never published as TensorRT figures."""
    return any("emulated" in str(v).lower() for v in description.values())


def engine_label(runner) -> str:
    """One label for the plan or runtime that produced the numbers."""
    d = runner.describe()
    if "engine" in d:
        parts = [d.get("backend", ""), str(d.get("tensorrt", "")), d.get("typing", ""), d.get("graph", "")]
        label = " ".join(p for p in parts if p) + f" plan {os.path.basename(str(d['engine']))}"
        return label + (" (emulated)" if is_emulated(d) and "emulated" not in label.lower() else "")
    if "onnx" in d:
        return f"{d.get('backend')} session on {os.path.basename(str(d['onnx']))}"
    return f"{d.get('backend')} eager module"


def subject_properties(subject: SubjectSpec, model) -> dict:
    return {"subject_model": model.name, "subject_weights": model.weights, "subject_backend": subject.backend,
            "subject_precision": subject.precision, "subject_device": subject.device}


@pytest.fixture
def albert_record_subject(request, record_property, albert_subject, albert_subject_model):
    """Records the subject in the test's JUnit testcase (model, weights, backend, precision, device;
    the engine/plan label once the runner under test exists)."""
    for key, value in subject_properties(albert_subject, albert_subject_model).items():
        record_property(key, value)
    yield
    runner = request.config.stash.get(RUNNER_KEY, None)
    if runner is not None:  # teardown: pytest's junitxml reads properties from the teardown report
        d = runner.describe()
        record_property("subject_device_used", d.get("device", albert_subject.device))
        record_property("subject_engine", engine_label(runner))
    else:
        record_property("subject_engine", "none built yet (this test needs no runner)")


# ---------------------------------------------------------------------------------------------
# Perf summary: the subject's rows beside the reference row (only when perf tests recorded any)
# ---------------------------------------------------------------------------------------------
PERF_ROWS_KEY = pytest.StashKey[list]()


def perf_rows(config) -> list:
    return config.stash.setdefault(PERF_ROWS_KEY, [])


# ---------------------------------------------------------------------------------------------
# The default run leaves out tests marked slow (issue 17: it stays within ~490 CPU-s on 2 cores);
# CI runs them as their own step (.ci/run, .github/workflows/ci.yml)
# ---------------------------------------------------------------------------------------------
SLOW_HINT = "`pytest -m slow` runs them, `pytest -m 'slow or not slow'` runs everything"
SLOW_LEFT_OUT_KEY = pytest.StashKey[int]()


def _named_files(config) -> set[str]:
    """Test files the user named on the command line (a file or a node id in it, not a folder)."""
    from pathlib import Path

    named = set()
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0])
        if path.is_file():
            named.add(str(path.resolve()))
    return named


def pytest_collection_modifyitems(config, items):
    """This suite's tests marked slow are left out unless asked for: by a -m expression (the user's
    -m decides alone: `-m slow`, `-m accuracy`, `-m "conversion and not slow"`), or by naming their
    file or node id.  A plain `pytest -q` (or a folder) runs the rest and says how many it left out."""
    from pathlib import Path

    if config.option.markexpr or not this_suite(config):
        return
    named = _named_files(config)
    slow = [item for item in items if item.get_closest_marker("slow") and str(Path(item.fspath).resolve()) not in named]
    if slow:
        config.hook.pytest_deselected(items=slow)
        left_out = set(slow)
        items[:] = [item for item in items if item not in left_out]
        config.stash[SLOW_LEFT_OUT_KEY] = len(slow)


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(SLOW_LEFT_OUT_KEY, 0)
    if left_out:
        terminalreporter.write_line(f"{left_out} slow tests left out of the default run ({MARKERS['slow']}): "
                                    f"{SLOW_HINT}")
    rows = config.stash.get(PERF_ROWS_KEY, [])
    if not rows:
        return
    from .report import reference_row

    terminalreporter.write_sep("-", "albert-ixrt perf: the subject beside the reference row")
    ref = reference_row()
    table = [("model (weights)", "backend/precision", "device", "batch x seq", "seq/s", "batches/s", "p50/p90/p99 ms"),
             *[(f"{r['model']} ({r['weights']})", f"{r['backend']}/{r['precision']}"
                + (" EMULATED" if r.get("emulated") else ""), str(r["device"]), f"{r['batch_size']}x{r['seq_len']}",
                f"{r['sequences_per_s']:.1f}", f"{r['batches_per_s']:.2f}",
                f"{r['p50_ms']:.2f}/{r['p90_ms']:.2f}/{r['p99_ms']:.2f}") for r in rows],
             (ref.model, f"{ref.backend}/{ref.precision}", ref.device,
              f"{ref.batch_size}x{ref.seq_len}", f"{ref.sequences_per_s:.1f}", f"{ref.batches_per_s:.2f}", "")]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        terminalreporter.write_line("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
