"""torch fp32 vs exported vs simplified vs fused vs FP16 vs trt_fp16, on real SQuAD feeds (Polygraphy)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from albert_ixrt.compare import (STAGE_PRECISION, TOLERANCES, SquadFeeds, compare_stages)
from albert_ixrt.export import stage_paths
from albert_ixrt.model import OUTPUT_NAMES, TINY_CONFIG
from albert_ixrt.onnx_graph import load_onnx

pytestmark = pytest.mark.selftest

STAGES = ("exported", "simplified", "fused", "fp16", "trt_fp16")
FP16_STAGES = ("fp16", "trt_fp16")


def assert_equivalent(result, model, stage_files: dict, feeds):
    """All stages within tolerance; otherwise the message says, per failing stage, the worst errors
    and the first ALBERT layer over tolerance (``albert-ixrt layerwise``, computed only then)."""
    if result.passed:
        return
    from albert_ixrt.layerwise import first_layer_lines, first_layers_over

    failing = list(dict.fromkeys(c.stage for c in result.comparisons if not c.passed))
    where = first_layers_over(model, stage_files, feeds, failing)
    pytest.fail("\n".join([*result.failures(), *first_layer_lines(where), result.table()]), pytrace=False)


def test_tiny_every_stage_matches_torch(tiny_equivalence, tiny_model, tiny_converted, tiny_feeds):
    assert_equivalent(tiny_equivalence, tiny_model, stage_paths(tiny_converted[1], tiny_converted[0]), tiny_feeds)
    assert [(c.stage, c.output) for c in tiny_equivalence.comparisons] == \
        [(s, o) for s in STAGES for o in OUTPUT_NAMES]


def test_tiny_feeds_cover_batch_and_padding(tiny_equivalence):
    shapes = tiny_equivalence.feeds
    assert [1, 384] in shapes, "a long-context window at full length, unpadded"
    assert any(b == 1 and s < 384 for b, s in shapes), "a short context at batch 1, unpadded"
    assert any(b == 8 and s < 384 for b, s in shapes), "batch 8 padded to its longest feature"
    assert [8, 384] in shapes, "batch 8 of short and long contexts padded to 384"


def test_twin_every_stage_matches_torch(twin_equivalence, twin_model, twin_converted, twin_feeds):
    assert_equivalent(twin_equivalence, twin_model, stage_paths(twin_converted[1], twin_converted[0]), twin_feeds)


@pytest.mark.parametrize("stage", STAGES)
def test_twin_stage_errors_within_its_precision(twin_equivalence, stage):
    """Each stage is judged with its precision's tolerance, and the fp32 stages are far inside it."""
    tol = TOLERANCES[STAGE_PRECISION[stage]]
    for output in OUTPUT_NAMES:
        c = twin_equivalence.get(stage, output)
        assert (c.check.atol, c.check.rtol) == (tol.atol, tol.rtol)
        assert c.check.mismatched == 0, c.failure_message()
        if STAGE_PRECISION[stage] == "fp32":
            assert c.worst_abs < tol.atol / 10, c.failure_message()


@pytest.mark.parametrize("stage", FP16_STAGES)
def test_twin_fp16_error_is_fp16_sized(twin_equivalence, stage):
    """FP16 must really be half precision (errors well above fp32 noise) yet within tolerance."""
    fp32 = max(twin_equivalence.get("fused", o).worst_abs for o in OUTPUT_NAMES)
    fp16 = max(twin_equivalence.get(stage, o).worst_abs for o in OUTPUT_NAMES)
    assert fp16 > 10 * fp32
    assert fp16 < TOLERANCES["fp16"].atol


def test_twin_argmax_agreement(twin_equivalence):
    """Where the fp32 margin exceeds the measured bound the argmax must agree; fp32 stages agree
    on every row (their error is orders of magnitude below any margin seen)."""
    for c in twin_equivalence.comparisons:
        assert c.decidable_agree == c.decidable_rows, c.failure_message()
        assert c.rows == 1 + 1 + 8
        if c.precision == "fp32":
            assert c.argmax_agree == c.rows


