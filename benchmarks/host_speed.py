#!/usr/bin/env python
"""Host-side speed of a whole-dev evaluation, this tree against commit 3c0c7cb, in one run.

What is timed, old code and new code on the same inputs, each step in its own subprocess (so
neither warms the other's caches):

- features: ``build_features`` of the whole SQuAD dev set in one process (new: ``workers=1``), CPU
  time (``time.process_time``) and wall; then the new code with ``--workers`` processes (wall only:
  the CPU of the workers is not the parent's);
- post-processing: ``predictions_from_logits`` on three logit sets: oracle (gold spans), seeded
  random normal logits, and a known-answer model's (``known_answer.table_logits``, 5 % wrong);
- the feature cache (new only): a cold build that writes it, then a hit in a fresh process, and the
  file's size;
- ``albert-ixrt evaluate`` of a known-answer model on the whole dev set (torch backend, CPU): the
  process's wall and CPU (``RUSAGE_CHILDREN``) and its own ``wall_after_load_s`` (features +
  inference + post-processing), old, new with an empty feature cache (cold) and new again (warm).

Every output is compared: a hash of every field of every feature, and the predictions of every
post-processing set and every evaluation must be identical, or the script says so and exits 1.
Other programs load this machine's CPUs, so the ratios use CPU time; wall times are shown beside.

    python benchmarks/host_speed.py [--json out.json] [--skip-evaluate]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = "3c0c7cb"
REPO = Path(__file__).resolve().parents[1]
#: Targets of the host side of an evaluation (benchmarks/BENCHMARKS.md, "Host side").
TARGETS = {"features": 4.0, "postprocess": 5.0, "cache_hit_wall_s": 0.5, "cache_mb": 20.0,
           "evaluate_cold": 3.0, "evaluate_warm": 6.0}
#: Inference of the whole dev set on the H200 (benchmarks/BENCHMARKS.md, GPU run 2): the projection adds
#: the new host times to it.
H200_INFERENCE_S = 1.29
H200_OLD_FEATURES_S = 5.97
H200_OLD_POSTPROCESS_S = 3.02


# -- children: run with PYTHONPATH=<tree>, import that tree's albert_ixrt -----------------------------------
def _inputs(args):
    from albert_ixrt.squad.data import load_squad
    from albert_ixrt.tokenizer import AlbertTokenizer

    return load_squad(args.squad), AlbertTokenizer(args.tokenizer)


def feature_hash(features) -> str:
    """sha256 over every field of every feature: ids, masks, type ids (dtype, shape, bytes), indices,
    length, offset, gold span, every token span and max-context flag."""
    import numpy as np

    h = hashlib.sha256()
    for f in features:
        h.update(repr((f.example_index, f.doc_span_index, f.length, f.context_offset, f.start_position,
                       f.end_position, [(int(k), tuple(map(int, v))) for k, v in f.token_spans.items()],
                       [(int(k), bool(v)) for k, v in f.token_is_max_context.items()])).encode())
        for a in (f.input_ids, f.attention_mask, f.token_type_ids):
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}


def child_features(args) -> dict:
    from albert_ixrt.squad.features import build_features

    examples, tok = _inputs(args)
    kw = {"workers": args.workers} if args.workers else {}
    features, t = _timed(lambda: build_features(examples, tok, **kw))
    return {**t, "features": len(features), "hash": feature_hash(features)}


def logit_sets(examples, features, tok):
    import numpy as np

    from albert_ixrt.known_answer import build_table, table_logits
    from albert_ixrt.squad.postprocess import oracle_logits

    width = len(features[0].input_ids)
    rng = np.random.default_rng(18)
    start = rng.standard_normal((len(features), width), dtype=np.float32)
    end = rng.standard_normal((len(features), width), dtype=np.float32)
    table = build_table(examples, features, 0.05, seed=0, pad_id=tok.pad_id)
    return {"oracle": [oracle_logits(f) for f in features],
            "random": [(start[i], end[i]) for i in range(len(features))],
            "known-answer": table_logits(table, features)}


def child_postprocess(args) -> dict:
    from albert_ixrt.squad.features import build_features
    from albert_ixrt.squad.metrics import score
    from albert_ixrt.squad.postprocess import predictions_from_logits

    examples, tok = _inputs(args)
    features = build_features(examples, tok)
    out = {}
    for name, logits in logit_sets(examples, features, tok).items():
        preds, t = _timed(lambda: predictions_from_logits(examples, features, logits))
        scores, ts = _timed(lambda: score(examples, preds, num_features=len(features)))
        path = Path(args.out) / f"predictions_{name}.json"
        path.write_text(json.dumps(preds, sort_keys=True, ensure_ascii=False))
        out[name] = {**t, "predictions": str(path), "score": {**ts, "scores": scores.as_dict()}}
    return out


def child_cache(args) -> dict:
    from albert_ixrt.feature_cache import cached_features

    examples, tok = _inputs(args)
    folder = Path(args.out)
    features, t = _timed(lambda: cached_features(args.squad, tok, examples=examples, folder=folder, workers=1))
    files = sorted(folder.glob("*.npz"))
    return {**t, "features": len(features), "hash": feature_hash(features),
            "files": [str(p) for p in files], "bytes": sum(p.stat().st_size for p in files)}


CHILDREN = {"features": child_features, "postprocess": child_postprocess, "cache": child_cache}


# -- parent ------------------------------------------------------------------------------------------------
def run_child(tree: Path, step: str, args, **extra) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--tree", str(tree),
           "--squad", str(args.squad), "--tokenizer", str(args.tokenizer), "--result", str(result)]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(cmd, check=True, env=env, cwd=tree)
    out = json.loads(result.read_text())
    result.unlink()
    return out


def run_cli(tree: Path, cli_args: list[str], cache: Path) -> dict:
    """One ``albert-ixrt`` command of ``tree``: wall and CPU (this process's waited-for children)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "ALBERT_IXRT_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "albert_ixrt.cli", *cli_args], check=True, env=env, cwd=tree,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    flags = flags.group(1).split() if flags else []
    simd = [f for f in flags if re.fullmatch(r"sse4_2|avx|avx2|fma|f16c|avx512\w*|amx\w*|vnni\w*|avx_vnni", f)]
    return {"model": model.group(1) if model else platform.processor(), "cores": len(os.sched_getaffinity(0)),
            "simd_flags": simd, "flags": flags}


def ratio(old: float, new: float) -> float:
    return old / new if new > 0 else float("inf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--squad", type=Path, help="SQuAD v1.1 dev JSON (default: ../shared/data)")
    p.add_argument("--tokenizer", type=Path, help="spiece.model (default: ../shared/data)")
    p.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default {BASELINE})")
    p.add_argument("--skip-evaluate", action="store_true", help="no whole-dev evaluate runs")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        sys.path.insert(0, args.tree)
        Path(args.result).write_text(json.dumps(CHILDREN[args.child](args)))
        return 0

    sys.path.insert(0, str(REPO))
    from albert_ixrt import assets

    args.squad = Path(args.squad or assets.squad_dev_path(None, download=False)).resolve()
    args.tokenizer = Path(args.tokenizer or assets.tokenizer_path(None)).resolve()
    if args.tokenizer.is_dir():
        args.tokenizer = args.tokenizer / "spiece.model"
    tmp = Path(tempfile.mkdtemp(prefix="host_speed_"))
    failures: list[str] = []
    try:
        old_tree = tmp / "old"
        old_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        new_tree = REPO
        cores = len(os.sched_getaffinity(0))
        figures: dict = {"baseline": args.baseline, "cpu": cpu_info(), "steps": {}}
        say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

        say("features: old ...")
        f_old = run_child(old_tree, "features", args)
        say("features: new ...")
        f_new = run_child(new_tree, "features", args, workers=1)
        if f_old["hash"] != f_new["hash"]:
            failures.append(f"features differ: hash {f_old['hash'][:16]} (old) vs {f_new['hash'][:16]} (new)")
        figures["steps"]["features"] = {"old": f_old, "new": f_new}
        if cores > 1:
            say(f"features: new, {cores} workers ...")
            f_par = run_child(new_tree, "features", args, workers=cores)
            if f_par["hash"] != f_old["hash"]:
                failures.append(f"features with {cores} workers differ from the old ones")
            figures["steps"]["features_workers"] = {"workers": cores, "new": f_par}

        say("post-processing: old ...")
        (tmp / "pp_old").mkdir()
        (tmp / "pp_new").mkdir()
        p_old = run_child(old_tree, "postprocess", args, out=tmp / "pp_old")
        say("post-processing: new ...")
        p_new = run_child(new_tree, "postprocess", args, out=tmp / "pp_new")
        for name in p_old:
            a = json.loads(Path(p_old[name]["predictions"]).read_text())
            b = json.loads(Path(p_new[name]["predictions"]).read_text())
            diff = sum(a.get(k) != b.get(k) for k in set(a) | set(b))
            if diff:
                failures.append(f"post-processing, {name} logits: {diff} predictions differ")
            figures["steps"][f"postprocess_{name}"] = {"old": p_old[name], "new": p_new[name], "differ": diff,
                                                       "questions": len(a)}
            if p_old[name]["score"]["scores"] != p_new[name]["score"]["scores"]:
                failures.append(f"scores of the {name} predictions differ")

        say("feature cache: cold, then hit ...")
        (tmp / "fcache").mkdir()
        c_cold = run_child(new_tree, "cache", args, out=tmp / "fcache")
        c_hit = min((run_child(new_tree, "cache", args, out=tmp / "fcache") for _ in range(3)),
                    key=lambda r: r["wall_s"])
        for r in (c_cold, c_hit):
            if r["hash"] != f_old["hash"]:
                failures.append("features from the cache differ from the old ones")
        figures["steps"]["cache"] = {"cold": c_cold, "hit_best_of_3": c_hit, "bytes": c_hit["bytes"]}

        if not args.skip_evaluate:
            model = tmp / "known_answer.pt"
            common = ["--squad", str(args.squad), "--tokenizer", str(args.tokenizer)]
            say("known-answer model ...")
            run_cli(new_tree, ["known-answer", "--wrong", "0.05", "--out", str(model), "--quiet", *common],
                    tmp / "cache_model")
            ev = {}
            for label, tree, cache in (("old", old_tree, tmp / "cache_old"), ("new_cold", new_tree, tmp / "cache_new"),
                                       ("new_warm", new_tree, tmp / "cache_new")):
                say(f"evaluate: {label} ...")
                out = tmp / f"eval_{label}"
                ev[label] = run_cli(tree, ["evaluate", "--model", str(model), "--backend", "torch", "--quiet",
                                           "--out", str(out), *common], cache)
                ev[label]["timings"] = json.loads((out / "metrics.json").read_text())["timings"]
                ev[label]["predictions"] = json.loads((out / "predictions.json").read_text())
            for label in ("new_cold", "new_warm"):
                if ev[label]["predictions"] != ev["old"]["predictions"]:
                    failures.append(f"evaluate {label}: predictions differ from the old ones")
            for r in ev.values():
                r.pop("predictions")
            figures["steps"]["evaluate"] = ev
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = report(figures)
    print(table)
    figures["table"] = table
    figures["failures"] = failures
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    for line in failures:
        print(f"NOT IDENTICAL: {line}", file=sys.stderr)
    return 1 if failures else 0


