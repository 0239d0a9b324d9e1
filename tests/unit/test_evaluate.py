"""Evaluation plumbing: length bucketing changes the work, not the answers; files and labels."""
import json

import numpy as np

from albert_ixrt.evaluate import evaluate, plan_batches, run_features
from albert_ixrt.runners import create_runner
from albert_ixrt.squad.features import build_features


def test_plan_batches_covers_every_feature_once(dev_features):
    feats = dev_features[:50]
    for bucket in (True, False):
        plan = plan_batches(feats, 8, bucket)
        seen = [i for idx, _ in plan for i in idx]
        assert sorted(seen) == list(range(50))
        for idx, seq in plan:
            assert seq >= max(feats[i].length for i in idx) and seq <= 384
            assert bucket or seq == 384


def test_bucketing_gives_identical_predictions(tiny_model, dev_examples):
    from albert_ixrt.steps import resolve_tokenizer
    from albert_ixrt.tokenizer import AlbertTokenizer

    tok = AlbertTokenizer(resolve_tokenizer(tiny_model, None))   # the tiny model's own vocabulary
    examples = dev_examples[:60]
    features = build_features(examples, tok)
    runner = create_runner("torch", model=tiny_model, device="cpu")
    a = evaluate(runner, examples, features, batch_size=8, bucket=True, progress=False)
    b = evaluate(runner, examples, features, batch_size=8, bucket=False, progress=False)
    assert a.predictions == b.predictions
    la = run_features(runner, features[:10], 4, True, False)
    lb = run_features(runner, features[:10], 4, False, False)
    for (s1, _), (s2, _), f in zip(la, lb, features[:10]):
        np.testing.assert_allclose(s1[: f.length], s2[: f.length], atol=1e-4)


def test_metrics_json_is_labelled_for_random_weights(tiny_model, tmp_path):
    from albert_ixrt.pipeline import run_acceptance

    report, _ = run_acceptance(profile="tiny", out_dir=tmp_path, progress=False)
    run = tmp_path / "latest"  # the run's own dated folder
    metrics = json.loads((run / "metrics.json").read_text())
    assert "random weights" in metrics["warning"]
    assert set(metrics["scores"]) >= {"exact_match", "f1", "bytemlperf_exact_match", "bytemlperf_f1", "labels"}
    assert "self-test" in report["label"] and "self-test" in (run / "report.md").read_text()
    preds = json.loads((run / "predictions.json").read_text())
    assert len(preds) == metrics["scores"]["questions"] == 12
    assert not list(tmp_path.rglob("*.partial"))


def test_missing_tensorrt_is_reported_before_any_conversion(tiny_model, monkeypatch):
    import pytest

    from albert_ixrt import steps
    from albert_ixrt.errors import BackendUnavailable

    def no_conversion(*_a, **_k):
        raise AssertionError("converted before checking that the backend exists")

    monkeypatch.setattr(steps, "convert_for_backend", no_conversion)
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: nothing to report")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        steps.make_runner("tensorrt", tiny_model, "fp16")


def test_run_judges_the_reference_thresholds_only_on_real_weights_and_the_full_dev_set():
    from types import SimpleNamespace

    from albert_ixrt.config import REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF, SQUAD_DEV_QUESTIONS
    from albert_ixrt.steps import judge_thresholds
    from albert_ixrt.squad.metrics import SquadScores

    def result(em, f1, questions=SQUAD_DEV_QUESTIONS):
        return SimpleNamespace(scores=SquadScores(0, 0, em, f1, questions, questions, 10866))

    real, random = SimpleNamespace(weights="real"), SimpleNamespace(weights="random")
    above = result(REFERENCE_EM_BYTEMLPERF + 0.01, REFERENCE_F1_BYTEMLPERF + 0.01)
    assert judge_thresholds(above, real, False)[0] == "ok"
    status, detail = judge_thresholds(result(REFERENCE_EM_BYTEMLPERF - 0.01, 99.0), real, False)
    assert status == "failed" and list(detail["below"]) == ["bytemlperf_exact_match"]
    assert judge_thresholds(above, random, False)[0] == "skipped"
    assert judge_thresholds(above, real, True)[0] == "skipped"
    assert judge_thresholds(result(99, 99, questions=100), real, False)[0] == "skipped"
