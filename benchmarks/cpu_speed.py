#!/usr/bin/env python
"""CPU speed of every CPU runner, side by side, at batch 1 x 384 on the albert-base shape twin.

Why one script and one run: on a shared 2-core machine the absolute speed drifts by 2-4x from
minute to minute, so only ratios measured in the same run mean anything.  Runners are timed in
interleaved rounds (one call each per round) next to large fp32 matmuls (``torch.mm`` and an
onnxruntime MatMul: the GEMM libraries the runners use), and each keeps its best call; the table
gives

- each runner's GFLOP/s (70.8 GFLOP per 384-token sequence) as a % of the machine's fp32 matmul
  rate measured in the same rounds (target: best fp32 runner >= 90%);
- its speed-up over torch eager fp32 (target: some reduced-precision path >= 2.5x ...);
- its argmax agreement with torch fp32 on real SQuAD features: raw, and margin-aware (rows whose
  fp32 top-1 margin exceeds an error bound calibrated on other rows; ... with >= 99% agreement).

The model has random weights: these are speed and numerics figures, never accuracy.

    python benchmarks/cpu_speed.py [--rounds 5] [--compile] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from albert_ixrt.bench import environment, real_feed  # noqa: E402
from albert_ixrt.compare import calibrated_agreement  # noqa: E402
from albert_ixrt.config import ARGMAX_AGREEMENT_MIN as TARGET_AGREEMENT  # noqa: E402
from albert_ixrt.config import CPU_FP32_OF_MATMUL_MIN as TARGET_FP32_OF_MATMUL  # noqa: E402
from albert_ixrt.config import CPU_REDUCED_SPEEDUP_MIN as TARGET_SPEEDUP  # noqa: E402
from albert_ixrt.config import GFLOP_PER_SEQUENCE_384  # noqa: E402
from albert_ixrt.fileio import write_json_atomic  # noqa: E402
from albert_ixrt.onnx_graph import make_model  # noqa: E402

BATCH, SEQ = 1, 384


@dataclass
class Candidate:
    name: str
    precision: str               # fp32 | bf16 | int8 | fp16
    make: Callable[[], object]   # -> Runner
    rounds: int                  # timed calls (bf16 here is ~10x slower: fewer)
    agreement_batches: int
    runner: object = None
    seconds: list[float] = field(default_factory=list)
    agreement: object = None
    note: str = ""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="albert-base config.json for the random-weight twin (default: shared data)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default 7)")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n x n fp32 matmuls (default 2048)")
    p.add_argument("--agreement-batches", type=int, default=8, help="batches of 4 real features for agreement")
    p.add_argument("--compile", action="store_true", help="also torch.compile (about 40 s to compile here)")
    p.add_argument("--no-bf16", action="store_true", help="skip torch bf16 (about 13 s per call without AVX512-BF16)")
    p.add_argument("--json", help="write the measurements here")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------
def load_inputs(args):
    from albert_ixrt import assets, export
    from albert_ixrt.config import CACHE_DIR
    from albert_ixrt.model import load_model
    from albert_ixrt.squad.data import load_squad
    from albert_ixrt.squad.features import build_features
    from albert_ixrt.tokenizer import AlbertTokenizer

    model = load_model(args.model or assets.model_config_path(), random_weights=True)
    out = CACHE_DIR / "onnx" / model.source_sha256[:16]
    t0 = time.perf_counter()
    graphs = export.stage_paths(export.convert(model, out, progress=False), out)
    print(f"ONNX graphs ready in {time.perf_counter() - t0:.0f} s ({out})", file=sys.stderr)
    examples = load_squad(assets.squad_dev_path(None, download=False))[:120]
    features = build_features(examples, AlbertTokenizer(assets.tokenizer_path(None)))
    return model, graphs, features


def candidates(args, model, graphs) -> list[Candidate]:
    from albert_ixrt.runners import create_runner

    n = args.agreement_batches
    out = [
        Candidate("torch eager fp32", "fp32", lambda: create_runner("torch", model=model, device="cpu"),
                  args.rounds, n),
        Candidate("onnxruntime fp32 (exported graph)", "fp32",
                  lambda: create_runner("onnxruntime", onnx_path=graphs["exported"], device="cpu"), args.rounds, n),
        Candidate("onnxruntime fp32 (fused graph)", "fp32",
                  lambda: create_runner("onnxruntime", onnx_path=graphs["fused"], device="cpu"), args.rounds, n),
        Candidate("onnxruntime int8 dynamic (fused graph)", "int8",
                  lambda: create_runner("onnxruntime", onnx_path=graphs["fused"], precision="int8", device="cpu"),
                  args.rounds, n),
    ]
    if not args.no_bf16:
        out.append(Candidate("torch bf16 autocast", "bf16",
                             lambda: create_runner("torch", model=model, precision="bf16", device="cpu"),
                             max(1, min(2, args.rounds)), min(n, 2)))
    if args.compile:
        out.append(Candidate("torch.compile fp32", "fp32",
                             lambda: create_runner("torch", model=model, device="cpu", compile=True), args.rounds, 0,
                             note="agreement skipped (one compile per input shape)"))
    return out


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------
def matmul_samplers(n: int) -> dict[str, Callable[[], None]]:
    """n x n x n fp32 matmuls by the two GEMM libraries the runners use: torch (MKL / oneDNN) and
    onnxruntime (MLAS, one MatMul node).  The machine's rate is the faster of the two."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    spec = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", spec[:2], spec[2:])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(make_model(graph, 17).SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return {"torch.mm": lambda: torch.mm(ta, tb), "onnxruntime MatMul": lambda: session.run(None, {"a": a, "b": b})}


