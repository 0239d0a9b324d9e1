"""``albert-ixrt run``: the acceptance session's door for the command line.

A loop over the plan's steps (``acceptance.session``: the same session the pytest plugin opens), each
announced as it ends, then the sign-off record written into the results folder.  Every option is
checked (the plan) and the subject loaded before ``--out`` is touched: bad input is one line, exit 2,
nothing written.  Each run gets a folder of its own inside ``--out``
(``results_dir.py``: a staging folder published by one rename when the run ends, ``latest`` naming the
newest, the lock); Ctrl-C or a refused run leaves no folder and earlier runs as they were.
"""
from __future__ import annotations

import sys
import time

from .acceptance.options import Options
from .acceptance.plan import STEP_ORDER, Plan, make_plan
from .acceptance.results import StepResult
from .acceptance.session import Session

WRITER = "albert-ixrt run"
#: The steps run announces, in order ("[i/8] name: status in s"), the record ("report") last.
STEPS = STEP_ORDER


def announce_step(index: int, total: int, result: StepResult) -> str:
    why = f" ({result.reason})" if result.status != "passed" and result.reason else ""
    return f"[{index}/{total}] {result.name}: {result.status} in {result.seconds:.1f} s{why}"


def run_steps(session: Session, say) -> None:
    """Every step of the plan but the report, in order; each announced as it ends."""
    for index, name in enumerate(STEPS[:-1], start=1):
        say(announce_step(index, len(STEPS), session.step(name)))


def interrupted_in(session: Session) -> str:
    done = {r.name for r in session.results()}
    return next((s.name for s in session.plan.steps if s.name not in done), "report")


def run_acceptance(options: Options, *, stderr=None) -> dict:
    """Run the plan of ``options`` and write its record into ``options.out``; returns the record.

    ``AlbertIxrtError`` (bad input, found before ``--out`` is touched) propagates; so does Ctrl-C,
    after saying that the previous results were kept."""
    from .acceptance.record import write_record
    from .results_dir import ResultsDir, check_results_dir

    stderr = stderr or sys.stderr
    quiet = options.quiet

    def say(text: str) -> None:
        if not quiet:
            print(text, file=stderr, flush=True)

    plan: Plan = make_plan(options)
    check_results_dir(options.out, "--out")  # writable, holding nothing but a previous run's files
    say(f"albert-ixrt run: {plan.summary()}")
    began = time.perf_counter()
    with Session(plan, say=say, progress=None if quiet else stderr) as session:
        load = session.step("load")
        if load.status != "passed" and load.error is not None:
            raise load.error                  # the subject cannot be loaded: one line, exit 2, nothing written
        with ResultsDir(options.out, subject=plan.subject.model) as results:
            for line in results.recovered:
                say(f"albert-ixrt run: {options.out}: {line}")
            try:
                run_steps(session, say)
            except KeyboardInterrupt:
                print(f"albert-ixrt run: interrupted in the {interrupted_in(session)} step; {options.out} keeps the "
                      "previous results", file=stderr)
                raise
            began_report = time.perf_counter()
            rec = write_record(session, results.staging, WRITER, shown_as=results.destination)
            rec["folder"] = str(results.commit())
            say(f"[{len(STEPS)}/{len(STEPS)}] report: written in {time.perf_counter() - began_report:.1f} s")
    rec["seconds"] = round(time.perf_counter() - began, 1)
    return rec
