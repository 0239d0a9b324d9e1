"""The pytest door of the acceptance session: what the plugin's fixtures and hooks delegate to.

One ``PytestDoor`` per pytest run (registered as a plugin object, so it sees every test report, on an
xdist controller too): it opens the one ``Session`` on first use, tells it which parts the collected
tests ask for, turns each item verdict into a test outcome (``judge``: failed -> failure, not judged
-> skip with the reason; a named subject that cannot be judged was already made a failure by the
session), times perf items with pytest-benchmark (``perf``), and ends the run with the same verdict
line and record ``albert-ixrt run`` writes.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

from ..errors import AlbertIxrtError
from .plan import PARTS, STEP_PART, Plan
from .results import FAILED, NOT_JUDGED, PASSED, Checked, sign_off
from .session import Session, subject_reasons

#: pytest -m markers of the acceptance parts, and the marker an acceptance test names its check with.
CHECK_MARKER = "albert_check"
#: Why perf cannot be judged under pytest-xdist: pytest-benchmark disables itself there, and parallel workers
#: would time each other.
XDIST_PERF_REASON = ("perf tests need a serial run: pytest-benchmark disables itself under pytest-xdist and "
                     "parallel workers time each other; rerun with -p no:xdist (or -n 0)")
#: JUnit properties every acceptance test carries (the subject as judged), from the session's record.
SUBJECT_PROPERTIES = ("model", "weights", "weights_sha256", "tokenizer_sha256", "squad_sha256", "backend",
                      "precision", "device", "reference_device", "runtime", "emulated", "gpu", "driver")


def check_of(item) -> tuple[str, str] | None:
    """(step, item) an acceptance test checks: its ``albert_check(step, ...)`` marker and its
    ``albert_item`` parameter (or the marker's single item)."""
    marker = item.get_closest_marker(CHECK_MARKER)
    if marker is None:
        return None
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get("albert_item") if callspec is not None else None
    return marker.args[0], name if name is not None else marker.args[1]


class PytestDoor:
    def __init__(self, config, plan: Plan, *, distributed: bool = False):
        self.config = config
        self.plan = plan
        self.distributed = distributed
        self._session: Session | None = None
        self.requested: dict[str, tuple[str, str]] = {}      # nodeid -> (part, item) of collected acceptance tests
        self.outcomes: dict[str, Checked] = {}
        self.messages: dict[str, tuple[str, str]] = {}       # nodeid -> (part, the item's verdict sentence)
        self.emulated = plan_emulation(plan)
        config.pluginmanager.register(self, "albert-ixrt-door")

    # -- the session ---------------------------------------------------------------------------
    def session(self) -> Session:
        if self._session is None:
            parts = sorted({part for part, _ in self.requested.values()}, key=list(PARTS).index) or list(PARTS)
            self._session = Session(self.plan, say=self.say, progress=_ProgressStream(self), requested=parts)
            if self.distributed:
                self._session.perf_blocked = XDIST_PERF_REASON
        return self._session

    def say(self, text: str) -> None:
        """A line on the terminal while a test runs (pytest's capture suspended for it)."""
        capture = self.config.pluginmanager.getplugin("capturemanager")
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"albert-ixrt: {text}")

    def header_lines(self) -> list[str]:
        s = self.plan.subject
        lines = [f"albert-ixrt subject: {s.describe()}" + (f" — EMULATED: {self.emulated}" if self.emulated else "")]
        if not s.named:
            lines.append("albert-ixrt: no subject named (--model or $ALBERT_IXRT_MODEL): the built-in tiny self-test; "
                         "nothing will be signed off")
        lines.append(f"albert-ixrt plan: {self.plan.summary()}")
        return lines

    # -- collection and outcomes ---------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        kept, absent = [], []
        for item in items:
            found = check_of(item)
            if found and not isinstance(found[1], str):
                absent.append(item)       # the plan has no item of this kind (--engine: no converted stage)
                continue
            if found:
                self.requested[item.nodeid] = (STEP_PART[found[0]], found[1])
            kept.append(item)
        if absent:                        # nothing to judge there: deselected, never a green "empty parameter set"
            config.hook.pytest_deselected(items=absent)
            items[:] = kept

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        where = self.requested.get(report.nodeid) or (
            (props["albert_part"], props["albert_item"]) if "albert_part" in props else None)
        if where is None or not (report.when == "call" or report.outcome != "passed"):
            return
        status = {"passed": PASSED, "failed": FAILED, "skipped": NOT_JUDGED}[report.outcome]
        if report.nodeid in self.outcomes and self.outcomes[report.nodeid].status == FAILED:
            return                                             # a teardown error after a failure: keep the first
        reason = "" if status == PASSED else _reason(report)
        self.outcomes[report.nodeid] = Checked(where[0], where[1], status, reason)
        if "albert_message" in props:
            self.messages[report.nodeid] = (where[0], props["albert_message"])

    def verdict(self):
        checked = list(self.outcomes.values())
        requested = sorted({c.part for c in checked} | {p for p, _ in self.requested.values()}, key=list(PARTS).index)
        missing = [f"{part} {name}" for nodeid, (part, name) in self.requested.items() if nodeid not in self.outcomes]
        return sign_off(checked, subject=self.plan.subject.describe(), requested=requested, missing=missing,
                        subject_reasons=subject_reasons(self.plan, self.emulated))

    # -- the fixtures' work --------------------------------------------------------------------
    def judge(self, request, record_property):
        def judge_item(step: str | None = None, name: str | None = None):
            step_name, item_name = (step, name) if step else check_of(request.node)
            record_property("albert_part", STEP_PART[step_name])
            record_property("albert_item", item_name)
            result = self.session().step(step_name)
            if result.error is not None and not isinstance(result.error, AlbertIxrtError):
                raise result.error                     # a bug in the suite or a library: keep its traceback
            return self.outcome(result.item(item_name), record_property)
        return judge_item

    def perf(self, request, record_property):
        def time_item(benchmark, name: str | None = None):
            item_name = name or check_of(request.node)[1]
            record_property("albert_part", "perf")
            record_property("albert_item", item_name)
            item = self.session().perf_item(item_name, benchmark_timer(benchmark))
            if item.error is not None and not isinstance(item.error, AlbertIxrtError):
                raise item.error                       # a bug in the suite or a library: keep its traceback
            benchmark.extra_info.update(self.extra_info(item))
            return self.outcome(item, record_property)
        return time_item

    def outcome(self, item, record_property):
        for key, value in self.subject_properties().items():
            record_property(f"subject_{key}", value)
        for key, value in item.figures.items():
            if isinstance(value, (int, float, str, bool)) and key != "samples_s":
                record_property(key, value)
        record_property("albert_status", item.status)
        record_property("albert_message", item.message)
        if item.status == FAILED:
            pytest.fail(item.message, pytrace=False)
        if item.status == NOT_JUDGED:
            pytest.skip(item.message)
        return item

    def subject_properties(self) -> dict:
        from .record import subject_record
        from .subject import suite_identity

        rec = subject_record(self.session())
        out = {k: rec.get(k) for k in SUBJECT_PROPERTIES if rec.get(k) is not None}
        out["engine"] = engine_label(rec)
        out["suite_version"] = suite_identity()["version"]
        if suite_identity()["commit"]:
            out["suite_commit"] = suite_identity()["commit"]
        return out

    def extra_info(self, item) -> dict:
        """pytest-benchmark's extra_info of a perf item: the subject as judged, the figures, the reference row."""
        from ..report import reference_row

        ref = reference_row()
        info = {**self.subject_properties(), **item.figures,
                "status": item.status}
        info["reference_row"] = {"model": ref.model, "batch_size": ref.batch_size, "precision": ref.precision,
                                 "batches_per_s": ref.batches_per_s, "sequences_per_s": round(ref.sequences_per_s, 2),
                                 "seq_len": ref.seq_len, "device": ref.device}
        return info

    # -- the end of the run --------------------------------------------------------------------
    def terminal_summary(self, tr) -> None:
        if self.config.option.collectonly:
            return                                      # nothing ran: no verdict to give
        if not self.outcomes and not self.requested:
            if self.plan.options.albert_report:
                tr.write_line(f"albert-ixrt: no acceptance check ran: no sign-off record written to "
                              f"{self.plan.options.albert_report}")
            return
        from .report_md import perf_table

        if self._session is not None:
            rows = perf_table(self._session)
            if rows:
                tr.write_sep("-", "albert-ixrt perf: the subject beside the reference row")
                for line in rows:
                    tr.write_line(line)
        accuracy = [message for part, message in self.messages.values() if part == "accuracy"]
        verdict = self.verdict()
        tr.write_sep("=", "albert-ixrt sign-off")
        for line in dict.fromkeys(accuracy):
            tr.write_line(line)
        tr.write_line(verdict.line, bold=True, red=verdict.status == "FAILED", green=verdict.status == "SIGNED OFF")
        if self.report_written:
            tr.write_line(f"sign-off record: {self.report_written}")

    report_written: str | None = None

    def finish(self, session, exitstatus) -> None:
        forget_unfinished_benchmarks(self.config)
        folder = self.plan.options.albert_report
        if folder and self._session is not None:
            self.report_written = write_pytest_record(self._session, Path(folder), self.verdict())
        if self._session is not None:
            self._session.close()


