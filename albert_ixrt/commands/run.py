"""``albert-ixrt run``: the acceptance session end to end (load -> features -> convert -> equivalence ->
evaluate -> thresholds -> perf -> report), one door of the session the pytest plugin also opens.

With no model named (--model, $ALBERT_IXRT_MODEL) it runs the built-in tiny self-test offline in
seconds, and says so: nothing is signed off.  Its options are the acceptance option table's.
"""
from __future__ import annotations

HELP = ("run the acceptance session on a subject (default: the built-in tiny self-test) and write its sign-off "
        "record")


def add_arguments(p):
    from ..acceptance.options import RUN, add_options

    add_options(p.add_argument, RUN)


def run(args) -> int:
    from ..acceptance.options import Options
    from ..acceptance.report_md import summary
    from ..pipeline import run_acceptance

    rec = run_acceptance(Options.from_namespace(args))
    print(summary(rec))
    print(f"written: {rec['folder']}/ " + ", ".join(sorted(rec["files"], key=lambda f: (f != "report.md", f))))
    return 0 if rec["verdict"]["status"] != "FAILED" else 1
