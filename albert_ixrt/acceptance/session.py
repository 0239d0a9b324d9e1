"""The acceptance session: builds each artefact of a plan once and answers ``step(name)``.

Both doors hold one ``Session`` per invocation: ``albert-ixrt run`` loops over the plan's steps and
records them; the pytest plugin's fixtures are views of it and each acceptance test asserts one of
its item verdicts.  So one subject gets one verdict with the same figures whichever door asked.

Artefacts (the loaded subject, the features, the conversion, the runner under test, the torch fp32
reference, the equivalence and perf feeds, the evaluations) are built on first use and kept; a
failure to build one is kept too, so every step that needs it reports the same reason.  What a
failure means follows the sign-off rule (``classify``): a named subject that cannot be judged (no
weights, no backend, no GPU) is a failure unless ``--allow-skips``; a deliberate leave-out
(``--skip``, ``--limit``, random weights for accuracy) is "not judged" (NOT SIGNED OFF).
"""
from __future__ import annotations

import contextlib
import time
import traceback
from typing import Callable

from ..errors import AlbertIxrtError
from ..options import TORCHSCRIPT_SUFFIXES
from .plan import PARTS, RUNNER_ITEM, Plan
from .results import (FAILED, NOT_JUDGED, PASSED, CannotJudge, Checked, ItemResult, NotJudged, StepResult, Verdict,  # noqa: F401 (re-exported)
                      classify, reason_of, sign_off, status_of, step_reason)


