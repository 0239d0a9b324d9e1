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
