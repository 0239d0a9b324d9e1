"""The checks of each step, on a session's artefacts: one function per step (``<name>_step(session)``)
returning a ``StepResult`` with one ``ItemResult`` per checked item.

Every "X against torch fp32" goes through ``compare.element_check`` (the one rule, real positions only,
the tolerance of X's precision); every accuracy verdict through ``verdicts``.
"""
from __future__ import annotations

from ..config import SQUAD_DEV_QUESTIONS
from .plan import RUNNER_ITEM
from .results import (FAILED, NOT_JUDGED, PASSED, ItemResult, NotJudged, StepResult, classify, reason_of, status_of,
                      step_reason)

#: The checks take the acceptance session (``session.Session``, which calls them: not imported here, so the
#: session is the one module that knows both).
Session = "acceptance.session.Session"


def _step(name: str, items: list[ItemResult], **kw) -> StepResult:
    status = status_of(items)
    return StepResult(name, status, step_reason(items, status), items, **kw)


def runner_label(session: Session) -> str:
    """What runs the subject, "[emulated ...]" first where the engine is the test suite's stand-in."""
    d = session.artefact("runner").describe()
    label = f"{d.get('backend')} {d.get('precision')}"
    return f"[{d['emulated']}] {label}" if d.get("emulated") else label


# ---------------------------------------------------------------------------------------------
# load, features
# ---------------------------------------------------------------------------------------------
def load_step(session: Session) -> StepResult:
    subject = session.artefact("subject")
    return StepResult("load", PASSED, detail=subject.describe())


def features_step(session: Session) -> StepResult:
    examples, features = session.artefact("data")
    return StepResult("features", PASSED, figures={"questions": len(examples), "features": len(features)})


# ---------------------------------------------------------------------------------------------
# conversion: graph checks, then every stage and the runner under test against torch fp32
# ---------------------------------------------------------------------------------------------
def user_conversion(plan) -> tuple:
    """(folder, manifest, graph problems) of a user's ONNX file, shaped as a conversion of one stage,
    "onnx": graph checks for the backend that runs it, its sha256 and size, its weights' precision."""
    from pathlib import Path

    from ..graph_checks import check_graph
    from ..trt_api import graph_precision
    from .plan import ONNX_ITEM
    from .subject import file_sha256        # hashed once per process: the record names the same hash

    path = Path(plan.subject.onnx)
    target = "onnxruntime" if plan.subject.backend == "onnxruntime" else "tensorrt"
    report = check_graph(path, target=target)
    import onnx

    nodes = len(onnx.load(str(path), load_external_data=False).graph.node)
    entry = {"file": path.name, "sha256": file_sha256(plan.subject.onnx), "size_bytes": path.stat().st_size,
             "node_count": nodes, "graph_check": report.to_dict(), "precision": graph_precision(path),
             "fused_ops": {}, "seconds": 0.0}
    return path.parent, {"stages": {ONNX_ITEM: entry}, "source": "the user's own ONNX file"}, \
        [f"{ONNX_ITEM} ({target}): {p}" for p in report.problems]


def plan_step(session: Session) -> StepResult:
    """A user's engine plan: deserialised by the runtime here, its I/O the QA model's, its profile covering
    every batch and length the session feeds (the runner's own checks); figures: versions, precision."""
    from .plan import PLAN_ITEM

    runner = session.artefact("runner")
    d = runner.describe()
    figures = {k: d.get(k) for k in ("plan_sha256", "plan_tensorrt_version", "precision", "precision_source",
                                     "tensorrt", "profile")}
    feeds = session.plan.feeds
    message = (f"PASS: plan {session.plan.subject.engine}: {d.get('tensorrt')} deserialised it; inputs and outputs "
               f"are the QA model's; its profile covers batches {min(feeds.batches())}..{max(feeds.batches())} x seq "
               f"1..{feeds.seq_len}")
    return _step("convert", [ItemResult(PLAN_ITEM, PASSED, message, figures)])


def convert_step(session: Session) -> StepResult:
    if session.plan.subject.engine:
        return plan_step(session)
    out, manifest, problems = session.artefact("conversion")
    items = []
    for stage in session.plan.step("convert").items:
        entry = manifest["stages"].get(stage)
        if entry is None:
            items.append(ItemResult(stage, FAILED, f"stage {stage!r} missing from {out / 'manifest.json'}"))
            continue
        mine = [p for p in problems if p.startswith(f"{stage} (")]
        figures = {k: entry.get(k) for k in ("file", "sha256", "node_count", "fused_ops", "size_bytes", "seconds")}
        if not entry.get("graph_check"):
            items.append(ItemResult(stage, FAILED, f"stage {stage!r} carries no graph check", figures))
        elif mine:
            items.append(ItemResult(stage, FAILED, "; ".join(mine), figures))
        else:
            items.append(ItemResult(stage, PASSED, f"PASS: {entry['file']}: graph checks clean "
                                                   f"({entry.get('node_count')} nodes)", figures))
    return _step("convert", items, detail={"onnx_dir": str(out), "manifest": manifest})


