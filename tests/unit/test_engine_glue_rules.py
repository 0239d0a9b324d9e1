"""The engine defects the TensorRT stand-in shows, one named test each, every verdict both ways:

1. the graph an engine builds from is one decision (engine_input.engine_graph), used by run;
2. "fp32" engines are fp32: TF32 (on in every new IBuilderConfig) is cleared unless asked;
3. ixRT is weak by default with EXPLICIT_BATCH, imported as ``ixrt`` (or ``tensorrt``), no memory-pool
   call where it has none, Dims shapes;
4. copies and enqueue go to a stream the runner owns, never torch's default stream (handle 0);
5. run's engine profile covers every batch size and length the run feeds, decided before the build;
6. every builder setting is in the engine cache key;
7. a shape or address the engine refuses is one error naming the tensor;
8. opset ceilings per generation (11.0-11.4: 24; 11.5+: 25; ixRT: none published).

Plus the glue's ordering and binding rules: wait for torch's stream before enqueueing,
synchronise before the synchronous execute_v2, every engine output bound on every call.
"""
from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest

from albert_ixrt.config import TOLERANCES
from albert_ixrt.engine import EngineCache, ShapeOutsideProfile, ShapeProfile, TrtLibrary, engine_key
from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.onnx_graph import make_model
from trt_fakes import DEFAULT_STREAM_WARNING, make_fake_trt, qa_onnx, qa_reference


def _feed(batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 60, (batch, seq))
    mask = np.ones_like(ids)
    mask[:, seq - 2:] = 0
    types = np.zeros_like(ids)
    types[:, seq // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _runner(label, tmp_path, precision="fp16", **kw):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    flavour = "ixrt" if label == "ixrt" else "tensorrt"
    lib = TrtLibrary(make_fake_trt(label), flavour, device_name="Fake GPU")
    strong = lib.api.typing == "strong" and precision == "fp16"
    onnx = qa_onnx(tmp_path / ("model.sim.fp16.onnx" if strong else "model.sim.onnx"),
                   np.float16 if strong else np.float32)
    return TensorRTRunner(onnx, precision=precision, flavour=flavour, library=lib, cache_dir=tmp_path / "engines",
                          profile=kw.pop("profile", ShapeProfile.covering([1, 8], [4, 32])), **kw)


# ---------------------------------------------------------------------------------------------
# 1. One decision of the graph an engine builds from
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label, precision, stage", [("11.4", "fp16", "trt_fp16"), ("11.4", "fp32", "simplified"),
                                                     ("10.13-strong", "fp16", "trt_fp16"),
                                                     ("10.13-weak", "fp16", "simplified"),
                                                     ("8.6", "fp16", "simplified"), ("ixrt", "fp16", "simplified")])
def test_engine_graph_follows_the_modules_typing(label, precision, stage, monkeypatch):
    """engine_graph asks the importable module how it is driven: a strongly typed fp16 build gets the fp16
    graph, every weak or fp32 one the simplified graph (the wrong graph is refused, PrecisionMismatch)."""
    from albert_ixrt.engine_input import engine_graph

    fake = make_fake_trt(label)
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    backend = "ixrt" if label == "ixrt" else "tensorrt"
    manifest = {"stages": {"simplified": {"file": "model.sim.onnx"}, "trt_fp16": {"file": "model.sim.fp16.onnx"}}}
    assert engine_graph(manifest, "/out", backend, precision).name == manifest["stages"][stage]["file"]


def test_run_takes_its_engine_graph_from_the_one_decision(monkeypatch, tmp_path, tiny_model):
    """run's evaluate step builds from engine_graph's choice (a planted inline table lookup that picks the fp32
    graph for a strongly typed fp16 engine fails here)."""
    from albert_ixrt import pipeline
    from albert_ixrt.acceptance.options import Options

    fake = make_fake_trt("11.4")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    asked = []

    def capture(backend, model, precision, onnx=None, **kw):
        asked.append((backend, precision, onnx, kw))
        raise AlbertIxrtError("captured")

    monkeypatch.setattr("albert_ixrt.loaders.make_runner", capture)
    monkeypatch.setattr("albert_ixrt.acceptance.subject.load_model", lambda *a, **k: tiny_model)
    monkeypatch.setattr("albert_ixrt.engine_input.engine_graph",
                        lambda manifest, out, backend, precision: f"{backend}-{precision}")
    entry = {"node_count": 1, "fused_ops": {}, "size_bytes": 1, "seconds": 0.0}
    stages = {"simplified": {"file": "model.sim.onnx", **entry}, "trt_fp16": {"file": "model.sim.fp16.onnx", **entry}}
    monkeypatch.setattr("albert_ixrt.export.convert", lambda model, out, progress=True: {"stages": stages})
    monkeypatch.setattr("albert_ixrt.export.graph_problems", lambda manifest: [])
    report = pipeline.run_acceptance(Options(backend="tensorrt", precision="fp16", out=str(tmp_path / "r"), quiet=True,
                                             skip=("equivalence",), batch_size=32, perf_batch_sizes=(1, 64)))
    assert [s["status"] for s in report["steps"]][:2] == ["passed", "passed"], report["steps"]   # load, features
    assert report["verdict"]["status"] == "FAILED" and asked and str(asked[0][2]) == "tensorrt-fp16"
    # 5. the profile covers every batch the run feeds, at every length up to max_seq_length, before the build
    profile = asked[0][3]["profile"]
    for batch, seq in [(32, 384), (64, 384), (1, 1), (8, 200)]:
        assert profile.contains(batch, seq), (batch, seq, profile.label())
    assert not profile.contains(65, 384) and asked[0][3]["tf32"] is False


