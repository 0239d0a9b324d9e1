"""The report of ``albert-ixrt run``: report.md, the terminal summary, and where the time went.

Built from the report dict alone (``pipeline.run_acceptance`` assembles it), so a failed run, which
has no evaluation, renders the same way.
"""
from __future__ import annotations

from .steps import BENCH_BATCH_SIZES, EQUIVALENCE_FEATURES
from .verdicts import against

#: The measured figures' names as a reader knows them.
FIGURE_NAMES = {"bytemlperf_exact_match": "ByteMLPerf-compatible EM", "bytemlperf_f1": "ByteMLPerf-compatible F1"}

#: How to shorten each step, for the "where the time went" advice; ``advice_for`` fills in the run's
#: own numbers.  Every step has a line, load too (a run that spends most of its time loading should
#: say so, even though no option shortens it).
SHORTER = {
    "load": "importing torch and loading the model and tokenizer; every command pays it once per process "
            "(a local --model directory avoids the hub look-up)",
    "bench": "--skip bench saves it all, or fewer/smaller --bench-batch-sizes (now {bench}{bench_split}); "
             "the full harness is `albert-ixrt bench`",
    "equivalence": f"--skip equivalence saves it (it runs {EQUIVALENCE_FEATURES} features through torch and every "
                   "ONNX stage)",
    "evaluate": "--limit K evaluates only the first K questions (accuracy is then not judged)",
    "features": "--limit K featurizes only the first K questions ({features})",
    "convert": "the graphs in OUT/onnx are reused on the next run while the model is unchanged; "
               "--skip convert also skips equivalence",
    "thresholds": "it evaluated the torch fp32 reference for the MLPerf-style ratio; --backend torch --precision "
                  "fp32 is the reference itself and needs no second evaluation",
    "report": "writing perf_report.md and throughput.png (matplotlib's first import is most of it)",
}


