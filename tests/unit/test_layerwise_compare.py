"""layerwise without a model: boundary location, real-token comparison, the verdict and its JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper

from albert_ixrt.config import HIDDEN_STATE_TOLERANCES, TOLERANCES, Tolerance
from albert_ixrt.errors import AlbertIxrtError, InputFileError
from albert_ixrt.layerwise import (LayerRow, LayerwiseResult, compare_row, first_layer_lines, hf_model,
                                   layer_tolerance, locate_boundaries, row_names)
from albert_ixrt.compare import ElementCheck
from albert_ixrt.model import LoadedModel
from albert_ixrt.onnx_graph import make_model

TOL = Tolerance(atol=1e-2, rtol=1e-2, reason="test")


def norm_chain(ops):
    """A graph x -> op -> op -> ... (one node per entry of ``ops``) with the logits as outputs."""
    nodes, prev = [], "x"
    for i, op in enumerate(ops):
        domain = "com.microsoft" if op.startswith(("Skip", "Embed")) else ""
        nodes.append(helper.make_node(op, [prev], [f"n{i}", f"n{i}_extra"][:1 + (op == "EmbedLayerNormalization")],
                                      name=f"node{i}", domain=domain))
        prev = f"n{i}"
    nodes += [helper.make_node("Identity", [prev], [name]) for name in ("start_logits", "end_logits")]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, None)],
                              [vi("start_logits", TensorProto.FLOAT, None), vi("end_logits", TensorProto.FLOAT, None)])
    return make_model(graph, 17)


@pytest.mark.parametrize("ops", [
    ["LayerNormalization"] * 5,
    ["EmbedLayerNormalization"] + ["SkipLayerNormalization"] * 4,
])
def test_boundaries_are_the_embeddings_norm_then_every_second_norm(ops):
    found = locate_boundaries(norm_chain(ops), num_layers=2)
    assert list(found) == row_names(2) == ["embeddings", "layer 1", "layer 2", "start_logits", "end_logits"]
    assert [found[k] for k in ("embeddings", "layer 1", "layer 2")] == ["n0", "n2", "n4"]  # output 0 of each


def test_a_graph_with_the_wrong_norm_count_is_refused_naming_the_file():
    with pytest.raises(InputFileError, match=r"odd\.onnx: has 4 LayerNorm-like nodes \(LayerNormalization\); "
                                             r"an ALBERT of 2 layers has 5"):
        locate_boundaries(norm_chain(["LayerNormalization"] * 4), num_layers=2, path="odd.onnx")


def test_only_real_tokens_count():
    ref = np.zeros((2, 4, 3), np.float32)
    got = ref.copy()
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    got[1, 2:] = 100.0  # padded positions: ignored
    row = compare_row("layer 1", [ref], [got], [mask], TOL)
    assert (row.max_abs, row.check.mismatched, row.check.checked, row.over_tolerance) == (0.0, 0, 6 * 3, False)
    got[1, 1, 0] = 0.5  # a real token
    row = compare_row("layer 1", [ref], [got], [mask], TOL)
    assert row.over_tolerance and row.check.mismatched == 1 and row.max_abs == pytest.approx(0.5)


def test_an_element_fails_only_beyond_both_atol_and_rtol():
    ref = np.array([[100.0, 1.0]])
    got = ref + np.array([[0.5, 0.005]])  # 0.5 is within 1% of 100; 0.005 within atol
    row = compare_row("start_logits", [ref], [got], [np.ones((1, 2))], TOL)
    assert not row.over_tolerance
    assert row.cosine == pytest.approx(1.0, abs=1e-6) and row.mean_abs == pytest.approx(0.2525)


def result_with(over: set[str]) -> LayerwiseResult:
    rows = [LayerRow(name, 1.0 if name in over else 0.0, 0.0, 1.0,
                     ElementCheck(0.1, 0.1, checked=10, mismatched=int(name in over)))
            for name in row_names(12)]
    return LayerwiseResult("g.onnx", "onnxruntime", "fp16", "random", [[2, 8]], layer_tolerance("fp16"), rows)


def test_first_over_tolerance_is_the_earliest_row():
    assert result_with(set()).first_over_tolerance is None
    assert result_with({"layer 7", "layer 9", "end_logits"}).first_over_tolerance == "layer 7"
    assert result_with({"start_logits"}).first_over_tolerance == "start_logits"


def test_json_and_table_say_rows_tolerances_and_verdict():
    result = result_with({"layer 7", "layer 8"})
    d = json.loads(json.dumps(result.to_dict()))
    assert [r["name"] for r in d["rows"]] == row_names(12)
    assert {"name", "max_abs", "mean_abs", "cosine", "over_tolerance"} <= set(d["rows"][0])
    assert d["first_over_tolerance"] == "layer 7"
    assert d["tolerance"]["hidden_states"]["atol"] == HIDDEN_STATE_TOLERANCES["fp16"].atol
    assert d["tolerance"]["logits"]["atol"] == TOLERANCES["fp16"].atol
    assert "first over tolerance: layer 7" in result.table()
    assert first_layer_lines({"fp16": "layer 7"}) == ["stage 'fp16': first layer over tolerance: layer 7"]


def test_every_precision_has_a_hidden_state_tolerance_with_its_reason():
    assert set(HIDDEN_STATE_TOLERANCES) == set(TOLERANCES)
    assert all(t.reason for t in HIDDEN_STATE_TOLERANCES.values())
    with pytest.raises(AlbertIxrtError, match="no tolerance for precision 'int8'"):
        layer_tolerance("int8")


def test_a_torchscript_model_is_refused_in_one_line():
    model = LoadedModel(object(), "m.pt", "torchscript", "real", "0" * 64)
    with pytest.raises(InputFileError, match=r"^m\.pt: a TorchScript model exposes no per-layer hidden states"):
        hf_model(model)


def test_a_non_finite_layer_output_is_over_tolerance_and_named_first():
    """An fp16 overflow: NaN from layer 3 on.  Before the one rule, NaN compared as "within" (NaN > atol is
    False) and layerwise said "first over tolerance: none"; now the row fails, counts its NaN values, and the
    table names the first layer whose output is non-finite."""
    ref = np.ones((1, 4, 3))
    mask = np.ones((1, 4))
    nan = ref.copy()
    nan[0, 2, 1] = np.nan
    row = compare_row("layer 3", [ref], [nan], [mask], TOL)
    assert row.over_tolerance and row.nonfinite == 1 and row.check.first_nonfinite_at == (0, 0, 2)
    assert not compare_row("layer 2", [ref], [ref], [mask], TOL).over_tolerance
    rows = [compare_row(name, [ref], [nan if name in ("layer 3", "layer 4") else ref], [mask], TOL)
            for name in row_names(4)[:5]]
    result = LayerwiseResult("g.onnx", "onnxruntime", "fp16", "random", [[1, 4]], layer_tolerance("fp16"), rows)
    assert result.first_over_tolerance == "layer 3" and result.first_nonfinite == "layer 3"
    assert "first layer with a non-finite output (NaN/Inf): layer 3" in result.table()
    assert "1/12 (1 NaN/Inf)" in result.table() and json.loads(json.dumps(result.to_dict()))["first_nonfinite"]
