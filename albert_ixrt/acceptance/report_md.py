"""The sign-off record for people: report.md, the terminal summary and where the time went.

Built from the record dict alone (``record.record``), so a failed or partial session renders the same
way, whichever door wrote it.
"""
from __future__ import annotations

from pathlib import Path

#: How to shorten each step, for "where the time went".
SHORTER = {
    "load": "importing torch and loading the model and tokenizer; every command pays it once per process "
            "(a local --model directory avoids the hub look-up)",
    "features": "--limit K featurizes only the first K questions (accuracy is then not judged)",
    "convert": "the graphs are cached by content hash and reused while the model is unchanged; --skip convert "
               "also leaves out equivalence",
    "equivalence": "--skip equivalence saves it (it runs torch fp32, every ONNX stage and the runner on a few "
                   "real feeds)",
    "evaluate": "--limit K evaluates only the first K questions (accuracy is then not judged)",
    "thresholds": "it evaluated the torch fp32 reference for the MLPerf-style ratio (--reference-device cuda runs it "
                  "on a GPU); torch fp32 as the subject is the reference itself and needs no second evaluation",
    "perf": "--skip perf saves it, or fewer/smaller --perf-batch-sizes",
}


def advice_for(st: dict) -> str:
    """The tip for one step, with the session's own numbers where the step recorded them."""
    f = st.get("figures") or {}
    if st["name"] == "evaluate" and f.get("questions") and st["seconds"] > 0:
        per_question = st["seconds"] / f["questions"]
        some = max(1, min(1000, f["questions"] // 10))
        rate = f" ({f['features_per_second']} features/s)" if f.get("features_per_second") else ""
        return (f"{f['questions']} questions at {per_question:.3g} s each{rate}: --limit {some} would take about "
                f"{some * per_question:.0f} s (accuracy is then not judged)")
    if st["name"] == "perf" and st.get("items"):
        timed = ", ".join(f"{i['name']} {sum((i.get('figures') or {}).get('samples_s') or [0]):.1f} s"
                          for i in st["items"])
        return f"{SHORTER['perf']} (timed calls: {timed})"
    return SHORTER.get(st["name"], "")


def time_advice(steps: list[dict]) -> list[str]:
    """One line per step that took at least a tenth of the session (and a second), longest first, each
    with its own numbers and what shortens it."""
    total = sum(st["seconds"] for st in steps)
    lines = []
    for st in sorted(steps, key=lambda s: -s["seconds"]):
        if st["seconds"] < max(1.0, 0.1 * total):
            continue
        tip = advice_for(st)
        lines.append(f"{st['name']} took {st['seconds']:.1f} s of {total:.1f} s ({100 * st['seconds'] / total:.0f} %)"
                     + (f": {tip}" if tip else ""))
    return lines


def step_note(st: dict) -> str:
    if st.get("reason"):
        return str(st["reason"])
    f = st.get("figures") or {}
    if st["name"] == "features" and "questions" in f:
        return f"{f['questions']} questions, {f['features']} features"
    if st["name"] == "evaluate" and "f1" in f:
        return (f"official EM {f['exact_match']:.2f} F1 {f['f1']:.2f}; ByteMLPerf-compatible EM "
                f"{f['bytemlperf_exact_match']:.2f} F1 {f['bytemlperf_f1']:.2f}")
    return f"{len(st['items'])} items" if st.get("items") else ""


def subject_lines(rec: dict) -> list[str]:
    s, suite = rec["subject"], rec["suite"]
    named = f"named by {s['named_by']}" if s.get("named") else "no subject named: the built-in self-test"
    lines = [f"- model: `{s.get('model')}` ({s.get('weights', '?')} weights, {named}); weights sha256 "
             f"`{s.get('weights_sha256', '?')}`",
             f"- runner: {s['backend']} {s['precision']} on {s.get('device')}"
             + (f" ({s['gpu']}, driver {s.get('driver')})" if s.get("gpu") else "")
             + f"; runtime {s.get('runtime') or '—'}" + (" — **EMULATED**" if s.get("emulated") else ""),
             f"- tokenizer: `{s.get('tokenizer', '?')}` (sha256 `{s.get('tokenizer_sha256', '?')}`)",
             f"- data: `{s.get('squad', '?')}` (sha256 `{s.get('squad_sha256', '?')}`)",
             f"- reference: torch fp32 on {s.get('reference_device')}; {rec.get('plan', '')}",
             f"- suite: albert-ixrt {suite.get('version')}"
             + (f", commit {suite['commit'][:12]}" + (" (uncommitted changes)" if suite.get("dirty") else "")
                if suite.get("commit") else ""),
             f"- started {rec['started']}, finished {rec['finished']}; written by {rec['writer']}"]
    return lines


def render_markdown(rec: dict) -> str:
    """report.md: the verdict line first, the subject, every step and item, the tables."""
    verdict = rec["verdict"]
    lines = [f"# albert-ixrt sign-off: {rec['title']}", "", f"**{verdict['line']}**", "", *subject_lines(rec), "",
             "| step | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {st['name']} | {st['status']} | {st['seconds']:.1f} | {step_note(st).replace('|', '/')} |"
              for st in rec["steps"]]
    lines.append("")
    for st in rec["steps"]:
        if not st.get("items"):
            continue
        lines += [f"## {st['name']}", "", "| item | verdict | message |", "|---|---|---|"]
        lines += [f"| {i['name']} | {i['status']} | {i['message'].replace('|', '/')} |" for i in st["items"]]
        lines.append("")
        table = (st.get("detail") or {}).get("table")
        if table:
            from ..compare import table_legend

            lines += ["```", table, "```", "", "Columns:", "", *[f"- {line}" for line in table_legend()], ""]
    acc = (rec.get("figures") or {}).get("accuracy")
    if acc and acc.get("f1") is not None:
        lines += ["| metric | Exact Match | F1 |", "|---|---|---|",
                  f"| official SQuAD v1.1 (mean over {acc['questions']} questions) | {acc['exact_match']:.2f} | "
                  f"{acc['f1']:.2f} |",
                  f"| ByteMLPerf-compatible (sums / {acc['features']} features) | "
                  f"{acc['bytemlperf_exact_match']:.2f} | "
                  f"{acc['bytemlperf_f1']:.2f} |", ""]
    advice = time_advice(rec["steps"])
    if advice:
        lines += ["## Where the time went", "", *[f"- {line}" for line in advice], ""]
    if "perf_report.md" in rec.get("files", []):
        lines += ["Throughput against the reference row: `perf_report.md` (plot: `throughput.png`).", ""]
    return "\n".join(lines)


def summary(rec: dict) -> str:
    """One screenful for the terminal, the verdict line last."""
    rows = [rec["title"]]
    for st in rec["steps"]:
        note = step_note(st) if st["status"] != "passed" else ""
        rows.append(f"  {st['name']:<11} {st['status']:<10} {st['seconds']:7.1f} s" + (f"  {note}" if note else ""))
        for item in st.get("items", []):
            if item["status"] != "passed" or st["name"] in ("thresholds", "perf"):
                rows.append(f"      {item['name']}: {item['message']}")
    acc = (rec.get("figures") or {}).get("accuracy")
    if acc and acc.get("f1") is not None:
        rows += [f"  official SQuAD v1.1 (mean over {acc['questions']} questions): EM {acc['exact_match']:.2f} "
                 f"F1 {acc['f1']:.2f}",
                 f"  ByteMLPerf-compatible (sums / {acc['features']} features): EM {acc['bytemlperf_exact_match']:.2f} "
                 f"F1 {acc['bytemlperf_f1']:.2f}"]
    eq = next((st for st in rec["steps"] if st["name"] == "equivalence"), None)
    if eq and (eq.get("detail") or {}).get("table"):
        rows += ["", eq["detail"]["table"]]
    advice = time_advice(rec["steps"])
    if advice:
        rows += ["", "Where the time went (and how to shorten it):", *[f"  {line}" for line in advice]]
    rows.append(rec["verdict"]["line"])
    return "\n".join(rows)


def write_perf_report(session, folder: Path, shown_as: Path) -> list[str]:
    """perf_report.md / .json and throughput.png (the reference table) from the folder's bench.json and
    metrics.json; for a session without timings, the reference row and why there are no rows."""
    from ..errors import AssetMissingError
    from ..report import write_report

    perf = next((r for r in session.results() if r.name == "perf"), None)
    notes = []
    if not (Path(folder) / "bench.json").is_file():
        why = (perf.reason if perf is not None and perf.reason else
               "no timings" if perf is not None else "perf was not asked for")
        notes.append(f"No throughput rows from this session ({why}); only the reference row is shown.")
    try:
        paths = write_report(folder, notes=notes, shown_as=shown_as)
    except AssetMissingError:
        return []
    return [str(Path(p).relative_to(folder)) for p in paths.values()]


def perf_table(session) -> list[str]:
    """The subject's timed perf items beside the reference row, for the terminal."""
    from ..report import reference_row

    perf = next((r for r in session.results() if r.name == "perf"), None)
    timed = [i for i in (perf.items if perf else []) if i.figures.get("rounds")]
    if not timed:
        return []
    s = session.plan.subject
    model = "tiny self-test" if s.self_test else Path(s.model).name
    ref = reference_row()
    table = [("model", "backend/precision", "batch x seq", "lengths", "seq/s", "batches/s", "p50/p90/p99 ms")]
    for i in timed:
        f = i.figures
        table.append((model, f"{s.backend}/{s.precision}" + (" EMULATED" if f.get("emulated") else ""),
                      f"{f['batch_size']}x{f['seq_len']}", str(f.get("lengths", "")), f"{f['sequences_per_s']:.1f}",
                      f"{f['batches_per_s']:.2f}", f"{f['p50_ms']:.2f}/{f['p90_ms']:.2f}/{f['p99_ms']:.2f}"))
    table.append((ref.model, f"{ref.backend}/{ref.precision}", f"{ref.batch_size}x{ref.seq_len}", ref.device,
                  f"{ref.sequences_per_s:.1f}", f"{ref.batches_per_s:.2f}", ""))
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