def write_pytest_record(session: Session, folder: Path, verdict) -> str:
    from ..results_dir import ResultsDir
    from .record import write_record

    with ResultsDir(folder, "--albert-report", subject=session.plan.subject.model) as results:
        write_record(session, results.staging, "albert-ixrt pytest", shown_as=results.destination, verdict=verdict)
        return str(results.commit())


def forget_unfinished_benchmarks(config) -> None:
    """After Ctrl-C, a benchmark cut off before its first timed round holds no data, and pytest-benchmark's
    summary would die on it ("min() arg is an empty sequence"); drop those, keep the finished ones."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None:
        return

    def timed(metadata) -> bool:      # pytest-benchmark's Metadata: .stats (its Stats) holds the rounds in .data
        return len(getattr(getattr(metadata, "stats", None), "data", None) or ()) > 0

    bs.benchmarks[:] = [m for m in bs.benchmarks if timed(m)]


def engine_label(rec: dict) -> str:
    """One label for what produced the numbers: the plan file and runtime, or the session and graph."""
    if rec.get("engine"):
        label = f"{rec['backend']} {rec.get('runtime') or ''} plan {Path(str(rec['engine'])).name}".replace("  ", " ")
        return label + (" (emulated)" if rec.get("emulated") and "emulated" not in label.lower() else "")
    if rec.get("graph"):
        return f"{rec['backend']} session on {Path(str(rec['graph'])).name}"
    return f"{rec.get('backend')} eager module"


def plan_emulation(plan: Plan) -> str | None:
    """The emulation label of the engine module a tensorrt / ixrt plan would use (None: a real one, or none)."""
    from ..engine_input import ENGINE_BACKENDS

    if plan.subject.backend not in ENGINE_BACKENDS:
        return None
    try:
        from ..trt_api import emulation_label, import_module

        module, _ = import_module(plan.subject.backend)
        return emulation_label(module)
    except ImportError:
        return None


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    text = str(getattr(report, "longreprtext", "") or longrepr or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else report.outcome


class _ProgressStream:
    """A file-like target for progress bars that writes to the real terminal while pytest captures."""

    def __init__(self, door: PytestDoor):
        self.door = door

    def write(self, text: str) -> int:
        capture = self.door.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


def benchmark_timer(benchmark):
    """The perf timer of the pytest door: pytest-benchmark's ``pedantic`` (its JSON, compare and
    histogram options apply); the raw seconds of its rounds (none under --benchmark-disable)."""
    def timer(call, rounds: int, warmup: int):
        benchmark.pedantic(call, rounds=rounds, warmup_rounds=warmup, iterations=1)
        stats = getattr(benchmark, "stats", None)
        return list(stats.stats.data) if stats is not None else []
    return timer
