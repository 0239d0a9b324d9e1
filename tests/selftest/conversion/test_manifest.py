"""manifest.json: provenance, per-stage figures that match the files, fusion and deduplication."""
from __future__ import annotations

import json

import onnx
import pytest

from albert_ixrt import export
from albert_ixrt.export import MANIFEST_NAME, STAGE_FILES, stage_paths
from albert_ixrt.onnx_graph import load_onnx, op_histogram, tensor_fingerprint
from albert_ixrt.fileio import sha256_file

pytestmark = pytest.mark.selftest


def test_manifest_on_disk_is_the_returned_one(twin_converted):
    out, manifest = twin_converted
    on_disk = json.loads((out / MANIFEST_NAME).read_text())
    assert on_disk["complete"] is True
    assert on_disk["stages"].keys() == manifest["stages"].keys() == STAGE_FILES.keys()


def test_provenance(twin_converted, twin_model):
    _, manifest = twin_converted
    assert manifest["source_sha256"] == twin_model.source_sha256
    assert manifest["weights"] == "random" and manifest["model"]["label"] == "random weights"
    assert manifest["opset"] == 17 and manifest["fp16"] is True
    assert "dynamo" in manifest["exporter_reason"] and manifest["exporter"].endswith("(dynamo=False)")
    assert manifest["tools"] == export.tool_versions()


def test_stage_figures_match_the_files(twin_converted):
    out, manifest = twin_converted
    for name, path in stage_paths(manifest, out).items():
        entry = manifest["stages"][name]
        model = load_onnx(path)
        assert entry["file"] == STAGE_FILES[name]
        assert entry["size_bytes"] == path.stat().st_size
        assert entry["sha256"] == sha256_file(path)
        assert entry["node_count"] == len(model.graph.node) == sum(entry["op_histogram"].values())
        assert entry["op_histogram"] == op_histogram(model)
        assert entry["seconds"] > 0 and entry["reused"] is False
        assert entry["cache_key"] and entry["input_sha256"]


def test_each_stage_hashes_its_input(twin_converted):
    """Each stage hashes the file it is built from: the one before it, or its STAGE_SOURCE."""
    _, manifest = twin_converted
    stages = manifest["stages"]
    names = list(stages)
    assert stages[names[0]]["input_sha256"] == manifest["source_sha256"]
    for before, after in zip(names, names[1:]):
        source = export.STAGE_SOURCE.get(after, before)
        assert stages[after]["input_sha256"] == stages[source]["sha256"]
    assert export.STAGE_SOURCE == {"trt_fp16": "simplified"}


def test_twin_fusion_counts(twin_converted):
    """albert-base: 12 layers x 2 LayerNorms after a residual -> 24 SkipLayerNormalization, 12 FastGelu
    (gelu_new), Attention in all 12 layers (layer 0, whose input is the embedding projection, through
    fusion.AlbertAttentionFusion), and with every Attention fused the embedding LayerNorm becomes one
    EmbedLayerNormalization."""
    _, manifest = twin_converted
    for stage in ("fused", "fp16"):
        assert manifest["stages"][stage]["fused_ops"] == {"Attention": 12, "EmbedLayerNormalization": 1,
                                                          "FastGelu": 12, "SkipLayerNormalization": 24}
    for stage in ("exported", "simplified", "trt_fp16"):
        assert manifest["stages"][stage]["fused_ops"] == {}
    assert manifest["stages"]["simplified"]["node_count"] < manifest["stages"]["exported"]["node_count"]


def test_fusion_keeps_albert_weights_shared(twin_converted):
    """Fusion copies the shared layer's QKV weight into each of 12 Attention nodes (44.6 -> 122 MB);
    deduplication brings the file back to the simplified size (one concatenated QKV replaces Q, K, V)."""
    out, manifest = twin_converted
    fused = manifest["stages"]["fused"]
    simplified = manifest["stages"]["simplified"]
    assert fused["duplicate_initializers_removed"] >= 11
    assert fused["bytes_before_dedup"] > 2.5 * simplified["size_bytes"]
    assert fused["size_bytes"] < simplified["size_bytes"] + 768 * 3 * 768 * 4 * 1.05
    assert manifest["stages"]["fp16"]["size_bytes"] < 0.55 * fused["size_bytes"]
    for stage in ("fused", "fp16", "trt_fp16"):
        model = onnx.load(str(stage_paths(manifest, out)[stage]))
        prints = [tensor_fingerprint(t) for t in model.graph.initializer]
        assert len(prints) == len(set(prints)), f"{stage} still holds identical initializers"


def test_dynamic_axes_survive_every_stage(tiny_converted):
    out, manifest = tiny_converted
    for name, path in stage_paths(manifest, out).items():
        model = load_onnx(path)
        for value in [*model.graph.input, *model.graph.output]:
            dims = [d.dim_param for d in value.type.tensor_type.shape.dim]
            assert dims == ["batch", "sequence"], (name, value.name, dims)
