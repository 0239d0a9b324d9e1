"""The fused-op expectations a model config implies, and the one-line verdict when a stack fuses less."""
from __future__ import annotations

import pytest

from albert_ixrt.config import ONNXRUNTIME_FLOOR, expected_fused_ops
from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.fusion import FusionCheckError, check_fusion, fusion_shortfall
from albert_ixrt.model import TINY_CONFIG

BASE = {"num_hidden_layers": 12, "hidden_act": "gelu_new"}
FULL = {"Attention": 12, "SkipLayerNormalization": 24, "FastGelu": 12}


def test_expectations_follow_the_config():
    assert expected_fused_ops(BASE) == FULL
    assert expected_fused_ops(TINY_CONFIG) == {"Attention": 2, "SkipLayerNormalization": 4, "FastGelu": 2}
    assert expected_fused_ops({**BASE, "inner_group_num": 2})["Attention"] == 24
    assert "FastGelu" not in expected_fused_ops({**BASE, "hidden_act": "gelu"})  # erf GELU: not FastGelu
    assert expected_fused_ops({}) == {}  # a TorchScript model without config.json: nothing to check


def test_the_expected_counts_pass():
    check_fusion({**FULL, "EmbedLayerNormalization": 1}, FULL, ort_version="1.31.0")
    assert fusion_shortfall(FULL, FULL) == []


def test_an_old_onnxruntime_fails_in_one_line_naming_version_and_floor():
    """What onnxruntime 1.30.0 does to a transformers-5 export (measured: Attention 0)."""
    with pytest.raises(FusionCheckError) as info:
        check_fusion({"SkipLayerNormalization": 24, "FastGelu": 12}, FULL, ort_version="1.30.0")
    message = str(info.value)
    assert isinstance(info.value, AlbertIxrtError) and "\n" not in message
    assert message.startswith("onnxruntime 1.30.0 fused Attention 0 of 12")
    assert f"install onnxruntime>={ONNXRUNTIME_FLOOR}" in message and "create_bidirectional_mask" in message


def test_a_shortfall_above_the_floor_says_the_patterns_changed():
    with pytest.raises(FusionCheckError, match=r"onnxruntime 1\.32\.0 fused Attention 11 of 12 .*patterns changed"):
        check_fusion({**FULL, "Attention": 11}, FULL, ort_version="1.32.0")
    with pytest.raises(FusionCheckError, match="FastGelu 13 of 12"):  # more is wrong too
        check_fusion({**FULL, "FastGelu": 13}, FULL, ort_version="1.32.0")