def report(fig: dict) -> str:
    s = fig["steps"]
    lines = [f"CPU: {fig['cpu']['model']}, {fig['cpu']['cores']} cores available, "
             f"SIMD flags: {' '.join(fig['cpu']['simd_flags']) or 'none'}",
             f"baseline: commit {fig['baseline']}; CPU time = time.process_time (one process) or RUSAGE_CHILDREN",
             "",
             "| step | old CPU-s | new CPU-s | ratio CPU | old wall-s | new wall-s | ratio wall | target | identical |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]

    def row(name, old, new, target, same="yes"):
        lines.append(f"| {name} | {old['cpu_s']:.2f} | {new['cpu_s']:.2f} | {ratio(old['cpu_s'], new['cpu_s']):.1f}x | "
                     f"{old['wall_s']:.2f} | {new['wall_s']:.2f} | {ratio(old['wall_s'], new['wall_s']):.1f}x | "
                     f"{target} | {same} |")

    f = s["features"]
    same = "yes" if f["old"]["hash"] == f["new"]["hash"] else "NO"
    row(f"features, whole dev ({f['new']['features']:,} features), 1 process", f["old"], f["new"],
        f">= {TARGETS['features']:g}x CPU", same + " (hash of every field)")
    if "features_workers" in s:
        w = s["features_workers"]
        lines.append(f"| features, {w['workers']} worker processes | {f['old']['cpu_s']:.2f} | (workers uncounted) | | "
                     f"{f['old']['wall_s']:.2f} | {w['new']['wall_s']:.2f} | "
                     f"{ratio(f['old']['wall_s'], w['new']['wall_s']):.1f}x | | "
                     f"{'yes' if w['new']['hash'] == f['old']['hash'] else 'NO'} |")
    post = {"old": 0.0, "new": 0.0}                # CPU-s of post-processing + scoring, mean of the sets
    for name in ("oracle", "random", "known-answer"):
        p = s[f"postprocess_{name}"]
        row(f"post-processing, {name} logits ({p['questions']:,} questions)", p["old"], p["new"],
            f">= {TARGETS['postprocess']:g}x CPU", "yes" if not p["differ"] else f"NO ({p['differ']} differ)")
        for side in post:
            post[side] += (p[side]["cpu_s"] + p[side]["score"]["cpu_s"]) / 3
    p = s["postprocess_oracle"]
    row("scoring (official EM/F1) of the oracle predictions", p["old"]["score"], p["new"]["score"], "",
        "yes (same scores)")
    c = s["cache"]
    row("feature cache: cold build + write (new; old: plain build)", f["old"], c["cold"], "", "yes")
    row("feature cache: hit, best of 3 processes (old: plain build)", f["old"], c["hit_best_of_3"],
        f"<= {TARGETS['cache_hit_wall_s']} s wall", "yes")
    lines.append(f"| feature cache file | | {c['bytes'] / 1e6:.1f} MB | | | | | <= {TARGETS['cache_mb']:g} MB | |")
    if "evaluate" in s:
        e = s["evaluate"]
        for label, target in (("new_cold", TARGETS["evaluate_cold"]), ("new_warm", TARGETS["evaluate_warm"])):
            row(f"evaluate, known-answer model, whole dev, process ({label.replace('new_', '')} cache)", e["old"],
                e[label], f">= {target:g}x wall")
        for label in ("new_cold", "new_warm"):
            o, n = e["old"]["timings"], e[label]["timings"]
            lines.append(f"| evaluate `wall_after_load_s` ({label.replace('new_', '')}): features + inference + "
                         f"post-processing | | | | {o['wall_after_load_s']:.2f} | {n['wall_after_load_s']:.2f} | "
                         f"{ratio(o['wall_after_load_s'], n['wall_after_load_s']):.1f}x | | |")
    lines.append("")
    # The H200 host ran 3c0c7cb's features in 5.97 s and post-processing + scoring in 3.02 s (BENCHMARKS.md);
    # scaled by the CPU-time ratios measured here.
    feat_cold = H200_OLD_FEATURES_S * f["new"]["cpu_s"] / f["old"]["cpu_s"]
    feat_warm = H200_OLD_FEATURES_S * c["hit_best_of_3"]["cpu_s"] / f["old"]["cpu_s"]
    pp = H200_OLD_POSTPROCESS_S * post["new"] / post["old"]
    lines.append(f"Projected H200 whole-dev wall after load = inference {H200_INFERENCE_S:.2f} s (measured there) + "
                 f"its host times of 3c0c7cb (features {H200_OLD_FEATURES_S} s, post-processing + scoring "
                 f"{H200_OLD_POSTPROCESS_S} s) scaled by the CPU ratios above: cold cache "
                 f"{H200_INFERENCE_S + feat_cold + pp:.2f} s (features {feat_cold:.2f} + post {pp:.2f}), warm "
                 f"{H200_INFERENCE_S + feat_warm + pp:.2f} s (cache hit {feat_warm:.2f} + post {pp:.2f}); "
                 f"3c0c7cb measured 10.28 s there.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