def equivalence_step(session: Session) -> StepResult:
    """Every stage against torch fp32 on the equivalence feeds; the runner under test as one more row
    (an engine: the engine itself); a failing stage names its first layer over tolerance."""
    from ..compare import compare_stages
    from ..export import stage_paths

    if session.plan.subject.engine:
        out, manifest = None, {"stages": {}}
    else:
        out, manifest, _ = session.artefact("conversion")
    feeds, reference = session.artefact("equivalence_feeds"), session.artefact("reference")
    model = session.artefact("subject").model
    candidates, runner_failure = {}, None
    try:
        candidates[RUNNER_ITEM] = session.artefact("runner")
    except Exception as exc:
        runner_failure = ItemResult(RUNNER_ITEM, classify(exc, session.plan), reason_of(exc))
    paths = stage_paths(manifest, out)
    # The tolerance each stage is judged by, decided once for the comparison and the layer locator: a graph
    # whose weights are fp16 has fp16's, any other (fp32, or a user's "mixed" file) fp32's.
    precisions = {name: "fp16" if entry["precision"] == "fp16" else "fp32"
                  for name, entry in manifest["stages"].items() if "precision" in entry}
    eq = compare_stages(reference, paths, feeds, candidates=candidates, weights=model.weights, precisions=precisions)
    drift = first_layers(session, eq, paths, feeds, precisions)
    items = []
    for name in session.plan.step("equivalence").items:
        rows = eq.of(name)
        if not rows:
            items.append(runner_failure if name == RUNNER_ITEM else
                         ItemResult(name, FAILED, f"stage {name!r} was not compared (missing from the manifest)"))
            continue
        prefix = f"{runner_label(session)}: " if name == RUNNER_ITEM else ""
        where = f"stage {name!r}: first layer over tolerance: {drift[name]}; " if name in drift else ""
        figures = {"worst_abs_error": max(c.worst_abs for c in rows), "nonfinite": sum(c.check.nan + c.check.inf
                                                                                       for c in rows),
                   "feeds": [list(f["input_ids"].shape) for f in feeds]}
        ok = all(c.passed for c in rows)
        items.append(ItemResult(name, PASSED if ok else FAILED, prefix + where + "; ".join(c.message() for c in rows),
                                figures))
    return _step("equivalence", items, detail={"equivalence": eq.to_dict(), "table": eq.table(),
                                                "first_layer_over_tolerance": drift})


def first_layers(session: Session, eq, paths: dict, feeds, precisions: dict | None = None) -> dict[str, str]:
    """For each stage over tolerance, the first layer that drifts (``albert-ixrt layerwise``); the runner
    under test's row says how to locate it (layerwise through its backend)."""
    from ..layerwise import first_layers_over

    failing = list(dict.fromkeys(c.stage for c in eq.comparisons if not c.passed))
    stages = [s for s in failing if s in paths]
    found = first_layers_over(session.artefact("subject").model, paths, feeds, stages, precisions) if stages else {}
    if RUNNER_ITEM in failing:
        found[RUNNER_ITEM] = (f"`albert-ixrt layerwise --backend {session.plan.subject.backend} --precision "
                              f"{session.plan.subject.precision}` names it")
    return found


# ---------------------------------------------------------------------------------------------
# accuracy: the evaluation, then the thresholds
# ---------------------------------------------------------------------------------------------
def evaluate_with_estimate(session: Session, runner, examples, features, what: str):
    """``evaluate`` with a line before it starts and, after the first batch, an estimate of the rest."""
    from ..evaluate import evaluate

    batch = session.plan.feeds.eval_batch
    session.say(f"evaluating the {what} ({runner.name} {runner.precision}): {len(examples):,} questions, "
                f"{len(features):,} features, batch {batch}")

    def on_batch(done: int, total: int, seconds: float) -> None:
        if done == 1 and total > 1:
            left = seconds * (total - 1)
            session.say(f"  first batch took {seconds:.2f} s: about {left / 60:.1f} min for the other {total - 1}")

    return evaluate(runner, examples, features, batch_size=batch, progress=session.progress or False,
                    model_info=session.artefact("subject").model.describe(), on_batch=on_batch)


def accuracy_judged(session: Session) -> str | None:
    """Why the thresholds cannot be judged on this subject and data (None: they can)."""
    model = session.artefact("subject").model
    if session.plan.subject.self_test or model.weights not in ("real", "known-answer"):
        return f"{model.label}: accuracy is judged only on real weights or a known-answer model"
    if session.plan.data.limit:
        return (f"--limit {session.plan.data.limit}: the thresholds hold for the whole dev set "
                f"({SQUAD_DEV_QUESTIONS:,} questions)")
    return None


def evaluate_step(session: Session) -> StepResult:
    why = accuracy_judged(session)
    if why and not (session.plan.data.sample or session.plan.data.limit):
        raise NotJudged(f"{why} (the evaluation is skipped: --limit K evaluates the first K questions anyway)")
    result = session.artefact("evaluation")
    s = result.scores
    return StepResult("evaluate", PASSED, figures={**s.as_dict(), "features_per_second":
                                                    round(result.features_per_second, 2)},
                      detail={"runner": result.runner, "timings": result.timings})


