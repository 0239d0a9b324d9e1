"""Known-answer models and the verdicts on data the project ships (the self-test sample and
tokenizer), so this runs without the dev set; tests/selftest/accuracy/test_known_answer.py does the full
dev-set proof."""
import math
from types import SimpleNamespace

import pytest

from albert_ixrt.config import MLPERF_F1_RATIO, REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF, SQUAD_DEV_QUESTIONS
from albert_ixrt.squad.metrics import SquadScores
from albert_ixrt.verdicts import mlperf_ratio, reference_thresholds


def _scores(em, f1, questions=SQUAD_DEV_QUESTIONS):
    return SquadScores(em + 2, f1 + 2, em, f1, questions, questions, 10866)


def test_threshold_verdict_both_ways_with_figures_thresholds_and_margins():
    on_the_line = reference_thresholds(_scores(REFERENCE_EM_BYTEMLPERF, REFERENCE_F1_BYTEMLPERF))
    assert on_the_line.passed and on_the_line.message.startswith("PASS")
    low_f1 = reference_thresholds(_scores(90.0, REFERENCE_F1_BYTEMLPERF - 0.001))
    assert not low_f1.passed and list(low_f1.detail["below"]) == ["bytemlperf_f1"]
    for text in ("FAIL", "EM 90.00, needs >= 80.18 (margin +9.820)", "F1 87.569, needs >= 87.57 (margin -0.001)",
                 "official SQuAD v1.1 EM 92.00"):
        assert text in low_f1.message, (text, low_f1.message)
    assert "EM 80.18, needs >= 80.18 (margin +0.000), F1 87.57, needs >= 87.57" in on_the_line.message
    # the example: a failing figure and what it needs, side by side
    assert "EM 72.69, needs >= 80.18 (margin -7.490)" in reference_thresholds(_scores(72.69, 90.0)).message
    assert not reference_thresholds(_scores(float("nan"), 99.0)).passed


def test_mlperf_ratio_verdict_both_ways():
    assert mlperf_ratio(MLPERF_F1_RATIO * 90.0, 90.0).passed
    bad = mlperf_ratio(89.0, 90.0)
    assert not bad.passed and "ratio 0.9889, needs >= 0.99 (margin -0.0011)" in bad.message
    assert not mlperf_ratio(89.0, 0.0).passed and math.isnan(mlperf_ratio(89.0, 0.0).detail["ratio"])


def test_known_answer_models_are_judged_like_real_weights(tmp_path):
    from albert_ixrt.acceptance import checks
    from albert_ixrt.acceptance.options import Options
    from albert_ixrt.acceptance.plan import make_plan
    from albert_ixrt.acceptance.session import NotJudged, Session

    (tmp_path / "ka.pt").write_bytes(b"")

    def judge(scores, weights="known-answer"):
        session = Session(make_plan(Options(model=str(tmp_path / "ka.pt"))))
        session._built["subject"] = SimpleNamespace(model=SimpleNamespace(weights=weights, label=weights))
        session._built["evaluation"] = SimpleNamespace(scores=scores)
        return {i.name: i for i in checks.thresholds_step(session).items}

    assert {i.status for i in judge(_scores(90, 90)).values()} == {"passed"}
    failing = judge(_scores(90, 80))["bytemlperf_f1"]
    assert failing.status == "failed" and "margin -7.570" in failing.message
    with pytest.raises(NotJudged):
        judge(_scores(90, 90), weights="random")


@pytest.fixture(scope="module")
def sample():
    from albert_ixrt.selftest import selftest_spiece, squad_sample_path
    from albert_ixrt.squad.data import load_squad
    from albert_ixrt.squad.features import build_features
    from albert_ixrt.tokenizer import AlbertTokenizer

    examples = load_squad(squad_sample_path())
    return examples, build_features(examples, AlbertTokenizer(selftest_spiece()))


def _evaluate(model, examples, features, batch_size, bucket):
    from albert_ixrt.evaluate import evaluate
    from albert_ixrt.loaders import make_runner

    with make_runner("torch", model, "fp32") as runner:
        return evaluate(runner, examples, features, batch_size=batch_size, bucket=bucket, progress=False,
                        model_info=model.describe())


