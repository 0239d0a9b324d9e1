"""The acceptance session's own rules, each both ways: artefacts built once (a failure kept and reported
by every step that needs it), the sign-off rule for what cannot be judged (a named subject fails, the
self-test or --allow-skips does not), an fp16 subject's runner built from the fp16 graph, a runner that
returns NaN refused by name."""
from __future__ import annotations

import numpy as np
import pytest

from albert_ixrt.acceptance.options import Options
from albert_ixrt.acceptance.plan import make_plan
from albert_ixrt.acceptance.session import CannotJudge, NotJudged, Session, classify
from albert_ixrt.errors import AssetMissingError, BackendUnavailable, InputFileError


def test_what_cannot_be_judged_fails_a_named_subject_and_skips_otherwise():
    named, allowed, default = (make_plan(Options(model="tiny")), make_plan(Options(model="tiny", allow_skips=True)),
                               make_plan(Options()))
    for exc in (BackendUnavailable("tensorrt", "no module"), AssetMissingError("no dev set"), CannotJudge("xdist")):
        assert classify(exc, named) == "failed"
        assert classify(exc, allowed) == classify(exc, default) == "not judged"
    assert classify(NotJudged("--limit"), named) == "not judged"          # deliberate: NOT SIGNED OFF, not a failure
    assert classify(InputFileError("w.bin", "truncated"), default) == "failed"   # bad weights are bad, named or not
    assert classify(RuntimeError("bug"), default) == "failed"


def test_an_artefact_is_built_once_and_its_failure_is_kept(monkeypatch):
    calls = []

    def broken(self):
        calls.append(1)
        raise BackendUnavailable("onnxruntime", "planted: no provider")

    monkeypatch.setattr(Session, "_build_runner", broken)
    with Session(make_plan(Options(model="tiny", backend="onnxruntime"))) as session:
        for _ in range(2):
            with pytest.raises(BackendUnavailable):
                session.artefact("runner")
        item = session.step("equivalence").item("runner")
        assert item.status == "failed" and item.message == "planted: no provider"
        assert session.step("equivalence").item("fused").status == "passed"   # the stages are judged all the same
    assert calls == [1]


def test_a_stage_with_a_graph_problem_fails_its_graph_check_and_only_that_stage():
    from albert_ixrt.acceptance.checks import convert_step

    with Session(make_plan(Options(model="tiny"))) as session:
        clean = convert_step(session)
        out, manifest, problems = session.artefact("conversion")
        session._built["conversion"] = (out, manifest, [*problems, "fused (onnxruntime): planted: an op it cannot run"])
        planted = convert_step(session)
    assert clean.status == "passed" and {i.status for i in clean.items} == {"passed"}
    assert planted.status == "failed" and planted.item("simplified").status == "passed"
    assert planted.item("fused").status == "failed" and "planted: an op it cannot run" in planted.item("fused").message


@pytest.mark.parametrize("planted", [False, True], ids=["fp16-graph", "planted-fp32-graph"])
def test_an_fp16_subjects_runner_runs_the_fp16_graph(planted, monkeypatch):
    """onnxruntime fp16: the runner under test must run model.fused.fp16.onnx; a planted bug handing it the
    fp32 graph makes its equivalence row fail, naming the precision, instead of judging the wrong graph."""
    import albert_ixrt.engine_input as engine_input

    if planted:
        real = engine_input.engine_graph
        monkeypatch.setattr(engine_input, "engine_graph", lambda m, out, b, p: real(m, out, b, "fp32"))
    with Session(make_plan(Options(model="tiny", backend="onnxruntime", precision="fp16"))) as session:
        item = session.step("equivalence").item("runner")
        if planted:
            assert item.status == "failed" and "precision fp16 asked for, but this graph holds fp32" in item.message
        else:
            assert item.status == "passed", item.message
            assert session.artefact("runner").describe()["onnx"].endswith("model.fused.fp16.onnx")


class NaNRunner:
    name, precision = "planted", "fp16"

    def __init__(self, bad_feature: int | None):
        self.bad, self.seen = bad_feature, 0

    def infer(self, feed):
        batch, seq = feed["input_ids"].shape
        out = np.zeros((batch, seq), np.float32)
        if self.bad is not None and self.seen <= self.bad < self.seen + batch:
            out[self.bad - self.seen, 0] = np.nan
        self.seen += batch
        return out, out.copy()

    def describe(self):
        return {"backend": self.name, "precision": self.precision}


def test_evaluate_refuses_non_finite_logits_naming_how_many():
    from albert_ixrt.evaluate import NonFiniteLogits, run_features
    from albert_ixrt.loaders import load_tokenizer, prepare_data
    from albert_ixrt.model import load_model
    from albert_ixrt.selftest import squad_sample_path

    tokenizer = load_tokenizer(load_model("tiny"), None)
    _, features = prepare_data(squad_sample_path(), tokenizer, limit=6, progress=False)
    assert len(run_features(NaNRunner(None), features, 4, bucket=False, progress=False)) == len(features)
    with pytest.raises(NonFiniteLogits, match=r"returned 2 non-finite \(NaN/Inf\) logits on real tokens, first in "
                                              r"feature 5: refusing to score them"):
        run_features(NaNRunner(5), features, 4, bucket=False, progress=False)