def threshold_items(scores, reference_f1: float | None) -> list[ItemResult]:
    """One item per threshold: ByteMLPerf-compatible EM and F1 against the reference row's, and official F1
    against 99% of the torch fp32 reference's (``reference_f1`` None: the runner under test is that
    reference, ratio 1 by definition).  Pure: the known-answer proofs call it with known scores."""
    from ..verdicts import mlperf_ratio, threshold_verdicts

    items = [ItemResult(key, PASSED if v.passed else FAILED, v.message, dict(v.detail))
             for key, v in threshold_verdicts(scores).items()]
    if reference_f1 is None:
        items.append(ItemResult("official_f1_ratio", PASSED, "PASS: the runner under test is the torch fp32 "
                                "reference itself: official F1 ratio 1 by definition", {"ratio": 1.0}))
    else:
        ratio = mlperf_ratio(scores.f1, reference_f1)
        items.append(ItemResult("official_f1_ratio", PASSED if ratio.passed else FAILED, ratio.message,
                                {k: ratio.detail[k] for k in ("f1", "reference_f1", "ratio", "threshold")}))
    return items


def thresholds_step(session: Session) -> StepResult:
    why = accuracy_judged(session)
    if why:
        raise NotJudged(why)
    scores = session.artefact("evaluation").scores
    if scores.questions != SQUAD_DEV_QUESTIONS:
        raise NotJudged(f"{scores.questions:,} questions evaluated: the thresholds hold for the whole SQuAD v1.1 "
                        f"dev set ({SQUAD_DEV_QUESTIONS:,})")
    s = session.plan.subject
    is_reference = (s.backend, s.precision) == ("torch", "fp32")
    reference_f1 = None if is_reference else session.artefact("reference_evaluation").scores.f1
    return _step("thresholds", threshold_items(scores, reference_f1), figures={**scores.as_dict()})


# ---------------------------------------------------------------------------------------------
# perf
# ---------------------------------------------------------------------------------------------
def perf_step(session: Session) -> StepResult:
    """Every perf item with ``run``'s timer (the pytest door times each item with pytest-benchmark)."""
    from .perf import loop_timer

    return session.time_items(loop_timer)


def perf_item(session: Session, name: str, timer) -> ItemResult:
    from ..compare import element_check, tolerance_for
    from ..model import OUTPUT_NAMES
    from .perf import CHECKED_ROWS, WARMUP, perf_feed, perf_figures, rounds_for
    from .results import CannotJudge

    if session.perf_blocked:
        raise CannotJudge(session.perf_blocked)
    runner, reference = session.artefact("runner"), session.artefact("reference")
    feed, lengths = perf_feed(session.artefact("perf_features"), session.plan.feeds, name)
    timed: list = []

    def call():
        timed[:] = [runner.infer(feed)]        # keep the outputs of the last timed call

    samples = timer(call, rounds_for(int(feed["input_ids"].shape[0])), WARMUP)
    figures = {**perf_figures(samples, feed), "lengths": lengths}
    emulated = runner.describe().get("emulated")
    if emulated:
        figures.update(emulated=emulated, not_published="timings of the emulated engine, never TensorRT figures")
    if session.perf_beside:
        figures["timed_beside"] = session.perf_beside
    if not timed:
        timed[:] = [runner.infer(feed)]
    rows = slice(0, min(CHECKED_ROWS, int(feed["input_ids"].shape[0])))
    sample = {k: v[rows] for k, v in feed.items()}
    got = [t[rows] for t in timed[0]]
    check = element_check(list(reference.infer(sample)), got, [sample["attention_mask"]] * len(OUTPUT_NAMES),
                          tolerance_for(runner.precision))    # the runner's own, as its equivalence row
    message = check.describe(f"outputs of the last timed call against torch fp32 (first {rows.stop} rows; feed 0: "
                             f"{OUTPUT_NAMES[0]}, feed 1: {OUTPUT_NAMES[1]})", session.plan.subject.backend)
    figures["timed_outputs_check"] = message
    label = f"[{emulated}] " if emulated else ""
    if not check.passed:
        return ItemResult(name, FAILED, label + message, figures)
    if not len(samples):
        return ItemResult(name, NOT_JUDGED, "no timings (pytest-benchmark is disabled: --benchmark-disable)", figures)
    head = (f"{figures['sequences_per_s']:.1f} seq/s, {figures['batches_per_s']:.2f} batches/s at batch "
            f"{figures['batch_size']} x {figures['seq_len']} ({lengths}); p50/p90/p99 {figures['p50_ms']:.2f}/"
            f"{figures['p90_ms']:.2f}/{figures['p99_ms']:.2f} ms"
            + (" (timed beside another perf session on this machine)" if session.perf_beside else ""))
    return ItemResult(name, PASSED, f"{label}{head}; {message}", figures)