@pytest.mark.parametrize("wrong", [0.0, 0.5])
def test_known_answer_model_scores_what_its_table_says_through_every_batching(wrong, sample, tmp_path):
    from albert_ixrt.known_answer import build_known_answer
    from albert_ixrt.model import load_model
    from albert_ixrt.squad.metrics import exact_match_score, f1_score

    examples, features = sample
    path, table, expected = build_known_answer(examples, features, wrong, tmp_path / "ka.pt")
    assert table.meta["wrong_questions"] == round(wrong * len(examples))
    model = load_model(path)
    assert model.weights == "known-answer" and model.label == "known-answer model"
    assert model.describe()["weights"] == "known-answer"
    runs = [_evaluate(model, examples, features, bs, bucket) for bs, bucket in ((1, True), (1, False), (5, True))]
    for r in runs:
        assert r.predictions == runs[0].predictions
        assert (r.scores.exact_match, r.scores.f1) == (expected.exact_match, expected.f1)
    for ex in examples:
        pred = runs[0].predictions[ex.qid]
        best = max(f1_score(pred, g) for g in ex.answer_texts)
        if ex.qid in table.wrong_qids:
            assert pred and best == 0.0 and not any(exact_match_score(pred, g) for g in ex.answer_texts), pred
        else:
            assert best > 0.5, (pred, ex.answer_texts)
    if wrong == 0.0:
        assert expected.exact_match > 90.0


def test_unknown_rows_get_flat_logits(sample, tmp_path):
    import torch

    from albert_ixrt.known_answer import LOW, build_table, scripted_module

    examples, features = sample
    module = scripted_module(build_table(examples, features, 0.0))
    ids = torch.tensor(features[0].input_ids[None, :])     # a copy: the fixture's arrays stay as they are
    start, end = module(ids, torch.ones_like(ids), torch.zeros_like(ids))
    assert start.max().item() > LOW and int(start.argmax()) == features[0].start_position
    ids[0, 2] += 1
    start, end = module(ids, torch.ones_like(ids), torch.zeros_like(ids))
    assert start.max().item() == LOW and end.max().item() == LOW
    longer = torch.cat([torch.tensor(features[0].input_ids[None, :]), torch.zeros((1, 16), dtype=torch.long)], 1)
    start, _ = module(longer, torch.ones_like(longer), torch.zeros_like(longer))    # extra padding: still known
    assert start.shape == (1, longer.shape[1]) and int(start.argmax()) == features[0].start_position


def _export(module, dest):
    """torch.onnx.export as export.py calls it (TorchScript exporter, opset 17, dynamic batch and length)."""
    import torch

    from albert_ixrt.export import DEFAULT_OPSET, export_inputs
    from albert_ixrt.model import INPUT_NAMES, OUTPUT_NAMES

    torch.onnx.export(module, export_inputs(), str(dest), input_names=list(INPUT_NAMES),
                      output_names=list(OUTPUT_NAMES), opset_version=DEFAULT_OPSET, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in (*INPUT_NAMES, *OUTPUT_NAMES)})