# ---------------------------------------------------------------------------------------------
# 2. TF32
# ---------------------------------------------------------------------------------------------
def _matmul_onnx(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(1).normal(scale=768 ** -0.5, size=(768, 768)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "k"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 768])],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(make_model(graph, 17), str(path))
    return path, w


def _outside_fp32_tolerance(lib, onnx, w) -> float:
    """Share of a 384x768 @ 768x768 product's elements outside the fp32 tolerance, through lib's engine."""
    trt = lib.trt
    plan = lib.build(onnx, ShapeProfile.covering([384], [768]), "fp32", input_names=("x",))
    context = lib.deserialize(plan).create_execution_context()
    x = np.random.default_rng(2).normal(size=(384, 768)).astype(np.float32)
    y = np.zeros((384, 768), np.float32)
    assert context.set_input_shape("x", trt.Dims((384, 768)))
    for name, arr in (("x", x), ("y", y)):
        assert context.set_tensor_address(name, arr.ctypes.data_as(ctypes.c_void_p).value)
    assert context.execute_async_v3(1)
    ref = x.astype(np.float64) @ w.astype(np.float64)
    tol = TOLERANCES["fp32"]
    absdiff = np.abs(y - ref)
    return float(np.mean((absdiff > tol.atol) & (absdiff > tol.rtol * np.abs(ref))))


def test_fp32_engine_is_fp32_not_tf32(tmp_path):
    onnx, w = _matmul_onnx(tmp_path / "mm.onnx")
    lib = TrtLibrary(make_fake_trt("10.13-strong"))
    assert lib.builder_flags("fp32") == ()
    assert _outside_fp32_tolerance(lib, onnx, w) == 0.0
    lib.tf32 = True  # --tf32: asked for, labelled, and it drifts beyond the fp32 tolerance
    assert lib.builder_flags("fp32") == ("TF32",)
    assert _outside_fp32_tolerance(lib, onnx, w) > 0.05


# ---------------------------------------------------------------------------------------------
# 3. ixRT
# ---------------------------------------------------------------------------------------------
def test_ixrt_is_weak_with_explicit_batch_dims_and_no_pool_call(tmp_path):
    runner = _runner("ixrt", tmp_path)
    api = runner.lib.api
    assert (api.typing, api.network_flags, api.has_memory_pool, api.has_dims) == ("weak", 1 << 0, False, True)
    feed = _feed(3, 12)
    start, end = runner.infer(feed)
    np.testing.assert_allclose(start, qa_reference(feed)[0], atol=0.05, rtol=0.01)
    assert runner.engine._spec["precision"] == "fp16" and not runner.engine._spec["strongly_typed"]
    assert runner.engine._spec["builder_flags"] == ["FP16"]


def test_ixrt_is_imported_as_ixrt_or_tensorrt(monkeypatch):
    from albert_ixrt.engine import import_tensorrt
    from albert_ixrt.errors import BackendUnavailable

    ixrt, legacy = make_fake_trt("ixrt"), make_fake_trt("8.6")
    monkeypatch.setitem(sys.modules, "ixrt", ixrt)
    monkeypatch.setitem(sys.modules, "tensorrt", legacy)
    assert import_tensorrt("ixrt") is ixrt and import_tensorrt("tensorrt") is legacy
    monkeypatch.setitem(sys.modules, "ixrt", None)     # an older SDK: only its TensorRT-compatible module
    assert import_tensorrt("ixrt") is legacy
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=r"ixrt, or tensorrt in older SDKs.*ixrt:.*tensorrt:"):
        import_tensorrt("ixrt")


# ---------------------------------------------------------------------------------------------
# 4. Streams, and the glue's ordering and binding rules
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["11.4", "8.6"])
def test_runner_never_enqueues_on_the_default_stream_and_orders_its_work(label, tmp_path, monkeypatch):
    from albert_ixrt.runners import trt_runner

    runner = _runner(label, tmp_path)
    events = runner.lib.trt._state.events
    monkeypatch.setattr(trt_runner.OwnedStream, "wait_for_current", lambda self: events.append(("wait", None)))
    monkeypatch.setattr(trt_runner.OwnedStream, "synchronize", lambda self: events.append(("sync", None)))
    runner.infer(_feed(2, 8))
    assert DEFAULT_STREAM_WARNING not in runner.lib.trt._state.warnings()
    kinds = [e[0] for e in events]
    if label == "8.6":   # execute_v2 waits for no stream: the owned stream is synchronised first
        assert kinds[:3] == ["wait", "sync", "execute_v2"]
    else:                # enqueued on the owned stream, after it waited for torch's
        assert kinds[:2] == ["wait", "execute_async_v3"] and events[1][1] not in (0, None)
    # the stand-in does warn on torch's legacy default stream (the other way round)
    context = runner.engine.create_execution_context()
    if label == "11.4":
        context.execute_async_v3(0)
        assert DEFAULT_STREAM_WARNING in runner.lib.trt._state.warnings()


