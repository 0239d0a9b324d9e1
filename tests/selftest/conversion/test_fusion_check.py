"""convert checks the fused-op counts the config implies: passes on the installed stack, fails in one
line on a stack that fuses less (a faked onnxruntime 1.30), and layer 0's attention fuses too."""
from __future__ import annotations

import json

import pytest

from albert_ixrt import cli, fusion
from albert_ixrt.config import ONNXRUNTIME_FLOOR, expected_fused_ops
from albert_ixrt.export import MANIFEST_NAME, STAGE_FILES, convert
from albert_ixrt.fusion import FusionCheckError

pytestmark = pytest.mark.selftest


def test_the_installed_stack_fuses_what_the_config_implies(twin_converted, twin_model, tiny_converted, tiny_model):
    for (_, manifest), model in ((twin_converted, twin_model), (tiny_converted, tiny_model)):
        fused = manifest["stages"]["fused"]
        expected = expected_fused_ops(model.config)
        assert fused["settings"]["expected_fused_ops"] == expected
        assert {op: fused["fused_ops"].get(op) for op in expected} == expected
        assert fused["attention_operand_swaps"] == 1  # layer 0 only


def fake_old_onnxruntime(monkeypatch, version="1.30.0"):
    """onnxruntime 1.30 on a transformers-5 export: the attention matcher finds nothing."""
    import onnxruntime

    def matcher_that_fuses_nothing(base):
        class Unmatched(base):
            def fuse(self, node, input_name_to_nodes, output_name_to_node):
                return None
        return Unmatched

    monkeypatch.setattr(onnxruntime, "__version__", version)
    monkeypatch.setattr(fusion, "_attention_fusion_class", matcher_that_fuses_nothing)


def test_a_stack_that_fuses_no_attention_fails_convert_in_one_line(tmp_path, monkeypatch, capsys):
    fake_old_onnxruntime(monkeypatch)
    code = cli.main(["convert", "--model", "tiny", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0, err
    assert "onnxruntime 1.30.0 fused Attention 0 of 2" in err and f"onnxruntime>={ONNXRUNTIME_FLOOR}" in err
    assert not (tmp_path / STAGE_FILES["fused"]).exists()
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["complete"] is False


def test_without_the_layer0_retry_attention_fuses_in_all_but_one_layer(tmp_path, tiny_model, monkeypatch):
    """The library's FusionAttention alone leaves layer 0 unfused: the check catches it."""
    monkeypatch.setattr(fusion, "_attention_fusion_class", lambda base: base)
    with pytest.raises(FusionCheckError, match=r"fused Attention 1 of 2 expected"):
        convert(tiny_model, tmp_path, progress=False, fp16=False)


def test_every_stage_shows_the_bench_its_vocabulary(tiny_converted, tiny_model):
    """The bench folds token ids into a graph's vocabulary; EmbedLayerNormalization (fused with
    every Attention) reads int32 ids through a Cast, which the lookup must follow."""
    from albert_ixrt.bench import onnx_vocab_size
    from albert_ixrt.export import stage_paths

    out, manifest = tiny_converted
    assert manifest["stages"]["fused"]["fused_ops"]["EmbedLayerNormalization"] == 1
    for stage, path in stage_paths(manifest, out).items():
        assert onnx_vocab_size(path) == tiny_model.config["vocab_size"], stage
