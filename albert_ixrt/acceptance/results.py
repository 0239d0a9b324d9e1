"""What a session answers: one result type per step, one verdict per checked item, and the sign-off
rule that turns the items into the session's verdict line.

Pure data and pure functions: the session fills them, ``run`` records them, the pytest door asserts
them (one test per item), and both doors print the verdict line computed here by ``sign_off``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import AlbertIxrtError, AssetMissingError, BackendUnavailable

#: Statuses a step or item can have ("not requested": the door did not ask for it, a -m/-k selection).
PASSED, FAILED, NOT_JUDGED = "passed", "failed", "not judged"

SIGNED_OFF, NOT_SIGNED_OFF, FAILED_VERDICT = "SIGNED OFF", "NOT SIGNED OFF", "FAILED"


@dataclass
class ItemResult:
    """One checked item (a stage, a shape, a threshold) with its verdict, the sentence that explains
    it (figures, tolerance or threshold, margin) and the figures themselves."""

    name: str
    status: str
    message: str
    figures: dict = field(default_factory=dict)
    #: the exception behind a failure (not recorded: the pytest door re-raises a bug's, with its traceback)
    error: BaseException | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "message": self.message, "figures": self.figures}


@dataclass
class StepResult:
    """One step of the plan: its status, why (when not passed), its items, its figures and details,
    the seconds it took, and the exception behind a failure (not recorded; the pytest door re-raises
    one that is not a user-facing error, so a bug keeps its traceback)."""

    name: str
    status: str
    reason: str = ""
    items: list[ItemResult] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False, compare=False)

    def item(self, name: str) -> ItemResult:
        for it in self.items:
            if it.name == name:
                return it
        raise KeyError(f"step {self.name!r} has no item {name!r} (items: {[i.name for i in self.items]})")

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason, "seconds": round(self.seconds, 2),
                "items": [i.as_dict() for i in self.items], "figures": self.figures, "detail": self.detail}


def status_of(items: list[ItemResult]) -> str:
    """A step's status from its items: failed if any failed, else not judged if any was not, else passed."""
    statuses = {i.status for i in items}
    if FAILED in statuses:
        return FAILED
    return NOT_JUDGED if NOT_JUDGED in statuses or not items else PASSED


def step_reason(items: list[ItemResult], status: str) -> str:
    """Why a step is not passed: the message of its first item with the step's status."""
    return "" if status == PASSED else next((i.message for i in items if i.status == status), "")


@dataclass(frozen=True)
class Checked:
    """One item as the verdict rule sees it: which part it belongs to, its name, status and reason."""

    part: str
    name: str
    status: str
    reason: str = ""


@dataclass
class Verdict:
    status: str                       # SIGNED OFF | NOT SIGNED OFF | FAILED
    line: str
    failed: list[str] = field(default_factory=list)
    not_judged: list[str] = field(default_factory=list)
    judged_parts: list[str] = field(default_factory=list)

    @property
    def exit_ok(self) -> bool:
        """A deliberate partial run (NOT SIGNED OFF) exits 0; only a failure exits non-zero."""
        return self.status != FAILED_VERDICT

    def as_dict(self) -> dict:
        return asdict(self)


def sign_off(checked: list[Checked], *, subject: str, requested: list[str], subject_reasons: list[str] = (),
             missing: list[str] = ()) -> Verdict:
    """The one verdict rule of both doors.

    FAILED when any checked item failed; else NOT SIGNED OFF when anything asked for was not judged
    (an item not judged, an item asked for but never run: ``missing``, or a reason about the subject
    itself: ``subject_reasons``, e.g. the built-in self-test model or an emulated engine); else
    SIGNED OFF, naming the parts judged and any part not asked for.  Never "PASSED" alone."""
    failed = [f"{c.part} {c.name}: {_short(c.reason)}" if c.reason else f"{c.part} {c.name}"
              for c in checked if c.status == FAILED]
    not_judged = [*subject_reasons, *_by_reason([c for c in checked if c.status == NOT_JUDGED]),
                  *[f"{m}: asked for but not run" for m in missing]]
    if not checked and not missing:
        not_judged.append("no acceptance check ran")
    parts = [p for p in requested if any(c.part == p for c in checked)]
    if failed:
        return Verdict(FAILED_VERDICT, f"{FAILED_VERDICT}: {subject}: {len(failed)} check(s) failed: "
                                       + "; ".join(failed), failed, not_judged, parts)
    if not_judged:
        return Verdict(NOT_SIGNED_OFF, f"{NOT_SIGNED_OFF}: {subject}: " + "; ".join(_grouped(not_judged)),
                       failed, not_judged, parts)
    others = [p for p in ("conversion", "accuracy", "perf") if p not in requested]
    scope = " and ".join(parts) + (f" ({', '.join(others)} not asked for)" if others else "")
    return Verdict(SIGNED_OFF, f"{SIGNED_OFF}: {subject}: {scope}, {len(checked)} checks judged and passed",
                   failed, not_judged, parts)


#: A verdict line names each failure in at most this many characters (the record keeps every word).
REASON_CHARS = 240


def _short(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 1].rstrip() + "…"


def _by_reason(items: list[Checked]) -> list[str]:
    """"accuracy bytemlperf_exact_match, bytemlperf_f1: random weights ...": items of one part that share a
    reason, said once, each name once (a stage's graph check and its equivalence are both "conversion X")."""
    groups: dict[tuple[str, str], dict[str, None]] = {}
    for c in items:
        groups.setdefault((c.part, c.reason), {})[c.name] = None
    return [f"{part} {', '.join(names)} not judged: {_short(reason)}" for (part, reason), names in groups.items()]


def _grouped(reasons: list[str], shown: int = 6) -> list[str]:
    """At most ``shown`` reasons, then how many more (a verdict line stays readable)."""
    return reasons[:shown] + ([f"and {len(reasons) - shown} more"] if len(reasons) > shown else [])


# ---------------------------------------------------------------------------------------------
# What stops a check: a failure, or not judged
# ---------------------------------------------------------------------------------------------
class NotJudged(AlbertIxrtError):
    """A check that deliberately does not judge (random weights for accuracy, --limit, timing disabled)."""


class CannotJudge(AlbertIxrtError):
    """Something this machine or process lacks stops a check (as a missing backend does)."""


def classify(exc: BaseException, plan) -> str:
    """The status of a check stopped by ``exc``: a subject that could not be judged here (a missing asset,
    backend or device) fails when the user named it (the sign-off rule) and is "not judged" otherwise or
    under --allow-skips; a deliberate ``NotJudged`` is "not judged"; anything else failed."""
    if isinstance(exc, NotJudged):
        return NOT_JUDGED
    if isinstance(exc, (AssetMissingError, BackendUnavailable, CannotJudge)):
        return FAILED if plan.subject.named and not plan.allow_skips else NOT_JUDGED
    return FAILED


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, BackendUnavailable):
        return exc.reason
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, AlbertIxrtError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