class _Broken:
    """A kept failure to build an artefact."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class Session:
    """``Session(plan)`` then ``step(name)`` in any order (each runs once); ``close()`` frees the runners.

    ``say(text)``: one line of progress for the door to show; ``progress``: a stream for progress bars
    (None: none); ``requested``: the parts the door asks for (default all three)."""

    def __init__(self, plan: Plan, *, say: Callable[[str], None] | None = None, progress=None,
                 requested: list[str] | None = None):
        self.plan = plan
        self.say = say or (lambda text: None)
        self.progress = progress
        self.requested = list(requested or PARTS)
        self.started = _now()
        self._built: dict[str, object] = {}
        self._steps: dict[str, StepResult] = {}
        self._stack = contextlib.ExitStack()
        #: Why perf cannot be timed in this process (the pytest door under xdist), else None.
        self.perf_blocked: str | None = None
        #: Another perf session timing on this machine (found when this one starts timing), else None.
        self.perf_beside: str | None = None
        self._perf_locked = False

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    # -- artefacts, each built once -----------------------------------------------------------
    def artefact(self, name: str):
        """The artefact ``name`` (built now if needed); a kept failure is raised again."""
        if name not in self._built:
            try:
                self._built[name] = getattr(self, f"_build_{name}")()
            except Exception as exc:
                self._built[name] = _Broken(exc)
        value = self._built[name]
        if isinstance(value, _Broken):
            raise value.exc
        return value

    def _build_subject(self):
        from .subject import load_subject

        return load_subject(self.plan)

    def _build_data(self):
        from ..loaders import prepare_data

        subject = self.artefact("subject")
        d = self.plan.data
        return prepare_data(subject.squad, subject.tokenizer, limit=d.limit, progress=self.progress is not None,
                            use_cache=d.use_cache, workers=d.workers)

    def _build_conversion(self):
        from ..export import graph_problems
        from ..loaders import converted

        if self.plan.subject.onnx:
            from .checks import user_conversion

            return user_conversion(self.plan)
        model = self.artefact("subject").model
        self.say(f"converting {model.name} (each stage cached by content hash)")
        out, manifest = converted(model, progress=self.progress is not None)
        return out, manifest, graph_problems(manifest)

    def _build_runner(self):
        from ..engine_input import engine_graph
        from ..loaders import make_runner

        s, model = self.plan.subject, self.artefact("subject").model
        if s.engine:
            return self._stack.enter_context(self._plan_runner())
        kw: dict = {}
        onnx = s.onnx
        if s.backend != "torch" and onnx is None:
            out, manifest, _ = self.artefact("conversion")
            onnx = engine_graph(manifest, out, s.backend, s.precision)
        if self.plan.profile is not None:
            kw.update(profile=self.plan.profile, tf32=self.plan.options.tf32)
        else:
            kw["device"] = s.device
        runner = make_runner(s.backend, model, s.precision, onnx, **kw)
        return self._stack.enter_context(runner)

    def _plan_runner(self):
        """The user's engine plan, deserialised and checked (QA interface, and a profile covering every
        batch and length this session feeds: refused in one line naming the tensor and the shapes)."""
        from ..runners.trt_runner import TensorRTRunner

        s = self.plan.subject
        runner = TensorRTRunner.from_plan(s.engine, flavour=s.backend, precision=s.precision if s.precision_stated
                                          else None)
        try:
            runner.check_covers(self.plan.feeds.batches(), self.plan.feeds.seq_len)
        except Exception:
            runner.close()
            raise
        return runner

    def _build_reference(self):
        from ..runners import create_runner

        model = self.artefact("subject").model
        return self._stack.enter_context(create_runner("torch", model=model, precision="fp32",
                                                       device=self.plan.subject.reference_device))

    def _build_equivalence_feeds(self):
        from ..compare import ChainedFeeds, SquadFeeds
        from ..squad.data import load_squad
        from ..squad.features import build_features

        subject = self.artefact("subject")
        examples = load_squad(subject.squad)
        by_length = sorted({ex.context: ex for ex in examples}.values(), key=lambda ex: len(ex.context))
        plan = self.plan.feeds.equivalence     # (batch, what): the batches the engine profile covers
        short = build_features(by_length[:max(b for b, _ in plan)], subject.tokenizer, progress=False)
        full = [f for f in build_features(by_length[-1:], subject.tokenizer, progress=False)
                if f.length == len(f.input_ids)]
        windows = {"short": short, "full window": full or short, "padded": short}
        return list(ChainedFeeds(*(SquadFeeds(windows[what][:batch], batch) for batch, what in plan)))

    def _build_perf_features(self):
        from ..squad.data import load_squad
        from ..squad.features import build_features
        from .perf import PERF_EXAMPLES

        subject = self.artefact("subject")
        return build_features(load_squad(subject.squad)[:PERF_EXAMPLES], subject.tokenizer, progress=False)

    def _build_evaluation(self):
        from .checks import evaluate_with_estimate

        examples, features = self.artefact("data")
        return evaluate_with_estimate(self, self.artefact("runner"), examples, features, "runner under test")

    def _build_reference_evaluation(self):
        from .checks import evaluate_with_estimate

        examples, features = self.artefact("data")
        return evaluate_with_estimate(self, self.artefact("reference"), examples, features, "torch fp32 reference")

    def peek(self, name: str):
        """The artefact ``name`` if it was built (None: not built yet, or its build failed); builds nothing."""
        value = self._built.get(name)
        return None if isinstance(value, _Broken) else value

    # -- steps ---------------------------------------------------------------------------------
    def step(self, name: str) -> StepResult:
        """The result of step ``name`` (run now if not yet run)."""
        if name not in self._steps:
            self._steps[name] = self._run_step(name)
        return self._steps[name]

    def _run_step(self, name: str) -> StepResult:
        from . import checks

        planned = self.plan.step(name)
        if planned.skipped:
            return StepResult(name, NOT_JUDGED, planned.skipped,
                              [ItemResult(i, NOT_JUDGED, planned.skipped) for i in planned.items])
        began = time.perf_counter()
        try:
            result = getattr(checks, f"{name}_step")(self)
        except Exception as exc:
            status, reason = classify(exc, self.plan), reason_of(exc)
            result = StepResult(name, status, reason, [ItemResult(i, status, reason) for i in planned.items],
                                error=exc)
            if not isinstance(exc, AlbertIxrtError):
                result.detail["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        result.seconds = time.perf_counter() - began
        return result

    def perf_item(self, name: str, timer) -> ItemResult:
        """Time one perf item with the door's ``timer``; its result joins the perf step's."""
        from .checks import perf_item
        from .perf import hold_machine

        if not self._perf_locked:
            self._perf_locked = True
            self.perf_beside = hold_machine(self._stack)
            if self.perf_beside:
                self.say(f"warning: {self.perf_beside}")
        result = self._steps.setdefault("perf", StepResult("perf", NOT_JUDGED, "no item timed yet"))
        planned = self.plan.step("perf")
        if planned.skipped:
            item = ItemResult(name, NOT_JUDGED, planned.skipped)
        else:
            began = time.perf_counter()
            try:
                item = perf_item(self, name, timer)
            except Exception as exc:
                item = ItemResult(name, classify(exc, self.plan), reason_of(exc), error=exc)
            result.seconds += time.perf_counter() - began
        result.items = [i for i in result.items if i.name != name] + [item]
        result.status = status_of(result.items)
        result.reason = step_reason(result.items, result.status)
        return item

    def time_items(self, timer) -> StepResult:
        """Every perf item of the plan with ``timer`` (``run``'s door), as the perf step's result."""
        for name in self.plan.step("perf").items:
            self.perf_item(name, timer)
        return self._steps.pop("perf")

    def results(self) -> list[StepResult]:
        return [self._steps[s.name] for s in self.plan.steps if s.name in self._steps]

    # -- the verdict ---------------------------------------------------------------------------
    def subject_reasons(self) -> list[str]:
        """Why this subject can never be signed off, whatever its checks say."""
        runner = self.peek("runner")
        return subject_reasons(self.plan, runner.describe().get("emulated") if runner is not None else None)

    def checked(self) -> tuple[list[Checked], list[str]]:
        """Every item of the requested parts as the verdict rule sees it, and the items asked for but
        never run (a door that stopped early)."""
        checked, missing, extra = [], [], []
        for part in self.requested:
            for step in PARTS[part]:
                planned, result = self.plan.step(step), self._steps.get(step)
                for name in planned.items:
                    item = next((i for i in result.items if i.name == name), None) if result else None
                    if item is None:
                        missing.append(f"{part} {name}")
                    else:
                        checked.append(Checked(part, name, item.status, "" if item.status == PASSED else item.message))
                if not planned.items and result is not None and result.status == FAILED:
                    extra.append(Checked(part, step, result.status, result.reason))
            # a step without items of its own (evaluate) counts only when it failed and no item of its part says so
            checked += [c for c in extra if not any(o.part == c.part and o.status == FAILED for o in checked)]
            extra = []
        return checked, missing

    def verdict(self) -> Verdict:
        checked, missing = self.checked()
        return sign_off(checked, subject=self.plan.subject.describe(), requested=self.requested,
                        subject_reasons=self.subject_reasons(), missing=missing)


def subject_reasons(plan: Plan, emulated: str | None) -> list[str]:
    """Why a subject can never be signed off, whatever its checks say: the built-in self-test model, or
    an engine of the test suite's TensorRT stand-in (``emulated``: its label)."""
    from ..model import KNOWN_ANSWER, archive_kind

    reasons = []
    if plan.subject.self_test:
        reasons.append("self-test only: the built-in tiny random-weight model" + (
            "" if plan.subject.named else " (no subject named: --model or $ALBERT_IXRT_MODEL)"))
    if emulated:
        reasons.append(f"the engine is {emulated}, a stand-in for tests, not the engine to ship")
    if plan.subject.model.endswith(TORCHSCRIPT_SUFFIXES) and archive_kind(plan.subject.model) == KNOWN_ANSWER:
        reasons.append("a known-answer model: it proves the accuracy gate's verdict, not any model's accuracy")
    return reasons


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


__all__ = ["Session", "NotJudged", "classify", "RUNNER_ITEM", "FAILED", "PASSED", "NOT_JUDGED"]
