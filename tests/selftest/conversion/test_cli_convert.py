"""``albert-ixrt convert`` end to end: tiny from scratch, and the albert-base twin (reusing the
session's conversion, so the command is exercised on the real architecture without a second build)."""
from __future__ import annotations

import json

import pytest

from albert_ixrt import cli
from albert_ixrt.export import MANIFEST_NAME, STAGE_FILES

pytestmark = pytest.mark.selftest


def test_convert_tiny(tmp_path, capsys):
    code = cli.main(["convert", "--model", "tiny", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    for stage, name in STAGE_FILES.items():
        assert stage in out and name in out and (tmp_path / name).is_file()
    assert "random weights" in out and str(tmp_path / MANIFEST_NAME) in out
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["complete"] and manifest["weights"] == "random"


def test_convert_twin_reuses_the_cached_stages(twin_converted, twin_config_path, capsys):
    out_dir, first = twin_converted
    code = cli.main(["convert", "--model", str(twin_config_path), "--random-weights", "--out", str(out_dir),
                     "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    assert all(entry["reused"] for entry in manifest["stages"].values())
    assert {k: v["sha256"] for k, v in manifest["stages"].items()} == \
        {k: v["sha256"] for k, v in first["stages"].items()}
    assert "Attention 12, EmbedLayerNormalization 1, FastGelu 12, SkipLayerNormalization 24" in out
    assert out.count("yes") >= len(STAGE_FILES)


def test_convert_no_fp16_and_opset(tmp_path, capsys):
    code = cli.main(["convert", "--model", "tiny", "--out", str(tmp_path), "--no-fp16", "--opset", "18",
                     "--no-progress"])
    capsys.readouterr()
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert code == 0 and manifest["opset"] == 18 and not {"fp16", "trt_fp16"} & set(manifest["stages"])


def test_convert_verify_writes_equivalence(tmp_path, capsys, squad_path):
    code = cli.main(["convert", "--model", "tiny", "--out", str(tmp_path), "--no-progress", "--verify", "3",
                     "--verify-batch", "2", "--squad", str(squad_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads((tmp_path / "equivalence.json").read_text())
    assert result["passed"] is True and result["weights"] == "random"
    assert {c["stage"] for c in result["comparisons"]} == set(STAGE_FILES)
    assert "argmax decidable" in out
