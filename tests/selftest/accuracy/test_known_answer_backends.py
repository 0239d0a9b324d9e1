"""A known-answer model gives the same SQuAD figures through every backend: torch, onnxruntime fp32 and fp16
(export -> simplify -> fuse, which finds nothing to fuse and says so -> fp16) and an emulated TensorRT fp16
engine (tests/support/trt_standin.py, 11.4: strongly typed, built from the trt_fp16 graph).  Its table
lookup is all int64 with sums below 2**53 and its logits are +-10 (exact in fp16), so the predictions
must be identical, not merely close.

Measured on the shared 2-core machine with the 5 % model on the whole dev set: building it and the torch
run 19 s, onnxruntime fp32 14 s (the conversion included), fp16 and the emulated 11.4 engine under 6 s
each -- about 45 s in all, so marked slow.
"""
from __future__ import annotations

import sys

import pytest

pytestmark = [pytest.mark.selftest, pytest.mark.slow]

FIGURES = ("exact_match", "f1", "bytemlperf_exact_match", "bytemlperf_f1")


@pytest.fixture(scope="module")
def ka05(dev_examples, dev_features, albert_tokenizer, tmp_path_factory):
    """(LoadedModel, expected scores) of the 5 % known-answer model."""
    from albert_ixrt.known_answer import build_known_answer
    from albert_ixrt.model import load_model

    path, _, expected = build_known_answer(dev_examples, dev_features, 0.05,
                                           tmp_path_factory.mktemp("ka") / "ka05.pt", pad_id=albert_tokenizer.pad_id)
    return load_model(path), expected


def _evaluate(backend, precision, model, examples, features, **kw):
    from albert_ixrt.evaluate import evaluate
    from albert_ixrt.loaders import make_runner

    with make_runner(backend, model, precision, **kw) as runner:
        result = evaluate(runner, examples, features, batch_size=16, progress=False, model_info=model.describe())
    return result, runner


@pytest.fixture(scope="module")
def torch_result(ka05, dev_examples, dev_features):
    result, _ = _evaluate("torch", "fp32", ka05[0], dev_examples, dev_features)
    assert {k: getattr(result.scores, k) for k in FIGURES} == {k: getattr(ka05[1], k) for k in FIGURES}
    return result


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnxruntime_gives_the_known_answer_models_figures(precision, ka05, torch_result, dev_examples,
                                                           dev_features):
    result, _ = _evaluate("onnxruntime", precision, ka05[0], dev_examples, dev_features, device="cpu")
    assert result.predictions == torch_result.predictions
    assert {k: getattr(result.scores, k) for k in FIGURES} == {k: getattr(torch_result.scores, k) for k in FIGURES}


def test_an_emulated_tensorrt_engine_gives_the_known_answer_models_figures(ka05, torch_result, dev_examples,
                                                                          dev_features, monkeypatch, tmp_path):
    from albert_ixrt.engine import ShapeProfile

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "support"))
    from trt_standin import make_standin

    monkeypatch.setitem(sys.modules, "tensorrt", make_standin("11.4"))
    result, runner = _evaluate("tensorrt", "fp16", ka05[0], dev_examples, dev_features,
                               profile=ShapeProfile.for_feeds([16], 384), cache_dir=tmp_path)
    assert runner.describe()["graph"] == "model.sim.fp16.onnx" and runner.lib.emulated
    assert result.predictions == torch_result.predictions
    assert {k: getattr(result.scores, k) for k in FIGURES} == {k: getattr(torch_result.scores, k) for k in FIGURES}