@pytest.mark.parametrize("label", ["11.4", "8.6"])
def test_every_engine_output_is_bound_on_every_call(label, tmp_path):
    """The stand-in forgets every address after an execution, so asking for one output twice works only
    when the runner binds all of them each time (an unbound output is refused, the other way round)."""
    runner = _runner(label, tmp_path)
    feed = _feed(2, 8)
    for _ in range(2):
        out = runner.infer_outputs(feed, ["end_logits"])
        np.testing.assert_allclose(out["end_logits"], qa_reference(feed)[1], atol=0.05, rtol=0.01)
    if label == "11.4":
        context = runner.engine.create_execution_context()
        assert context.set_input_shape("input_ids", (2, 8))
        assert not context.execute_async_v3(1)
        assert any("Neither address nor allocator" in m or "not set" in m for m in runner.lib.trt._state.warnings())


# ---------------------------------------------------------------------------------------------
# 6. Cache key
# ---------------------------------------------------------------------------------------------
def test_every_builder_setting_is_in_the_cache_key(tmp_path):
    onnx = qa_onnx(tmp_path / "model.sim.onnx", np.float32)
    lib = TrtLibrary(make_fake_trt("10.13-weak"))
    profile = ShapeProfile()
    base = engine_key(lib, onnx, profile, "fp32").digest()
    assert engine_key(lib, onnx, profile, "fp32").digest() == base     # stable
    for change in (dict(tf32=True), dict(workspace_bytes=1 << 20), dict(plugin="/opt/ixrt/lib/libixrt_plugin.so")):
        other = TrtLibrary(make_fake_trt("10.13-weak"))
        for k, v in change.items():
            setattr(other, k, v)
        assert engine_key(other, onnx, profile, "fp32").digest() != base, change
    strong = TrtLibrary(make_fake_trt("10.13-strong"))                 # network flags and typing
    assert engine_key(strong, onnx, profile, "fp32").digest() != base
    key = engine_key(lib, onnx, profile, "fp32").as_dict()["build_settings"]
    assert key["builder_flags"] == [] and key["network_flags"] == 1 and key["workspace"] == lib.workspace_bytes
    # a stale plan built with TF32 is not served to a build without it
    cache = EngineCache(tmp_path / "engines")
    tf32 = TrtLibrary(make_fake_trt("10.13-weak"), tf32=True)
    from albert_ixrt.engine import load_or_build_engine

    _, first = load_or_build_engine(tf32, onnx, profile, "fp32", cache)
    _, second = load_or_build_engine(lib, onnx, profile, "fp32", cache)
    assert first.source == second.source == "built"


# ---------------------------------------------------------------------------------------------
# 7. Refusals named
# ---------------------------------------------------------------------------------------------
def test_a_refused_shape_or_address_names_the_tensor(tmp_path, monkeypatch):
    from albert_ixrt.runners.trt_runner import EngineRefused

    runner = _runner("11.4", tmp_path)
    runner.profile = ShapeProfile.covering([1, 16], [4, 32])      # wider than the engine's own (batch <= 8)
    with pytest.raises(ShapeOutsideProfile, match=r"engine refused input shape \[12, 8\] for tensor 'input_ids'"):
        runner.infer(_feed(12, 8))
    runner.infer(_feed(8, 8))                                      # inside: fine
    ctx_cls = type(runner.context)
    real = ctx_cls.set_tensor_address
    monkeypatch.setattr(ctx_cls, "set_tensor_address",
                        lambda self, name, ptr: False if name == "token_type_ids" else real(self, name, ptr))
    with pytest.raises(EngineRefused, match=r"refused the address 0x[0-9a-f]+ for tensor 'token_type_ids'") as exc:
        runner.infer(_feed(2, 8))
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------------
# 8. Opset ceilings
# ---------------------------------------------------------------------------------------------
def test_opset_ceilings_per_generation(tmp_path):
    from albert_ixrt.graph_checks import check_graph, trt_max_opset

    assert trt_max_opset(11, "11.4.0.106") == 24 and trt_max_opset(11, "11.5.0") == 25
    assert trt_max_opset(8, "8.6.1") == 17 and trt_max_opset(8, "8.6.1", "ixrt") is None
    import onnx

    path = qa_onnx(tmp_path / "m.onnx", np.float32)
    model = onnx.load(str(path))
    model.opset_import[0].version = 25
    onnx.save(model, str(path))
    report = check_graph(path, target="tensorrt", trt=make_fake_trt("11.4"))
    assert any("opset 25 is above 24" in p for p in report.problems)
    lib = TrtLibrary(make_fake_trt("11.4"))            # and the stand-in's parser refuses it the same way
    with pytest.raises(AlbertIxrtError, match="opset 25 is above 24"):
        lib.build(path, ShapeProfile(), "fp32")