def advice_for(st, *, limit: int | None, bench_batch_sizes) -> str:
    """The tip for one step, with the run's own numbers where the step recorded them."""
    d = st.detail or {}
    questions = (d.get("scores") or {}).get("questions") or d.get("examples")
    if st.name == "evaluate" and questions and st.seconds > 0:
        per_question = st.seconds / questions
        some = max(1, min(1000, questions // 10))
        rate = f" ({d['features_per_second']} features/s)" if d.get("features_per_second") else ""
        return (f"{questions} questions at {per_question:.3g} s each{rate}: --limit {some} would take about "
                f"{some * per_question:.0f} s (accuracy is then not judged)"
                + (f"; now --limit {limit}" if limit is not None else ""))
    per_batch = d.get("seconds_by_batch") or {}
    split = "; timed calls: " + ", ".join(f"batch {b} {s:.1f} s" for b, s in per_batch.items()) if per_batch else ""
    return SHORTER.get(st.name, "").format(bench=" ".join(str(b) for b in bench_batch_sizes), bench_split=split,
                                           features=f"{questions} questions now" if questions else "now all of them")


def time_advice(steps: list, *, skip=(), limit: int | None = None,
                bench_batch_sizes=BENCH_BATCH_SIZES) -> list[str]:
    """Where the time went and how to shorten it: one line per step that took at least a tenth of
    the run (and a second), load included, longest first, each with its own numbers and what
    shortens it."""
    total = sum(st.seconds for st in steps)
    lines = []
    for st in sorted(steps, key=lambda s: -s.seconds):
        if st.status in ("skipped", "not run") or st.seconds < max(1.0, 0.1 * total):
            continue
        tip = advice_for(st, limit=limit, bench_batch_sizes=bench_batch_sizes)
        lines.append(f"{st.name} took {st.seconds:.1f} s of {total:.1f} s ({100 * st.seconds / total:.0f} %)"
                     + (f": {tip}" if tip else ""))
    return lines


def runner_text(runner: dict) -> str:
    """A runner's description (``Runner.describe()``) as one readable line."""
    if not runner:
        return "—"
    head = f"{runner.get('backend', '?')} {runner.get('precision', '?')}"
    if runner.get("device"):
        head += f" on {runner['device']}"
    rest = []
    for k, v in runner.items():
        if k in ("backend", "precision", "device"):
            continue
        if isinstance(v, dict):
            v = ", ".join(f"{k2} {v2}" for k2, v2 in v.items())
            rest.append(f"{k} ({v})")
        elif isinstance(v, (list, tuple)):
            rest.append(f"{k} {' '.join(map(str, v))}")
        else:
            rest.append(f"{k} {v}")
    return ", ".join([head, *rest])


def step_note(st: dict) -> str:
    """Why a step was skipped / failed / not run, or a short what-it-did for an ok step."""
    d = st.get("detail") or {}
    if d.get("reason"):
        return str(d["reason"])
    if st["name"] == "features" and "examples" in d:
        return f"{d['examples']} questions, {d['features']} features"
    if st["name"] == "thresholds" and "measured" in d:
        note = ", ".join(f"{FIGURE_NAMES.get(k, k)} {against(v, d['thresholds'][k])}" for k, v in d["measured"].items())
        ratio = (d.get("mlperf") or {}).get("ratio")
        if ratio is not None:
            note += f", official F1 / torch fp32 {against(ratio, d['mlperf']['threshold'], 4)}"
        return note
    if st["name"] == "evaluate" and "features_per_second" in d:
        return f"{d['features_per_second']} features/s"
    return ""


def _verdict(report: dict) -> str:
    if report.get("state") == "interrupted":
        return "INTERRUPTED in " + report["failure"]["step"]
    failed = [st["name"] for st in report["steps"] if st["status"] == "failed"]
    return "all steps passed" if not failed else "FAILED: " + ", ".join(failed)


def render_markdown(report: dict, result=None) -> str:
    """report.md: what ran, each step with its status, time and reason, both metrics, the tables,
    and where the time went.  Built from ``report`` alone (a failed run has no evaluation)."""
    steps = {st["name"]: st for st in report["steps"]}
    scores = (steps.get("evaluate", {}).get("detail") or {}).get("scores")
    lines = [f"# albert-ixrt acceptance run: {report['title']}", "",
             f"**{report['label'] or report['title']}** — {_verdict(report)}", ""]
    if report.get("failure"):
        lines += [f"The run stopped in the **{report['failure']['step']}** step: {report['failure']['message']}", ""]
    model = report.get("model") or {}
    if model:
        lines.append(f"- model: `{model.get('model')}` ({model.get('weights')} weights)")
    if scores:
        lines.append(f"- data: `{report['squad']}` ({scores['questions']} questions, {scores['features']} features)")
    elif report.get("squad"):
        lines.append(f"- data: `{report['squad']}`")
    lines += [f"- runner: {runner_text(report.get('runner') or {})}",
              f"- started {report['started']}, took {report.get('seconds', 0):.1f} s", "",
              "| step | status | seconds | note |", "|---|---|---|---|",
              *[f"| {st['name']} | {st['status']} | {st['seconds']:.1f} | {step_note(st).replace('|', '/')} |"
                for st in report["steps"]], ""]
    if scores:
        lines += ["| metric | Exact Match | F1 |", "|---|---|---|",
                  f"| official SQuAD v1.1 (mean over {scores['questions']} questions) | {scores['exact_match']:.2f} | "
                  f"{scores['f1']:.2f} |",
                  f"| ByteMLPerf-compatible (sums / {scores['features']} features) | "
                  f"{scores['bytemlperf_exact_match']:.2f} | {scores['bytemlperf_f1']:.2f} |", ""]
    judged = steps.get("thresholds") or {}
    if "message" in (judged.get("detail") or {}):
        lines += [f"Reference thresholds: {judged['detail']['message']}", ""]
    if "mlperf" in (judged.get("detail") or {}):
        lines += [f"MLPerf-style ratio: {judged['detail']['mlperf']['message']}", ""]
    for name, title in (("equivalence", "Equivalence with torch fp32"), ("bench", "Throughput and latency")):
        detail = steps.get(name, {}).get("detail") or {}
        if detail.get("table"):
            lines += [f"## {title}", "", "```", detail["table"], "```", ""]
            if name == "equivalence":
                from .compare import table_legend

                lines += ["Columns:", "", *[f"- {line}" for line in table_legend()], ""]
        if detail.get("first_layer_over_tolerance"):
            from .layerwise import first_layer_lines

            lines += [f"- {line}" for line in first_layer_lines(detail["first_layer_over_tolerance"])] + [""]
    if report.get("time_advice"):
        lines += ["## Where the time went", "", *[f"- {line}" for line in report["time_advice"]], ""]
    if "perf_report.md" in report.get("files", []):
        lines += ["Throughput table against the reference row: `perf_report.md` (plot: `throughput.png`).", ""]
    return "\n".join(lines)


def summarize(report: dict, result=None) -> str:
    """One screenful for the terminal."""
    rows = [report["label"] or report["title"]]
    for st in report["steps"]:
        note = step_note(st) if st["status"] != "ok" else ""
        rows.append(f"  {st['name']:<11} {st['status']:<7} {st['seconds']:7.1f} s" + (f"  {note}" if note else ""))
    if result is not None:
        rows += [f"  {line}" for line in result.scores.summary_lines()]
    for st in report["steps"]:
        if st["name"] in ("equivalence", "bench") and (st.get("detail") or {}).get("table"):
            rows += ["", st["detail"]["table"]]
    if report.get("time_advice"):
        rows += ["", "Where the time went (and how to shorten it):", *[f"  {line}" for line in report["time_advice"]]]
    if report.get("failure") and not report["failure"]["input"]:
        rows += ["", f"{report['failure']['step']} failed: {report['failure']['message']} "
                     "(traceback in report.json)"]
    rows.append("PASSED" if report["passed"] else _verdict(report))
    return "\n".join(rows)


def files_line(report: dict, out_dir) -> str:
    """The files this run wrote (and only those), report.md first."""
    files = sorted(report.get("files", []), key=lambda f: (f != "report.md", f != "report.json"))
    return f"{out_dir}/" + ", ".join(f + (" (summary)" if f == "report.md" else "") for f in files)
