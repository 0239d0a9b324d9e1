"""``albert-ixrt history add|check|plot``: nightly regression tracking.

- ``add --history FILE SOURCES...``: append one record per subject of each source (pytest-benchmark
  JSON, report.json, run folder) to the append-only JSON-lines history; adding a source again adds nothing.
- ``check --history FILE``: judge the newest nights of every series against the nights before them;
  exit 0 when nothing regressed, 1 when something did (one line each), 2 on bad input.
- ``plot --history FILE --out PNG``: one panel per series, flagged nights marked.
"""
from __future__ import annotations

import argparse

from . import input_file, nonnegative_float, output_file, positive_int

HELP = "nightly regression tracking: add nights to a history file, judge the newest ones, plot them"


def _judge_args(p: argparse.ArgumentParser) -> None:
    from ..config import HISTORY_BASELINE_NIGHTS, HISTORY_FLOOR_PCT, HISTORY_PERSIST_NIGHTS

    p.add_argument("--history", required=True, type=input_file("history file"), metavar="FILE",
                   help="the JSON-lines history file")
    p.add_argument("--persist", type=positive_int, default=HISTORY_PERSIST_NIGHTS, metavar="NIGHTS",
                   help="nights a slowdown must last before it is called, unless one night is overwhelming "
                        "(default %(default)s)")
    p.add_argument("--floor", type=nonnegative_float, default=HISTORY_FLOOR_PCT, metavar="PCT",
                   help="slowdowns smaller than this percentage are never called (default %(default)s)")
    p.add_argument("--baseline", type=positive_int, default=HISTORY_BASELINE_NIGHTS, metavar="N",
                   help="nights before the newest ones that form the baseline (default %(default)s)")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("add", help="append tonight's results to the history",
                       description="Append one record per subject of each source to the history file (created "
                                   "when missing); a source already added is not added again.")
    a.add_argument("--history", required=True, type=output_file, metavar="FILE", help="the JSON-lines history file")
    a.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="pytest-benchmark JSON (--benchmark-json), report.json, or a run folder (its report.json, "
                        "or the one its 'latest' entry names)")
    a.add_argument("--night", help="label of the night these sources belong to (default: each source's UTC run "
                                   "date); records of one series with the same night and commit are pooled")
    c = sub.add_parser("check", help="judge the newest nights of every series (exit 1 on a regression)",
                       description="Judge the newest nights of every series against the nights before them: "
                                   "exit 0 when nothing regressed, 1 when something did, 2 on bad input.")
    _judge_args(c)
    c.add_argument("--json", type=output_file, metavar="OUT", help="also write the verdicts as JSON")
    pl = sub.add_parser("plot", help="draw every series (PNG)",
                        description="One panel per series: sequences/s per night with the baseline's noise band "
                                    "and the flagged nights, EM/F1 below.")
    _judge_args(pl)
    pl.add_argument("--out", required=True, type=output_file, metavar="PNG", help="the PNG to write")


def _settings(args):
    from ..errors import AlbertIxrtError
    from ..history_check import Settings

    s = Settings(persist=args.persist, floor_pct=args.floor, baseline=args.baseline)
    if s.baseline < s.min_baseline:
        raise AlbertIxrtError(f"--baseline {s.baseline}: a spread needs at least {s.min_baseline} baseline nights")
    return s


def _judged(args):
    from ..errors import InputFileError
    from ..history import group_series, load_history
    from ..history_check import judge

    records = load_history(args.history)
    if not records:
        raise InputFileError(args.history, "holds no nights yet: `albert-ixrt history add` some first")
    return judge(group_series(records), _settings(args))


def _add(args) -> int:
    from ..history import append_records, records_from

    records, sources = [], 0
    for source in args.sources:
        records += records_from(source, night=args.night)
        sources += 1
    added, known = append_records(args.history, records)
    series = len({r["series"] for r in added})
    print(f"{args.history}: added {len(added)} record(s) of {series} series from {sources} source(s)"
          + (f"; {known} already there, not added again" if known else ""))
    return 0


def _check(args) -> int:
    from ..fileio import write_json_atomic
    from ..history_check import exit_code, regression_lines, summary_line, table, to_json

    results = _judged(args)
    print(table(results))
    lines = regression_lines(results)
    if lines:
        print()
        print("\n".join(lines))
    print(summary_line(results))
    if args.json:
        write_json_atomic(args.json, to_json(results, _settings(args)))
        print(f"wrote {args.json}")
    return exit_code(results)


def _plot(args) -> int:
    from ..history_plot import plot_history

    path = plot_history(_judged(args), args.out)
    print(f"wrote {path}")
    return 0


def run(args) -> int:
    return {"add": _add, "check": _check, "plot": _plot}[args.action](args)
