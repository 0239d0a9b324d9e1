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
    with pytest.raises(AssetMissingError) as err:
        load_model(tmp_path)
    assert str(err.value).count("\n") == 0 and "no weights (looked for model.safetensors, " \
        "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)" in str(err.value)
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


def _logits(module, feed):
    with torch.inference_mode():
        return module(*feed)


def save_sharded(hf, folder, safe: bool, max_shard_size="200KB"):
    """What ``save_pretrained(max_shard_size=...)`` writes: shards + index.  transformers 5 writes
    safetensors only (``safe_serialization=False`` is ignored), so the ``.bin`` form (transformers 4's,
    still loaded by 5) is written with huggingface_hub's splitter, which names shards as both do."""
    import json as _json

    from huggingface_hub import split_torch_state_dict_into_shards

    if safe:
        hf.save_pretrained(folder, max_shard_size=max_shard_size)
        return
    hf.config.save_pretrained(folder)
    state = {k: v.contiguous() for k, v in hf.state_dict().items()}
    split = split_torch_state_dict_into_shards(state, filename_pattern="pytorch_model{suffix}.bin",
                                               max_shard_size=max_shard_size)
    for filename, names in split.filename_to_tensors.items():
        torch.save({n: state[n] for n in names}, folder / filename)
    (folder / "pytorch_model.bin.index.json").write_text(
        _json.dumps({"metadata": split.metadata, "weight_map": split.tensor_to_filename}))


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_sharded_checkpoint_loads_and_its_hash_covers_every_shard(tmp_path, safe, tiny_model):
    """Shards + an index (save_pretrained above max_shard_size) load as the original, and the recorded
    hash changes when any shard changes (the last shard rewritten: same tensor names, other values)."""
    from albert_ixrt.model import find_checkpoint

    tiny = tiny_model
    save_sharded(tiny.module.hf, tmp_path, safe)
    index = tmp_path / ("model.safetensors.index.json" if safe else "pytorch_model.bin.index.json")
    checkpoint = find_checkpoint(tmp_path)
    assert checkpoint.index == index and len(checkpoint.files) >= 2
    assert [f.name for f in checkpoint.files] == sorted(f.name for f in checkpoint.files)
    loaded = load_model(tmp_path)
    assert loaded.kind == "directory" and loaded.weights == "real"
    ids = torch.randint(5, 200, (2, 16))
    feed = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    for x, y in zip(_logits(tiny.module, feed), _logits(loaded.module, feed)):
        torch.testing.assert_close(x, y)
    # every shard is in the hash: rewriting the last one (the same tensors, other values) changes it
    before = checkpoint.sha256()
    last = checkpoint.files[-1]
    if safe:
        from safetensors.torch import load_file, save_file

        tensors = load_file(last)
        save_file({k: v + 1 for k, v in tensors.items()}, last, metadata={"format": "pt"})
    else:
        tensors = torch.load(last, weights_only=True)
        torch.save({k: v + 1 for k, v in tensors.items()}, last)
    assert find_checkpoint(tmp_path).sha256() != before


def test_index_naming_a_missing_shard_is_one_line(tmp_path, tiny_model):
    tiny = tiny_model
    tiny.module.hf.save_pretrained(tmp_path, max_shard_size="200KB")
    shard = sorted(tmp_path.glob("model-*-of-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(InputFileError) as err:
        load_model(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "model.safetensors.index.json"))
    assert f"names shard {shard.name}, which is not in {tmp_path}" in msg
    (tmp_path / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(InputFileError, match="model.safetensors.index.json: not a readable shard index"):
        load_model(tmp_path)
