"""The suite's pytest plugin: the pytest door of the acceptance session.

Shipped in the package and registered as a ``pytest11`` entry point named like this module, so the
options exist whatever pytest picks as rootdir, and an installed package runs its acceptance modules
from any folder: ``python -m pytest --pyargs albert_ixrt.acceptance -m perf --model /abs/mine``.

Thin by design (as pytest-benchmark's hooks are): the options come from the acceptance option table
(``acceptance/options.py``, the same table ``albert-ixrt run`` reads), the plan is made once at
configure time (a usage error is exit 4, one line, before collection), one ``acceptance.Session`` is
opened for the whole run, and each acceptance test asserts one item verdict of it (``albert_judge``).
The verdict line and the sign-off record come from the same rule and writer as ``run``'s.

An installed plugin is loaded by every pytest run of its environment, so it stays out of other
projects' way: each option has a namespaced spelling (``--albert-model``, ...) beside the documented
one, which another plugin may own; importing it imports no torch; its fixtures are named ``albert_*``.
"""
from __future__ import annotations

import os
import warnings

import pytest

from .acceptance.options import PYTEST, Opt, add_options, offered
from .errors import AlbertIxrtError

MARKERS = {
    "albert_check": "albert_check(step, *items): the acceptance check this test asserts (albert_ixrt/acceptance)",
    "conversion": "acceptance: the subject's graphs and runner against torch fp32 (albert_ixrt/acceptance)",
    "perf": "acceptance: throughput and latency of the subject's runner, pytest-benchmark (albert_ixrt/acceptance)",
    "accuracy": "acceptance: SQuAD v1.1 dev-set accuracy of the subject (albert_ixrt/acceptance)",
    "selftest": "checks of the suite's own machinery on tiny/twin models, planted faults and fakes (tests/)",
    "gpu": "needs a CUDA GPU (skips without one unless --require-gpu)",
    "slow": "minutes, not seconds, on a 2-core CPU",
}


def namespaced(opt: Opt | str) -> str:
    name = opt.name if isinstance(opt, Opt) else opt.lstrip("-")
    return "--" + (name if name.startswith("albert-") else "albert-" + name)


def option(config, dest: str):
    """The value of one of this plugin's options by its dest (``"model"`` -> ``albert_model``)."""
    dest = dest.replace("-", "_")
    return config.getoption(dest if dest.startswith("albert_") else f"albert_{dest}")


def pytest_addoption(parser):
    """The namespaced spellings now; the documented ones once the initial conftests have added theirs
    (``pytest_load_initial_conftests`` below): pytest's argparse refuses a second definition of an
    option string, so whichever side came second would break."""
    group = parser.getgroup("albert-ixrt", "albert-ixrt: the subject under test")
    add_options(group.addoption, PYTEST, spelling=lambda opt: [namespaced(opt)], dest_prefix="albert_")


def _taken(parser) -> set[str]:
    """Option strings already defined on pytest's parser (by pytest, a plugin or a conftest).
    pytest has no public lookup; its Parser keeps OptionGroups whose Arguments know their names."""
    names: set[str] = set()
    for group in [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]:
        for opt in getattr(group, "options", []) if group is not None else []:
            names.update(opt.names())
    return names


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
    for opt in offered(PYTEST):
        documented = f"--{opt.name}"
        if documented == namespaced(opt):
            continue
        if documented in taken:
            left.append(documented)
            continue
        group.addoption(documented, dest="albert_" + opt.dest, **{**opt.argparse_kwargs(),
                                                                  "help": f"same as {namespaced(opt)}"})
        added.append(documented)
    setattr(parser, DOCUMENTED_ATTR, (added, left))
    return added, left


def join_list_values(args: list[str]) -> None:
    """``--perf-batch-sizes 1 16 tests/x`` -> ``--perf-batch-sizes=1,16 tests/x``, in place: a list option
    takes the whole numbers after it and never a test path that follows."""
    list_flags = {f"--{o.name}" for o in offered(PYTEST) if o.many} | {namespaced(o) for o in offered(PYTEST) if o.many}
    i = 0
    while i < len(args):
        if args[i] in list_flags:
            j = i + 1
            while j < len(args) and args[j].replace(",", "").isdigit():
                j += 1
            if j > i + 1:
                args[i:j] = [f"{args[i]}={','.join(args[i + 1:j])}"]
        i += 1


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    join_list_values(args)
    result = yield
    add_documented_spellings(parser)
    return result


# ---------------------------------------------------------------------------------------------
# Configure: the plan, made once; a usage error before collection
# ---------------------------------------------------------------------------------------------
DOOR_KEY = pytest.StashKey[object]()


def this_suite(config) -> bool:
    """Is this pytest run the albert-ixrt suite (its checkout as rootdir, its acceptance package named, or
    an albert-ixrt option given)?  Process-wide effects (GPU pinning, the header) are kept to such runs."""
    if (config.rootpath / "albert_ixrt" / "pytest_plugin.py").is_file():
        return True
    if any("albert_ixrt" in str(arg) for arg in config.args):
        return True
    return any(config.getoption("albert_" + o.dest) not in (None, False, o.default) for o in offered(PYTEST))