def test_result_serialises_and_prints(twin_equivalence):
    d = json.loads(json.dumps(twin_equivalence.to_dict()))
    assert d["passed"] is True and d["weights"] == "random"
    assert {c["stage"] for c in d["comparisons"]} == set(STAGES)
    assert set(d["tolerances"]) == {"fp32", "fp16"} and all(t["reason"] for t in d["tolerances"].values())
    table = twin_equivalence.table()
    for stage in STAGES:
        assert stage in table
    assert "argmax" in table


def test_padding_never_changes_real_token_logits(tiny_converted, short_features):
    """Each ONNX stage gives a feature the same logits alone (unpadded) and in a padded batch of 8:
    the fused Attention's mask_index path (right padding) included."""
    import onnxruntime as ort

    out, manifest = tiny_converted
    batch = SquadFeeds(short_features[:8], 8, pad_to="full", vocab_size=1000)
    padded_feed = next(iter(batch))
    for stage, path in stage_paths(manifest, out).items():
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        padded = session.run(None, dict(padded_feed))
        for row, feature in enumerate(short_features[:8]):
            alone = session.run(None, dict(batch.feed([feature])))  # batch 1, cut to its length
            n = feature.length
            for k, name in enumerate(OUTPUT_NAMES):
                np.testing.assert_allclose(padded[k][row, :n], alone[k][0, :n], atol=2e-3 if stage in FP16_STAGES else 1e-5,
                                           err_msg=f"{stage} {name} row {row}")


def broken_copy(src, dest, factor: float):
    """``src`` with its largest weight matrix scaled: a stage that no longer matches torch."""
    model = load_onnx(src)
    target = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)) if len(t.dims) == 2 else 0)
    array = numpy_helper.to_array(target) * factor
    target.CopyFrom(numpy_helper.from_array(array.astype(numpy_helper.to_array(target).dtype), target.name))
    onnx.save(model, str(dest))
    return dest


@pytest.mark.parametrize("precision, factor", [("fp32", 1.01), ("fp16", 3.0)])
def test_a_broken_stage_fails_with_stage_output_and_location(tiny_model, tiny_converted, short_features, tmp_path,
                                                            precision, factor):
    out, manifest = tiny_converted
    broken = broken_copy(out / manifest["stages"]["simplified"]["file"], tmp_path / "broken.onnx", factor)
    feeds = SquadFeeds(short_features[:8], 8, vocab_size=1000)
    result = compare_stages(tiny_model, {"broken": broken}, feeds, precisions={"broken": precision})
    assert not result.passed
    for c in result.comparisons:  # the rule's verdict follows its own count
        assert c.check.passed == (c.check.mismatched == 0)
    message = "\n".join(result.failures())
    assert "stage 'broken'" in message and f"({precision})" in message
    assert "worst absolute error" in message and "worst relative error" in message
    assert "(feed 0, row " in message and "position " in message
    assert any(name in message for name in OUTPUT_NAMES)


def test_a_failing_stage_names_its_first_layer_over_tolerance(tiny_model, tiny_converted, short_features, tmp_path):
    """assert_equivalent's message names where the stage drifts: a fault planted in layer 2 of the
    fused graph (its FFN output scaled by 5%) reads "first layer over tolerance: layer 2"."""
    from layer_faults import plant_fault  # tests/selftest/conversion/layer_faults.py

    out, manifest = tiny_converted
    faulty = plant_fault(stage_paths(manifest, out)["fused"], tmp_path / "faulty.onnx", 2, 0.05)
    feeds = list(SquadFeeds(short_features[:4], 2, vocab_size=TINY_CONFIG["vocab_size"]))
    result = compare_stages(tiny_model, {"fused": faulty}, feeds)
    with pytest.raises(pytest.fail.Exception, match="stage 'fused': first layer over tolerance: layer 2"):
        assert_equivalent(result, tiny_model, {"fused": faulty}, feeds)
