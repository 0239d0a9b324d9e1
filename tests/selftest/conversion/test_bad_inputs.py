"""Bad inputs give one clear error naming the file and the problem, and nothing half-written."""
from __future__ import annotations

import json

import pytest
import torch

from albert_ixrt import cli
from albert_ixrt.errors import AssetMissingError, InputFileError
from albert_ixrt.export import STAGE_FILES, export_inputs
from albert_ixrt.onnx_graph import load_onnx
from albert_ixrt.graph_checks import check_graph

pytestmark = pytest.mark.selftest


@pytest.fixture
def valid_onnx(tiny_converted):
    out, manifest = tiny_converted
    return out / STAGE_FILES["simplified"]


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_onnx(tmp_path, valid_onnx, cut):
    data = valid_onnx.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(InputFileError, match="truncated") as err:
        load_onnx(bad)
    assert err.value.path == str(bad)


def test_corrupt_onnx(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe" * 40)
    with pytest.raises(InputFileError, match="corrupt"):
        load_onnx(bad)
    with pytest.raises(InputFileError):
        check_graph(bad)


def test_empty_onnx(tmp_path):
    bad = tmp_path / "empty.onnx"
    bad.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty file"):
        load_onnx(bad)


def test_a_fragment_that_parses_is_still_refused(tmp_path, valid_onnx):
    """A protobuf prefix cut at a field boundary may parse: it then lacks the graph or IR version."""
    import onnx

    fragment = onnx.ModelProto()
    fragment.producer_name = "pytorch"
    bad = tmp_path / "fragment.onnx"
    bad.write_bytes(fragment.SerializeToString())
    with pytest.raises(InputFileError, match="no graph nodes"):
        load_onnx(bad)


def test_missing_onnx(tmp_path):
    with pytest.raises(AssetMissingError, match="not found"):
        load_onnx(tmp_path / "absent.onnx")


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_model_dir_without_files(tmp_path, capsys):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", "--model", str(model_dir), "--out", str(out), "--no-progress"], capsys)
    assert code == 2
    assert str(model_dir) in err and "config.json" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_model_dir_without_weights(tmp_path, capsys, twin_config_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(twin_config_path.read_text())
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", "--model", str(model_dir), "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and "no weights" in err and str(model_dir) in err
    assert not out.exists()


class WrongInputs(torch.nn.Module):
    def forward(self, pixels):
        return pixels * 2


def test_cli_torchscript_with_wrong_inputs(tmp_path, capsys):
    path = tmp_path / "wrong.pt"
    torch.jit.script(WrongInputs()).save(str(path))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", "--model", str(path), "--out", str(out), "--no-progress"], capsys)
    assert code == 2
    assert str(path) in err and "input_ids, attention_mask, token_type_ids" in err
    assert not out.exists()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_torchscript_model_converts(tmp_path, tiny_model, capsys):
    """A traced ByteMLPerf-style TorchScript file goes through the whole pipeline.  Attention does
    not fuse: a TorchScript file carries no config, so the fuser is not told the head count."""
    path = tmp_path / "tiny.pt"
    torch.jit.trace(tiny_model.module, export_inputs(), strict=False).save(str(path))
    out = tmp_path / "out"
    code, stdout, err = run_cli(["convert", "--model", str(path), "--out", str(out), "--no-progress", "--no-fp16"],
                                capsys)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["kind"] == "torchscript" and manifest["weights"] == "real"
    assert manifest["stages"]["fused"]["fused_ops"].get("SkipLayerNormalization") == 4