def pytest_configure(config):
    from .acceptance.door import PytestDoor
    from .acceptance.options import Options
    from .acceptance.plan import make_plan

    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    options = Options.read(lambda dest: config.getoption("albert_" + dest), PYTEST)
    try:
        plan = make_plan(options)
        if options.albert_report and distributed(config):
            raise AlbertIxrtError("--albert-report needs one pytest process (the record is written from the one "
                                  "session): add -p no:xdist")
        if options.albert_report:       # before any work, as run checks --out: not found out at the end
            from .results_dir import check_results_dir

            check_results_dir(options.albert_report, "--albert-report")
    except AlbertIxrtError as exc:
        if this_suite(config):
            raise pytest.UsageError(f"albert-ixrt: {exc}") from None
        return  # another project's run: the albert-ixrt fixtures say it if they are ever used
    config.stash[DOOR_KEY] = PytestDoor(config, plan, distributed=distributed(config))
    if this_suite(config):
        from .parallel import pin_worker_gpu

        pin_worker_gpu(os.environ.get("PYTEST_XDIST_WORKER"))  # before anything touches CUDA


def door(config):
    found = config.stash.get(DOOR_KEY, None)
    if found is None:
        raise pytest.UsageError("albert-ixrt: the acceptance options did not make a plan (see the first error)")
    return found


def pytest_report_header(config):
    found = config.stash.get(DOOR_KEY, None)
    if found is None or not this_suite(config):
        return None
    lines = found.header_lines()
    _, left = getattr(config._parser, DOCUMENTED_ATTR, ((), ()))
    if left:
        lines.append(f"albert-ixrt: {', '.join(left)} belong(s) to another plugin or conftest here; this suite reads "
                     f"{', '.join(namespaced(o) for o in left)}")
    return lines


def distributed(config) -> bool:
    """True under an xdist worker, or on the controller of a distributed run."""
    if os.environ.get("PYTEST_XDIST_WORKER") or hasattr(config, "workerinput"):
        return True
    try:
        return config.getoption("dist", "no") != "no" or bool(config.getoption("numprocesses", None))
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# The acceptance tests' fixtures: views of the one session
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def albert_session(request):
    """The acceptance session of this pytest run (built on first use, closed at the end)."""
    return door(request.config).session()


@pytest.fixture
def albert_judge(request, albert_session, record_property):
    """``albert_judge(step, item)``: the session's verdict on one item, as this test's outcome."""
    return door(request.config).judge(request, record_property)


@pytest.fixture
def albert_perf(request, albert_session, record_property):
    """``albert_perf(benchmark, item)``: time one perf item with pytest-benchmark, then judge it."""
    return door(request.config).perf(request, record_property)


def pytest_generate_tests(metafunc):
    """An acceptance test names its check with ``@pytest.mark.albert_check(step, *patterns)``; its
    ``albert_item`` is parametrized here with the plan's items of that step matching the patterns (the
    perf items follow --perf-batch-sizes), so the modules need nothing of this plugin but its fixtures."""
    from fnmatch import fnmatchcase

    marker = metafunc.definition.get_closest_marker("albert_check")
    found = metafunc.config.stash.get(DOOR_KEY, None)
    if marker is None or found is None or "albert_item" not in metafunc.fixturenames:
        return
    step, patterns = marker.args[0], marker.args[1:] or ("*",)
    items = [i for i in found.plan.step(step).items if any(fnmatchcase(i, p) for p in patterns)]
    metafunc.parametrize("albert_item", items, ids=items)


# ---------------------------------------------------------------------------------------------
# Skips and failures the options decide (self-tests)
# ---------------------------------------------------------------------------------------------
def skip_or_fail(request, reason: str, *, strict_option: str) -> None:
    """Skip with ``reason``; fail instead when the user asked for strictness with ``strict_option``
    (``--strict-assets`` or ``--require-gpu``)."""
    if option(request.config, strict_option.lstrip("-")):
        pytest.fail(f"{reason} (and {strict_option} was given)", pytrace=False)
    pytest.skip(reason)


from .acceptance.door import XDIST_PERF_REASON  # noqa: E402 (one reason string for both kinds of perf test)


def warn_perf_distributed(config, folder: str) -> None:
    """A self-test perf folder's conftest calls this in pytest_configure: under xdist, say once why its
    tests skip."""
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
# The default run leaves out tests marked slow; CI runs them as their own step
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


def leave_out_slow(config, items) -> None:
    """This suite's tests marked slow are left out unless asked for: by a -m expression (the user's -m
    decides alone), or by naming their file or node id.  A plain run says how many it left out."""
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


def pytest_collection_modifyitems(config, items):
    leave_out_slow(config, items)


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(SLOW_LEFT_OUT_KEY, 0)
    if left_out:
        terminalreporter.write_line(f"{left_out} slow tests left out of the default run ({MARKERS['slow']}): "
                                    f"{SLOW_HINT}")
    found = config.stash.get(DOOR_KEY, None)
    if found is not None:
        found.terminal_summary(terminalreporter)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Before pytest-benchmark writes its JSON (its own wrapper runs inside this one): the record, and
    the benchmarks an interrupt cut off dropped."""
    found = session.config.stash.get(DOOR_KEY, None)
    if found is not None:
        found.finish(session, exitstatus)
    return (yield)
