"""The torch reference runner: each sequence sees only its own mask, whatever the batch."""
import numpy as np
import pytest

from albert_ixrt.runners import create_runner
from albert_ixrt.squad.features import stack_batch


@pytest.fixture(scope="module")
def tiny_runner(tiny_model):
    return create_runner("torch", model=tiny_model, precision="fp32", device="cpu")


def _feeds_from(features, vocab):
    feed = stack_batch(features)
    feed["input_ids"] = np.minimum(feed["input_ids"], vocab - 1)
    return feed


def test_results_do_not_depend_on_batch_or_neighbours(tiny_runner, dev_features):
    # Three sequences of different lengths, alone and together, in two orders.
    feats = sorted(dev_features[:40], key=lambda f: f.length)[::13][:3]
    assert len({f.length for f in feats}) == 3
    batch = _feeds_from(feats, 1000)
    start, end = tiny_runner.infer(batch)
    rev_start, _ = tiny_runner.infer({k: v[::-1].copy() for k, v in batch.items()})
    for i, f in enumerate(feats):
        alone_s, alone_e = tiny_runner.infer({k: v[i:i + 1] for k, v in batch.items()})
        n = f.length
        np.testing.assert_allclose(start[i, :n], alone_s[0, :n], atol=1e-5)
        np.testing.assert_allclose(end[i, :n], alone_e[0, :n], atol=1e-5)
        np.testing.assert_allclose(rev_start[len(feats) - 1 - i, :n], alone_s[0, :n], atol=1e-5)
        # Cropping the padding away changes nothing either.
        cropped_s, _ = tiny_runner.infer({k: v[i:i + 1, :n] for k, v in batch.items()})
        np.testing.assert_allclose(cropped_s[0], alone_s[0, :n], atol=1e-5)


@pytest.mark.parametrize("precision, atol", [("bf16", 0.1), ("fp16", 0.05)])
def test_reduced_precision_stays_close(tiny_model, tiny_runner, dev_features, precision, atol):
    feed = _feeds_from(dev_features[:4], 1000)
    ref_s, _ = tiny_runner.infer(feed)
    low = create_runner("torch", model=tiny_model, precision=precision, device="cpu")
    got_s, _ = low.infer(feed)
    assert got_s.dtype == np.float32
    assert np.abs(got_s - ref_s).max() < atol
    assert low.describe()["precision"] == precision


def test_unknown_backend_and_precision_are_reported():
    from albert_ixrt.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="unknown backend"):
        create_runner("nope")
    with pytest.raises(BackendUnavailable, match="precision 'int3'"):
        create_runner("torch", model=object(), precision="int3")


