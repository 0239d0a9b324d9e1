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
    from albert_ixrt.loaders import resolve_tokenizer
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


def test_metrics_json_is_labelled_for_random_weights(tmp_path):
    from albert_ixrt.acceptance.options import Options
    from albert_ixrt.pipeline import run_acceptance

    rec = run_acceptance(Options(out=str(tmp_path), quiet=True, skip=("convert", "perf")))
    run = tmp_path / "latest"  # the run's own dated folder
    metrics = json.loads((run / "metrics.json").read_text())
    assert "random weights" in metrics["warning"]
    assert set(metrics["scores"]) >= {"exact_match", "f1", "bytemlperf_exact_match", "bytemlperf_f1", "labels"}
    assert "self-test" in rec["verdict"]["line"] and "self-test" in (run / "report.md").read_text()
    preds = json.loads((run / "predictions.json").read_text())
    assert len(preds) == metrics["scores"]["questions"] == 28          # the shipped self-test sample
    assert not list(tmp_path.rglob("*.partial"))


def test_missing_tensorrt_is_reported_before_any_conversion(tiny_model, monkeypatch):
    import pytest

    from albert_ixrt import loaders
    from albert_ixrt.errors import BackendUnavailable

    def no_conversion(*_a, **_k):
        raise AssertionError("converted before checking that the backend exists")

    monkeypatch.setattr(loaders, "converted", no_conversion)
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: the missing-TensorRT message cannot be shown")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        loaders.make_runner("tensorrt", tiny_model, "fp16")


def test_the_thresholds_are_judged_only_on_real_weights_and_the_full_dev_set(tmp_path):
    """Each threshold its own verdict, both ways; random weights, --limit and a partial dev set are not judged."""
    from types import SimpleNamespace

    import pytest

    from albert_ixrt.acceptance import checks
    from albert_ixrt.acceptance.options import Options
    from albert_ixrt.acceptance.plan import make_plan
    from albert_ixrt.acceptance.session import NotJudged, Session
    from albert_ixrt.config import REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF, SQUAD_DEV_QUESTIONS
    from albert_ixrt.squad.metrics import SquadScores

    (tmp_path / "m.pt").write_bytes(b"")

    def judged(em, f1, weights="real", questions=SQUAD_DEV_QUESTIONS, **options):
        session = Session(make_plan(Options(model=str(tmp_path / "m.pt"), **options)))
        session._built["subject"] = SimpleNamespace(model=SimpleNamespace(weights=weights, label=f"{weights} weights"))
        session._built["evaluation"] = SimpleNamespace(scores=SquadScores(0, 0, em, f1, questions, questions, 10866))
        return {i.name: i.status for i in checks.thresholds_step(session).items}

    above = (REFERENCE_EM_BYTEMLPERF + 0.01, REFERENCE_F1_BYTEMLPERF + 0.01)
    assert judged(*above) == {"bytemlperf_exact_match": "passed", "bytemlperf_f1": "passed",
                              "official_f1_ratio": "passed"}
    assert judged(REFERENCE_EM_BYTEMLPERF - 0.01, 99.0) == {
        "bytemlperf_exact_match": "failed", "bytemlperf_f1": "passed", "official_f1_ratio": "passed"}
    for case in ({"weights": "random"}, {"limit": 50}, {"questions": 100}):
        with pytest.raises(NotJudged):
            judged(*above, **case)
