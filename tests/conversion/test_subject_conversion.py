"""Conversion acceptance on the subject under test (--model / --backend / --precision; default: the
built-in tiny self-test model): the graph checks of each converted stage, each stage and the runner
under test against torch fp32 on real dev inputs (batch 1 unpadded short and long windows, a padded
batch of 8), within config.TOLERANCES.  A failing stage's message names its first layer over
tolerance (layerwise).  Every artefact comes from the plugin's session fixtures (built once)."""
from __future__ import annotations

import pytest

from albert_ixrt.export import STAGE_FILES

pytestmark = [pytest.mark.conversion, pytest.mark.usefixtures("albert_record_subject")]

STAGES = tuple(STAGE_FILES)


def _entry(manifest: dict, stage: str) -> dict:
    entry = manifest["stages"].get(stage)
    assert entry is not None, f"stage {stage!r} missing from the manifest (stages: {sorted(manifest['stages'])})"
    return entry


@pytest.mark.parametrize("stage", STAGES)
def test_graph_checks(stage, albert_subject_converted, record_property):
    conv = albert_subject_converted   # steps.convert_step: the stages and their graph checks' problems
    entry = _entry(conv.manifest, stage)
    record_property("stage_sha256", entry.get("sha256", ""))
    check = entry.get("graph_check") or {}
    assert check, f"stage {stage!r} carries no graph check in {conv.onnx_dir / 'manifest.json'}"
    problems = [p for p in conv.problems if p.startswith(f"{stage} (")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_matches_torch_fp32(stage, albert_subject_model, albert_subject_converted, albert_subject_feeds,
                                  albert_subject_equivalence, record_property):
    from albert_ixrt.layerwise import first_layer_lines, first_layers_over

    conv = albert_subject_converted
    _entry(conv.manifest, stage)
    mine = [c for c in albert_subject_equivalence.comparisons if c.stage == stage]
    assert mine, f"stage {stage!r} was not compared"
    record_property("worst_abs_error", max(c.worst_abs for c in mine))
    failing = [c for c in mine if not c.passed]
    if failing:  # name the first layer over tolerance, as run's equivalence step does (steps.drift_detail)
        found = first_layers_over(albert_subject_model, conv.stage_files(), albert_subject_feeds, [stage])
        pytest.fail("; ".join(first_layer_lines(found)) + "\n" + "\n".join(c.failure_message() for c in failing)
                    + "\n" + albert_subject_equivalence.table(), pytrace=False)


def test_runner_under_test_matches_torch_fp32(albert_subject, albert_subject_runner, albert_reference_runner,
                                              albert_subject_feeds, record_property):
    from albert_ixrt.verdicts import outputs_match_reference

    shapes, messages = [], []
    for feed in albert_subject_feeds:
        verdict = outputs_match_reference(albert_reference_runner.infer(feed), albert_subject_runner.infer(feed),
                                          feed["attention_mask"], albert_subject.precision, what="runner")
        shapes.append("x".join(map(str, feed["input_ids"].shape)))
        messages.append(f"{shapes[-1]}: {verdict.message}")
        assert verdict.passed, "\n".join(messages)
    record_property("feeds", " ".join(shapes))
    assert len(shapes) == 3 and shapes[1].endswith("x384"), shapes