# ------------------------------------------------------------------------------------------------
# The fast path: SDPA attention on the runner's own copy, compiled shape buckets.
# ------------------------------------------------------------------------------------------------
def _ragged_feed(rows=3, seq=50, vocab=1000):
    ids = np.random.default_rng(0).integers(5, vocab, (rows, seq))
    mask = np.ones_like(ids)
    for r in range(1, rows):
        mask[r, seq - 13 * r:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _max_diff(a, b, mask):
    return max(float(np.abs(x - y)[mask > 0].max()) for x, y in zip(a, b))


def test_buckets_round_up_to_the_configured_sizes():
    from albert_ixrt.config import COMPILE_BATCH_BUCKETS, COMPILE_SEQ_MULTIPLE
    from albert_ixrt.runners.torch_runner import bucket_batch, bucket_seq

    assert [bucket_batch(b) for b in (1, 2, 3, 5, 100, 256, 257)] == [1, 2, 4, 8, 128, 256, 512]
    assert [bucket_seq(s) for s in (1, 128, 129, 183, 384)] == [128, 128, 256, 256, 384]
    assert COMPILE_SEQ_MULTIPLE == 128 and COMPILE_BATCH_BUCKETS[-1] == 256
    with pytest.raises(ValueError):
        bucket_batch(0)
    with pytest.raises(ValueError):
        bucket_seq(0)


def test_sdpa_runner_matches_eager_and_leaves_the_export_model_eager(tiny_model):
    feed = _ragged_feed()
    sdpa = create_runner("torch", model=tiny_model, device="cpu")
    eager = create_runner("torch", model=tiny_model, device="cpu", attention="eager")
    assert sdpa.describe()["attention"] == "sdpa" and eager.describe()["attention"] == "eager"
    assert sdpa.module.hf.config._attn_implementation == "sdpa"
    assert tiny_model.module.hf.config._attn_implementation == "eager"      # what export needs
    assert _max_diff(sdpa.infer(feed), eager.infer(feed), feed["attention_mask"]) < 1e-5


def test_compiled_runner_pads_to_buckets_and_reuses_graphs(tiny_model, monkeypatch):
    # backend "eager": dynamo traces and guards on shapes like inductor, without code generation.
    ref = create_runner("torch", model=tiny_model, device="cpu")
    run = create_runner("torch", model=tiny_model, device="cpu", compile=True, compile_backend="eager")
    assert run.describe()["backend"] == "torch.compile" and run.describe()["compile_mode"] == "default"
    feed = _ragged_feed(3, 50)
    start, end = run.infer(feed)
    assert start.shape == end.shape == (3, 50)                         # cut back to the request
    assert _max_diff((start, end), ref.infer(feed), feed["attention_mask"]) < 1e-5
    assert run.describe()["compiled_shapes"] == [(4, 128)]
    run.infer(_ragged_feed(4, 60))                                     # same bucket: no new graph
    assert run.describe()["compiled_shapes"] == [(4, 128)]
    run.infer(_ragged_feed(5, 130))
    assert run.describe()["compiled_shapes"] == [(4, 128), (8, 256)]
    assert run.describe()["compile_seconds"] > 0
    assert run.shapes_for({(3, 50), (4, 60)}) == {(4, 128)} and ref.shapes_for({(3, 50)}) == {(3, 50)}

    # Planted bad: padding positions left unmasked change the answers, and the check sees it.
    def unmasked_pad(tensors):
        import torch

        return tuple(torch.nn.functional.pad(x, (0, 78), value=1) for x in tensors)
    monkeypatch.setattr(run, "_pad_to_bucket", unmasked_pad)
    assert _max_diff(run.infer(feed), ref.infer(feed), feed["attention_mask"]) > 1e-3


def test_compile_options_are_checked(tiny_model):
    from albert_ixrt.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="compile mode 'fastest'"):
        create_runner("torch", model=tiny_model, device="cpu", compile=True, compile_mode="fastest")
    with pytest.raises(BackendUnavailable, match="attention 'flash'"):
        create_runner("torch", model=tiny_model, device="cpu", attention="flash")


def test_compiled_evaluation_reports_compile_apart_and_keeps_the_answers(tiny_model, dev_examples):
    from albert_ixrt.evaluate import evaluate
    from albert_ixrt.loaders import resolve_tokenizer
    from albert_ixrt.squad.features import build_features
    from albert_ixrt.tokenizer import AlbertTokenizer

    tok = AlbertTokenizer(resolve_tokenizer(tiny_model, None))
    examples = dev_examples[:20]
    features = build_features(examples, tok)
    plain = evaluate(create_runner("torch", model=tiny_model, device="cpu"), examples, features, batch_size=8,
                     progress=False)
    compiled = evaluate(create_runner("torch", model=tiny_model, device="cpu", compile=True, compile_backend="eager"),
                        examples, features, batch_size=8, progress=False)
    assert compiled.predictions == plain.predictions
    assert "compile_s" not in plain.timings and plain.timings["inference_s"] > 0
    t = compiled.timings
    assert t["compile_s"] > 0 and 1 <= t["compiled_shapes"] <= 3 and t["inference_s"] > 0
    assert compiled.runner["compiled_shapes"] and len(compiled.runner["compiled_shapes"]) == t["compiled_shapes"]


def test_compile_mode_without_compile_is_one_clear_line(squad_path, tmp_path, capsys):
    from albert_ixrt.cli import main

    assert main(["evaluate", "--model", "tiny", "--squad", str(squad_path), "--limit", "2", "--quiet",
                 "--device", "cpu", "--compile-mode", "max-autotune", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--compile-mode needs --compile" in err and "Traceback" not in err
    assert main(["bench", "--model", "tiny", "--compile", "--compile-mode", "fastest"]) == 2  # argparse's choices
    assert "invalid choice: 'fastest'" in capsys.readouterr().err
