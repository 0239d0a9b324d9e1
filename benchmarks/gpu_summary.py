"""Summary of benchmarks/gpu_check.sh: one Markdown file and one JSON file from the steps' outputs.

Reads the step log (name, seconds, exit code), the JUnit files of the suite, the ``bench`` JSON of
each sweep and the evaluate ``metrics.json``; judges the GPU targets of ``albert_ixrt/config.py``
(config.py's GPU targets).  A missing input is reported as such, never as a pass.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from albert_ixrt.config import (GPU_BATCH1_LATENCY_MAX_MS, GPU_FULL_DEV_EVAL_MAX_S,  # noqa: E402
                                GPU_PEAK_MIN_SEQ_PER_S)
from albert_ixrt.fileio import write_json_atomic, write_text_atomic  # noqa: E402

SWEEPS = {"bench_eager": "eager", "bench_compiled": "compiled", "bench_autotune": "max-autotune"}


def read_steps(work: Path) -> dict:
    steps = {}
    f = work / "steps"
    for line in f.read_text().splitlines() if f.is_file() else []:
        name, seconds, rc = line.split()[:3]
        status = {"0": "ok", "124": "timed out", "137": "timed out (killed)", "skipped": "skipped"}.get(rc, f"rc {rc}")
        steps[name] = {"seconds": int(seconds), "rc": rc, "status": status}
    return steps


def read_junit(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return {"error": f"unreadable JUnit file ({exc})"}
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed, skip_reasons = [], {}
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for k in counts:
            counts[k] += int(suite.get(k, 0))
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        skipped = case.find("skipped")
        if skipped is not None:
            reason = (skipped.get("message") or "").strip()[:160]
            skip_reasons[reason] = skip_reasons.get(reason, 0) + 1
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "failed": failed, "skip_reasons": skip_reasons}


def read_bench(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"{path}: unreadable ({exc})", file=sys.stderr)
        return []


def judge(value, limit, higher_is_better: bool, dry: bool) -> str:
    if value is None:
        return "not measured"
    if dry:
        return "not judged (CPU dry run)"
    ok = value >= limit if higher_is_better else value <= limit
    return "met" if ok else "missed"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--dry-run", default="0")
    ap.add_argument("--elapsed", type=int, default=0)
    a = ap.parse_args(argv)
    dry = a.dry_run == "1"
    steps = read_steps(a.work)
    suite = {"suite": read_junit(a.out / "junit.xml"), "perf": read_junit(a.out / "junit-perf.xml")}
    sweeps = {label: read_bench(a.work / f"{name}.json") for name, label in SWEEPS.items()}
    metrics_file = a.work / "eval" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None

    points = [dict(r, sweep=label) for label, results in sweeps.items() for r in results]
    b1 = [p for p in points if p["batch_size"] == 1 and p["transfer"] == "device_only" and p["sweep"] != "eager"]
    best_b1 = min(b1, key=lambda p: p["latency"]["mean_ms"]) if b1 else None
    peak = max(points, key=lambda p: p["sequences_per_s"]) if points else None
    wall = (metrics or {}).get("timings", {}).get("wall_after_load_s")
    device = next((p["device"] for p in points), "not measured")
    compile_s = {label: results[-1]["runner"].get("compile_seconds") for label, results in sweeps.items()
                 if results and "compile_seconds" in results[-1]["runner"]}
    if metrics and "compile_s" in metrics.get("timings", {}):
        compile_s["evaluate"] = metrics["timings"]["compile_s"]

    seq = next((p["seq_len"] for p in points), "?")
    targets = [
        {"target": f"batch 1, seq {seq}, device-only latency (compiled, mean)", "limit": f"<= {GPU_BATCH1_LATENCY_MAX_MS} ms",
         "value": None if best_b1 is None else round(best_b1["latency"]["mean_ms"], 3),
         "where": None if best_b1 is None else best_b1["sweep"],
         "verdict": judge(best_b1 and best_b1["latency"]["mean_ms"], GPU_BATCH1_LATENCY_MAX_MS, False, dry)},
        {"target": f"peak sequences/s, seq {seq} (any batch, any sweep)", "limit": f">= {GPU_PEAK_MIN_SEQ_PER_S}",
         "value": None if peak is None else round(peak["sequences_per_s"], 1),
         "where": None if peak is None else f"{peak['sweep']} batch {peak['batch_size']} {peak['transfer']}",
         "verdict": judge(peak and peak["sequences_per_s"], GPU_PEAK_MIN_SEQ_PER_S, True, dry)},
        {"target": "whole dev set, wall after model load (compile apart)", "limit": f"<= {GPU_FULL_DEV_EVAL_MAX_S} s",
         "value": wall, "where": None if metrics is None else f"{metrics['scores'].get('features', '?')} features",
         "verdict": judge(wall, GPU_FULL_DEV_EVAL_MAX_S, False, dry or (metrics or {}).get("settings", {}).get("limit"))},
    ]
    summary = {"schema": "albert-ixrt/gpu-check/1", "dry_run": dry, "device": device, "elapsed_s": a.elapsed,
               "steps": steps, "tests": suite, "targets": targets, "compile_seconds": compile_s,
               "evaluate": None if metrics is None else {k: metrics.get(k) for k in ("timings", "features_per_second",
                                                                                    "runner", "warning")},
               "sweeps": {label: [{k: r[k] for k in ("batch_size", "seq_len", "transfer", "sequences_per_s",
                                                     "batches_per_s", "latency")} for r in results]
                          for label, results in sweeps.items()}}
    write_json_atomic(a.out / "summary.json", summary)

    lines = [f"# gpu_check {'(DRY RUN on the CPU: plumbing only, nothing judged)' if dry else ''}", "",
             f"device: {device}; elapsed {a.elapsed} s; compile seconds: "
             + (", ".join(f"{k} {v}" for k, v in compile_s.items()) or "none"), ""]
    lines += ["| check | result | target | verdict |", "|---|---|---|---|"]
    for name, j in suite.items():
        st = steps.get(name, {}).get("status", "not run")
        if j is None or "error" in j:
            lines.append(f"| {name} tests | {st}; {'no JUnit file' if j is None else j['error']} | all pass | not measured |")
            continue
        res = f"{j['passed']} passed, {j['failures'] + j['errors']} failed, {j['skipped']} skipped ({st})"
        if j["tests"] == 0:   # the dry run only collects: say how many tests it found
            log = a.work / "logs" / f"{name}.log"
            found = re.search(r"(\d+)(?:/\d+)? tests? collected[^\n]*", log.read_text()) if log.is_file() else None
            res = f"collect only: {found.group(0)}" if found else res
        verdict = ("no test ran" if j["tests"] == 0 else
                   "ok" if j["failures"] + j["errors"] == 0 and st == "ok" else "FAILED")
        lines.append(f"| {name} tests | {res} | all pass | {verdict} |")
    for t in targets:
        val = "—" if t["value"] is None else f"{t['value']} ({t['where']})"
        lines.append(f"| {t['target']} | {val} | {t['limit']} | {t['verdict']} |")
    for name in ("bench_eager", "bench_compiled", "evaluate", "bench_autotune"):
        if name in steps:
            lines.append(f"| step {name} | {steps[name]['status']} in {steps[name]['seconds']} s | | |")
    # The sweep: one row per batch size.
    batches = sorted({p["batch_size"] for p in points})
    if batches:
        lines += ["", "| batch | " + " | ".join(f"{s} seq/s (dev) | {s} ms p50 (dev) | {s} seq/s (copies)"
                                                 for s in sweeps if sweeps[s]) + " |",
                  "|---" * (1 + 3 * sum(1 for s in sweeps if sweeps[s])) + "|"]
        for b in batches:
            cells = []
            for s, results in sweeps.items():
                if not results:
                    continue
                by = {r["transfer"]: r for r in results if r["batch_size"] == b}
                dev, cp = by.get("device_only"), by.get("with_copies")
                cells += [f"{dev['sequences_per_s']:.0f}" if dev else "—",
                          f"{dev['latency']['p50_ms']:.2f}" if dev else "—",
                          f"{cp['sequences_per_s']:.0f}" if cp else "—"]
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
    for name, j in suite.items():
        if j and j.get("failed"):
            lines += ["", f"{name} failures:"] + [f"- {f}" for f in j["failed"][:30]]
        if j and j.get("skip_reasons"):
            lines += ["", f"{name} skip reasons:"] + [f"- {n} x {r}" for r, n in sorted(j["skip_reasons"].items())[:15]]
    write_text_atomic(a.out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