def matmul_gflops(n: int, call: Callable[[], None], reps: int = 2) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def timed_call(runner, feed) -> float:
    t0 = time.perf_counter()
    runner.infer(feed)
    runner.synchronize()
    return time.perf_counter() - t0


def agreement_feeds(features, batches: int) -> list[dict]:
    """Batches of 4 consecutive real features, padded to the batch's longest rounded up to 64
    (few distinct shapes, little padding)."""
    feeds = []
    for k in range(batches):
        group = features[4 * k:4 * k + 4]
        seq = min(SEQ, -(-max(f.length for f in group) // 64) * 64)
        feeds.append(real_feed(group, len(group), seq))
    return feeds


def run(args) -> dict:
    model, graphs, features = load_inputs(args)
    feed = real_feed(features, BATCH, SEQ)
    cands = candidates(args, model, graphs)
    for c in cands:
        t0 = time.perf_counter()
        c.runner = c.make()
        c.runner.infer(feed)  # warm-up (and the compile, for torch.compile)
        print(f"{c.name}: ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    n = args.matmul_size
    samplers = matmul_samplers(n)
    for call in samplers.values():
        call()
    matmul: dict[str, list[float]] = {name: [] for name in samplers}
    for r in range(args.rounds):
        for name, call in samplers.items():
            matmul[name].append(matmul_gflops(n, call))
        for c in cands:
            if len(c.seconds) < c.rounds:
                c.seconds.append(timed_call(c.runner, feed))
        print(f"round {r + 1}/{args.rounds}: "
              + ", ".join(f"{name} {v[-1]:.0f} GFLOP/s" for name, v in matmul.items()) + "; "
              + ", ".join(f"{c.name} {c.seconds[-1] * 1e3:.0f} ms" for c in cands), file=sys.stderr)

    feeds = agreement_feeds(features, args.agreement_batches)
    reference = [cands[0].runner.infer(f) for f in feeds]
    for c in cands[1:]:
        if c.agreement_batches:
            n = c.agreement_batches
            got = [c.runner.infer(f) for f in feeds[:n]]
            c.agreement = calibrated_agreement([[r[k] for r in reference[:n]] for k in (0, 1)],
                                               [[g[k] for g in got] for k in (0, 1)],
                                               [f["attention_mask"] for f in feeds[:n]], c.precision)
    return summarize(args, cands, matmul)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def summarize(args, cands: list[Candidate], matmul: dict[str, list[float]]) -> dict:
    per_round = [max(v[r] for v in matmul.values()) for r in range(args.rounds)]
    peak = max(per_round)
    base = cands[0].seconds
    rows = []
    for c in cands:
        best = min(c.seconds)
        gflops = GFLOP_PER_SEQUENCE_384 * BATCH / best
        # same-round ratios: both calls met the same load, so their ratio drifts less than either
        paired = statistics.median(b / t for b, t in zip(base, c.seconds))
        a = c.agreement
        rows.append({
            "runner": c.name, "precision": c.precision, "best_ms": best * 1e3,
            "median_ms": statistics.median(c.seconds) * 1e3, "calls": len(c.seconds), "gflops": gflops,
            "pct_of_matmul": 100 * gflops / peak, "speedup_vs_torch_fp32": min(base) / best,
            "speedup_same_round_median": paired,
            "agreement": a, "note": c.note,
            "describe": c.runner.describe()})
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    best_fp32 = max(fp32, key=lambda r: r["gflops"])
    reduced = [r for r in rows if r["precision"] != "fp32"]

    def meets(r):
        a = r["agreement"]
        return (r["speedup_vs_torch_fp32"] >= TARGET_SPEEDUP and a is not None
                and a["margin_aware"] >= TARGET_AGREEMENT)
    targets = {
        "best_fp32_pct_of_matmul": {"runner": best_fp32["runner"], "value": best_fp32["pct_of_matmul"],
                                    "target": 100 * TARGET_FP32_OF_MATMUL,
                                    "met": best_fp32["pct_of_matmul"] >= 100 * TARGET_FP32_OF_MATMUL},
        "reduced_precision_speedup": {"runners_meeting": [r["runner"] for r in reduced if meets(r)],
                                      "target": f">= {TARGET_SPEEDUP}x torch eager fp32 with >= "
                                                f"{100 * TARGET_AGREEMENT:.0f}% margin-aware argmax agreement",
                                      "met": any(meets(r) for r in reduced)},
    }
    return {"environment": environment(), "shape": [BATCH, SEQ], "gflop_per_sequence": GFLOP_PER_SEQUENCE_384,
            "matmul": {"n": args.matmul_size, "gflops_samples": matmul, "gflops_peak": peak,
                       "gflops_median": statistics.median(per_round)},
            "rows": rows, "targets": targets, "weights": "random (albert-base shape twin)"}


def table(result: dict) -> str:
    lines = [
        f"| runner | best ms | median ms | calls | GFLOP/s | % of fp32 matmul ({result['matmul']['gflops_peak']:.0f} "
        "GFLOP/s) | speed-up vs torch fp32 (best / same-round median) | raw argmax agreement | "
        "margin-aware agreement (eligible/rows) |",
        "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        a = r["agreement"]
        if a is None:
            raw, aware = ("reference", "reference") if r is result["rows"][0] else ("—", r["note"] or "—")
        else:
            raw = f"{100 * a['raw']:.1f}% (max err {a['max_abs_error']:.3f})"
            share = f"{a['eligible']}/{a['rows']} rows, bound {a['error_bound']:.3f}"
            aware = (f"{100 * a['margin_aware']:.1f}% ({share})" if a["eligible"] else f"undecidable ({share})")
        speedup = f"{r['speedup_vs_torch_fp32']:.2f}x / {r['speedup_same_round_median']:.2f}x"
        lines.append(f"| {r['runner']} | {r['best_ms']:.0f} | {r['median_ms']:.0f} | {r['calls']} | "
                     f"{r['gflops']:.1f} | {r['pct_of_matmul']:.0f}% | {speedup} | {raw} | {aware} |")
    return "\n".join(lines)


def verdicts(result: dict) -> str:
    t = result["targets"]
    a, b = t["best_fp32_pct_of_matmul"], t["reduced_precision_speedup"]
    return "\n".join([
        f"- best fp32 runner ({a['runner']}) at {a['value']:.0f}% of the matmul rate: target >= {a['target']:.0f}% "
        f"-> {'MET' if a['met'] else 'NOT MET'}",
        f"- reduced precision {b['target']}: {'MET by ' + ', '.join(b['runners_meeting']) if b['met'] else 'NOT MET'}",
    ])


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    result = run(args)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    env = result["environment"]
    m = result["matmul"]
    print(f"\n{env['date']}  {env['cpu']}  ({env['cpus_usable']} usable CPUs), torch {env['torch']}")
    print(f"fp32 matmul {m['n']}^3 (best of torch.mm and onnxruntime MatMul per round): peak "
          f"{m['gflops_peak']:.1f} GFLOP/s, median {m['gflops_median']:.1f}")
    for name, samples in m["gflops_samples"].items():
        print(f"  {name}: {', '.join(f'{x:.0f}' for x in samples)} GFLOP/s")
    print(f"batch {BATCH} x seq {SEQ}, {GFLOP_PER_SEQUENCE_384} GFLOP per sequence, random weights\n")
    print(table(result))
    print()
    print(verdicts(result))
    print(f"\n(total {result['seconds']:.0f} s)")
    if args.json:
        write_json_atomic(args.json, json.loads(json.dumps(result, default=str)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
