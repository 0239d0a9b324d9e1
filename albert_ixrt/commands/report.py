"""``albert-ixrt report DIR``: the reference table (Model | BatchSize | Precision | QPS | Exact Match |
F1 Score) from the benchmark JSON and metrics.json files under DIR, with a throughput plot.  Rows
from run folders (``albert-ixrt run --out``) name their run, and a Runs table gives each run's date,
commit, subject and its change against the previous run of the same subject."""
from __future__ import annotations

from . import existing_dir, output_dir

HELP = "compare benchmark/evaluation results under DIR with the reference row (Markdown, JSON, PNG)"


def add_arguments(p):
    p.add_argument("dir", type=existing_dir,
                   help="folder holding `albert-ixrt bench --json` files, metrics.json files and/or run folders "
                        "(`albert-ixrt run --out DIR`: each run named, with its change against the previous run)")
    p.add_argument("--out", type=output_dir,
                   help="where to write perf_report.md/.json and throughput.png (default: DIR)")


def run(args) -> int:
    from ..report import write_report

    written = write_report(args.dir, args.out)
    print(written["markdown"].read_text(encoding="utf-8"))
    for kind, path in written.items():
        print(f"wrote {kind}: {path}")
    return 0
