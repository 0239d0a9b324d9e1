"""The onnxruntime runner: precision follows the graph, int8 is cached beside it, settings are recorded."""
from __future__ import annotations

import os

import numpy as np
import pytest

from albert_ixrt.bench import real_feed
from albert_ixrt.errors import BackendUnavailable, InputFileError
from albert_ixrt.runners import create_runner
from albert_ixrt.runners.ort_runner import choose_providers, graph_float_type, int8_path_for

pytest.importorskip("onnxruntime", reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def tiny_graphs(tmp_path_factory, tiny_model):
    """The tiny model through the project's converter (stage name -> path), in a writable folder."""
    from albert_ixrt import export

    out = tmp_path_factory.mktemp("ort_tiny")
    return export.stage_paths(export.convert(tiny_model, out, progress=False), out)


@pytest.fixture(scope="module")
def feed(dev_features, tiny_model):
    return real_feed(dev_features[:40], 4, 128, start=7, vocab_size=tiny_model.config["vocab_size"])


@pytest.fixture(scope="module")
def torch_logits(tiny_model, feed):
    return create_runner("torch", model=tiny_model, precision="fp32", device="cpu").infer(feed)


@pytest.mark.parametrize("stage", ["exported", "simplified", "fused"])
def test_fp32_graphs_match_torch(tiny_graphs, feed, torch_logits, stage):
    runner = create_runner("onnxruntime", onnx_path=tiny_graphs[stage], precision="fp32", device="cpu")
    start, end = runner.infer(feed)
    assert start.dtype == np.float32 and start.shape == feed["input_ids"].shape
    np.testing.assert_allclose(start, torch_logits[0], atol=1e-4)
    np.testing.assert_allclose(end, torch_logits[1], atol=1e-4)


def test_describe_records_threads_and_optimisation_level(tiny_graphs):
    runner = create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], intra_op_threads=1,
                           graph_optimization_level="basic", device="cpu")
    d = runner.describe()
    assert d["intra_op_threads"] == 1 and d["graph_optimization_level"] == "basic"
    assert d["providers"] == ["CPUExecutionProvider"] and d["device"] == "cpu" and d["precision"] == "fp32"
    assert runner.session.get_session_options().intra_op_num_threads == 1
    default = create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], device="cpu").describe()
    assert default["intra_op_threads"] == len(os.sched_getaffinity(0)) and default["graph_optimization_level"] == "all"


def test_fp16_graph_runs_as_fp16_only(tiny_graphs, feed, torch_logits):
    assert graph_float_type(tiny_graphs["fp16"]) == "fp16" and graph_float_type(tiny_graphs["fused"]) == "fp32"
    runner = create_runner("onnxruntime", onnx_path=tiny_graphs["fp16"], precision="fp16", device="cpu")
    start, _ = runner.infer(feed)
    assert start.dtype == np.float32
    assert 0 < np.abs(start - torch_logits[0]).max() < 0.05
    with pytest.raises(InputFileError, match="precision fp32 asked for, but this graph holds fp16"):
        create_runner("onnxruntime", onnx_path=tiny_graphs["fp16"], precision="fp32", device="cpu")
    with pytest.raises(InputFileError, match="precision fp16 asked for, but this graph holds fp32"):
        create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], precision="fp16", device="cpu")


def test_int8_is_quantised_once_and_cached_beside_the_graph(tiny_graphs, feed, torch_logits):
    src = tiny_graphs["fused"]
    first = create_runner("onnxruntime", onnx_path=src, precision="int8", device="cpu")
    quantized = first.model_path
    assert quantized.parent == src.parent and quantized.name.startswith("model.fused.int8-")
    assert first.describe()["int8"]["cached"] is False
    mtime = quantized.stat().st_mtime_ns
    second = create_runner("onnxruntime", onnx_path=src, precision="int8", device="cpu")
    assert second.model_path == quantized and second.describe()["int8"]["cached"] is True
    assert quantized.stat().st_mtime_ns == mtime
    import onnx

    ops = {n.op_type for n in onnx.load(str(quantized), load_external_data=False).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention"}
    start, _ = second.infer(feed)
    err = np.abs(start - torch_logits[0]).max()
    assert 0 < err < 0.1


def test_int8_name_follows_the_source_content(tmp_path):
    p = tmp_path / "model.fused.onnx"
    assert int8_path_for(p, "ab" * 32).name == "model.fused.int8-abababababab.onnx"
    assert int8_path_for(p, "cd" * 32) != int8_path_for(p, "ab" * 32)


def test_int8_needs_the_fp32_graph(tiny_graphs):
    with pytest.raises(InputFileError, match="needs the fp32 graph"):
        create_runner("onnxruntime", onnx_path=tiny_graphs["fp16"], precision="int8", device="cpu")


def test_device_tensors_give_the_same_answer(tiny_graphs, feed):
    runner = create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], device="cpu")
    on_device = runner.to_device(feed)
    start, end = runner.infer_tensors(on_device)
    ref_start, ref_end = runner.infer(feed)
    np.testing.assert_array_equal(start.numpy(), ref_start)
    np.testing.assert_array_equal(end.numpy(), ref_end)


def test_provider_choice():
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", cpu_only) == ["CPUExecutionProvider"]
    assert choose_providers("auto", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("tensorrt", gpu) == gpu
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider is not in this onnxruntime build"):
        choose_providers("cuda", cpu_only)
    with pytest.raises(BackendUnavailable, match="unknown provider"):
        choose_providers("tpu", gpu)


def test_cuda_request_on_a_cpu_build_is_a_one_line_skip(tiny_graphs):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the unavailable path cannot be exercised")
    with pytest.raises(BackendUnavailable) as exc:
        create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], device="cuda")
    assert "\n" not in exc.value.reason


def test_bad_requests(tmp_path, tiny_graphs):
    from albert_ixrt.errors import AssetMissingError

    with pytest.raises(AssetMissingError, match="ONNX model not found"):
        create_runner("onnxruntime", onnx_path=tmp_path / "missing.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty.onnx: empty file"):
        create_runner("onnxruntime", onnx_path=tmp_path / "empty.onnx")
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(InputFileError, match="corrupt.onnx: not a readable ONNX model"):
        create_runner("onnxruntime", onnx_path=tmp_path / "corrupt.onnx")
    with pytest.raises(BackendUnavailable, match="needs an ONNX file"):
        create_runner("onnxruntime")
    with pytest.raises(BackendUnavailable, match="precision 'bf16'"):
        create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], precision="bf16")
    with pytest.raises(ValueError, match="graph_optimization_level"):
        create_runner("onnxruntime", onnx_path=tiny_graphs["fused"], graph_optimization_level="max")
