"""Model loading: every source, and one clear message for every way it can be missing."""
import json
import time

import pytest
import torch

from albert_ixrt.errors import AssetMissingError, InputFileError
from albert_ixrt.model import TINY_CONFIG, load_model


def test_tiny_profile_is_seeded_and_labelled(tiny_model):
    again = load_model("tiny")
    a = dict(tiny_model.module.named_parameters())
    b = dict(again.module.named_parameters())
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert tiny_model.weights == "random" and tiny_model.label == "random weights"
    assert tiny_model.describe()["layers"] == 2


def test_shape_twin_needs_random_weights_and_is_labelled(twin_config_path):
    with pytest.raises(AssetMissingError, match="--random-weights"):
        load_model(twin_config_path)
    twin = load_model(twin_config_path, random_weights=True)
    assert twin.weights == "random" and twin.config["hidden_size"] == 768 and twin.config["num_hidden_layers"] == 12


def test_hub_id_offline_fails_fast_with_instructions():
    t = time.perf_counter()
    with pytest.raises(AssetMissingError) as err:
        load_model("madlag/albert-base-v2-squad", offline=True)
    assert time.perf_counter() - t < 20
    msg = str(err.value)
    assert "madlag/albert-base-v2-squad" in msg and "--model DIR" in msg


def test_local_directory_round_trip(tmp_path):
    """A real from_pretrained load: save the tiny model's HF checkpoint, load it as real weights."""
    tiny = load_model("tiny")
    tiny.module.hf.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.kind == "directory" and loaded.weights == "real"
    ids = torch.randint(5, 200, (2, 16))
    feed = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    with torch.inference_mode():
        for x, y in zip(tiny.module(*feed), loaded.module(*feed)):
            torch.testing.assert_close(x, y)


def test_directory_without_weights_or_config(tmp_path):
    with pytest.raises(AssetMissingError, match="has no config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    with pytest.raises(AssetMissingError, match="no weights .*model.safetensors or pytorch_model.bin"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(InputFileError, match="model.safetensors: cannot load the weights"):
        load_model(tmp_path)


def test_torchscript_in_bytemlperf_form(tmp_path, tiny_model):
    ids = torch.randint(5, 200, (1, 16))
    feed = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    traced = torch.jit.trace(tiny_model.module, feed, strict=False)
    path = tmp_path / "albert.pt"
    traced.save(str(path))
    loaded = load_model(path)
    assert loaded.kind == "torchscript" and loaded.weights == "real"
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(*feed)[0], tiny_model.module(*feed)[0])


def test_torchscript_with_wrong_inputs_or_corrupt_file(tmp_path):
    class OneInput(torch.nn.Module):
        def forward(self, x):
            return x.float(), x.float()

    path = tmp_path / "wrong.pt"
    torch.jit.script(OneInput()).save(str(path))
    with pytest.raises(InputFileError, match="wrong.pt: TorchScript model does not take"):
        load_model(path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputFileError, match="bad.pt: not a loadable TorchScript archive"):
        load_model(bad)


def test_nonsense_spec():
    with pytest.raises(AssetMissingError, match="neither a hub id"):
        load_model("/no/such/thing")


def test_state_dict_pickles_are_loaded_weights_only(tmp_path):
    """A pytorch_model.bin that carries code is refused, and the code never runs."""
    import os

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    torch.save({"weight": Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(InputFileError, match="pytorch_model.bin: refused: the pickle holds objects other than tensors"):
        load_model(tmp_path)
    assert not (tmp_path / "PWNED").exists()