def _torch_and_onnxruntime(table, features, tmp_path):
    """[(torch logits, onnxruntime logits)] of the scripted module and its ONNX export, on the sample's
    first four rows (the last one changed, so unknown) at their own length, padded longer and cut short."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from albert_ixrt.known_answer import scripted_module
    from albert_ixrt.model import INPUT_NAMES, OUTPUT_NAMES

    module = scripted_module(table)
    _export(module, tmp_path / "ka.onnx")
    session = ort.InferenceSession(str(tmp_path / "ka.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(INPUT_NAMES)
    length = max(f.length for f in features[:4])
    rows = np.stack([f.input_ids[:length] for f in features[:4]])
    rows[3, 1] += 1
    out = []
    for ids in (rows, np.concatenate([rows, np.zeros((4, 16), np.int64)], 1), rows[:, :length // 2]):
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        expected = [t.numpy() for t in module(*(torch.from_numpy(feed[n]) for n in INPUT_NAMES))]
        out.append((expected, session.run(list(OUTPUT_NAMES), feed)))
    return out


def test_the_scripted_module_exports_to_onnx_and_answers_the_same(sample, tmp_path):
    """The exporter export.py uses takes the scripted lookup, keeps the three inputs, and onnxruntime gives
    bit-identical logits on known rows, an unknown row, longer padding and a cut row.  Planted bad: hash
    weights of 38 bits (sums above 2**53, which onnxruntime's int64 ReduceSum rounds) lose known rows."""
    import numpy as np

    from albert_ixrt import known_answer
    from albert_ixrt.known_answer import HIGH, build_table

    examples, features = sample
    # ids near the top of ALBERT's vocabulary (30,000), as real rows have: the self-test vocabulary is small
    features = [type(f)(**{**f.__dict__, "input_ids": np.where(f.input_ids > 0, f.input_ids + 29_000, 0)})
                for f in features]
    answered = []
    for expected, got in _torch_and_onnxruntime(build_table(examples, features, 0.5), features, tmp_path):
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(g, e)
        answered.append(int((got[0].max(1) == HIGH).sum()))
    assert answered[0] == answered[1] >= 2 and answered[2] == 0   # known rows answered; cut rows are not
    known_answer.WEIGHT_BITS, saved = 38, known_answer.WEIGHT_BITS
    try:
        planted = _torch_and_onnxruntime(build_table(examples, features, 0.5), features, tmp_path)
    finally:
        known_answer.WEIGHT_BITS = saved
    expected, got = planted[0]
    assert (expected[0].max(1) == HIGH).sum() > (got[0].max(1) == HIGH).sum()


def test_the_old_searchsorted_lookup_has_no_onnx_form(tmp_path):
    import torch

    class Searchsorted(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            pos = torch.searchsorted(torch.arange(4), input_ids.sum(1)).float()
            return pos[:, None] + attention_mask + token_type_ids, pos[:, None] + attention_mask
    with pytest.raises(Exception, match="searchsorted"):
        _export(torch.jit.script(Searchsorted()), tmp_path / "old.onnx")


@pytest.mark.parametrize("rows", [1, 2, 5, 99, 100, 101, 10_824])
def test_the_two_step_lookup_finds_every_key_and_nothing_else(rows):
    """lookup_blocks as the scripted module uses it (block = count of block-first keys <= hash; then the key
    within the block): every key is found at its index, hashes between and beyond keys are not."""
    import numpy as np

    from albert_ixrt.known_answer import lookup_blocks

    keys = np.sort(np.random.default_rng(rows).choice(2**40, size=rows, replace=False).astype(np.int64) * 2 + 1)
    padded, firsts, stride = lookup_blocks(keys)
    assert len(padded) % stride == 0 and len(padded) - rows < stride and stride * stride >= rows
    queries = np.concatenate([keys, keys + 1, [0, keys[-1] + 2]])                # keys, then odd-free misses

    base = (queries[:, None] >= firsts[None, :]).sum(1) * stride
    match = padded[base[:, None] + np.arange(stride)[None, :]] == queries[:, None]
    pos = base + (match * np.arange(stride)).sum(1)
    found = match.sum(1) > 0
    assert found[:rows].all() and (pos[:rows] == np.arange(rows)).all()
    assert not found[rows:].any() and (pos < rows).all()


def test_hash_sums_stay_exact_in_float64():
    """Every sum a table can make stays below 2**53 (ids < 2**15, weights < 2**29, <= 512 positions); ids or
    rows beyond those bounds are refused with one line."""
    from albert_ixrt.known_answer import (EXACT_BITS, ID_BITS, WEIGHT_BITS, WIDTH_BITS, KnownAnswerError,
                                          check_exact_hashes)

    assert (2**ID_BITS - 1) * (2**WEIGHT_BITS - 1) * 2**WIDTH_BITS < 2**EXACT_BITS
    check_exact_hashes(30_000, 384)
    for max_id, width in ((2**15, 384), (100, 1024)):
        with pytest.raises(KnownAnswerError, match="above 2\\*\\*53"):
            check_exact_hashes(max_id, width)


def test_a_malformed_label_is_one_clear_error(tmp_path):
    import torch

    from albert_ixrt.errors import InputFileError
    from albert_ixrt.model import KNOWN_ANSWER_EXTRA_FILE, load_model

    class Flat(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return input_ids.float(), input_ids.float()

    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(Flat()), str(path), _extra_files={KNOWN_ANSWER_EXTRA_FILE: "not json"})
    with pytest.raises(InputFileError, match="albert_ixrt.json label is not a JSON object"):
        load_model(path)
    torch.jit.save(torch.jit.script(Flat()), str(path))
    assert load_model(path).weights == "real"


def test_bad_fraction_and_file_name_are_one_line_errors(tmp_path, capsys):
    from albert_ixrt.cli import main

    assert main(["known-answer", "--wrong", "1.5", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 2
    assert "--wrong must be a fraction in [0, 1], got 1.5" in capsys.readouterr().err
    assert main(["known-answer", "--wrong", "0.1", "--out", str(tmp_path / "m.onnx"), "--quiet"]) == 2
    assert "m.onnx: a TorchScript file name must end in .pt" in capsys.readouterr().err
    assert main(["known-answer", "--wrong", "0.1", "--seed", "-1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 2
    assert "--seed must be >= 0, got -1" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
