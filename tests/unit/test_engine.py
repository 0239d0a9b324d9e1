"""TensorRT / ixRT engine layer without TensorRT: profile maths, cache keys, the cache's handling
of corrupt entries, the builder's calls, and the runner's I/O binding, against the TensorRT stand-in
(tests/support/trt_standin.py: the real 8.6, 10.13 and 11.4 bindings' names, TensorRT's documented
behaviour, engines that run their ONNX graph with onnxruntime at the bound addresses).  The whole
build -> cache -> run flow runs on each generation."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from albert_ixrt.engine import (EngineCache, EngineKey, ShapeOutsideProfile, ShapeProfile, TrtLibrary,
                                load_or_build_engine, load_plugin_library, major_version, resolve_plugin_path)
from albert_ixrt.errors import AlbertIxrtError, BackendUnavailable
from albert_ixrt.model import INPUT_NAMES
from albert_ixrt.trt_api import PrecisionMismatch
from trt_fakes import LABELS, MAGIC, VOCAB, make_fake_trt, qa_reference, read_plan
from trt_fakes import qa_onnx as _tiny_onnx

# ---------------------------------------------------------------------------------------------
# Fake tensorrt modules derived from the real 8.6 / 10.13 / 11.4 member lists (trt_fakes.py)
# ---------------------------------------------------------------------------------------------
#: Every generation the flow runs against: the three real member lists, and TensorRT 8-style
#: bindings-only (older ixRT), derived from 8.6.
GENERATIONS = (*LABELS, "trt8-bindings", "ixrt", "10.13-weak")
#: What each generation must be driven with (TensorRT's documented semantics, and the values of
#: the real enums: EXPLICIT_BATCH = 0 on 8.6, STRONGLY_TYPED = 1 on 10.13 and 0 on 11.4), and the
#: engine's integer input type (INT64 on 10 / 11, INT32 on 8.x / ixRT).
EXPECTED = {
    "trt8": dict(typing="weak", network_flags=1 << 0, io="tensor_address", ints="int32"),
    "trt8-bindings": dict(typing="weak", network_flags=1 << 0, io="bindings", ints="int32"),
    "trt10": dict(typing="strong", network_flags=1 << 1, io="tensor_address", ints="int64"),
    "trt11": dict(typing="strong", network_flags=1 << 0, io="tensor_address", ints="int64"),
    "ixrt": dict(typing="weak", network_flags=1 << 0, io="tensor_address", ints="int32"),
    "10.13-weak": dict(typing="weak", network_flags=1 << 0, io="tensor_address", ints="int64"),
}
@pytest.fixture(params=GENERATIONS)
def generation(request):
    return request.param


@pytest.fixture
def fake_trt(generation):
    return make_fake_trt(generation)


@pytest.fixture
def lib(fake_trt, generation):
    return TrtLibrary(fake_trt, "ixrt" if generation == "ixrt" else "tensorrt", device_name="Fake GPU 80GB")


@pytest.fixture
def onnx_fp32(tmp_path):
    return _tiny_onnx(tmp_path / "model.sim.onnx", np.float32)


@pytest.fixture
def onnx_fp16(tmp_path):
    return _tiny_onnx(tmp_path / "model.sim.fp16.onnx", np.float16)


@pytest.fixture
def onnx_file(lib, onnx_fp32, onnx_fp16):
    """The graph an fp16 engine is built from on this generation (trt_fp16 when strongly typed)."""
    return onnx_fp16 if lib.api.typing == "strong" else onnx_fp32


def _calls(fake, kind):
    return fake._state.of(kind)


def _spec(plan):
    """The build record a stand-in plan carries (trt_standin.read_plan: TensorRT's preamble, MAGIC, header
    length, JSON header, the graph it runs)."""
    spec, _ = read_plan(bytes(plan))
    return spec


# ---------------------------------------------------------------------------------------------
# Profile maths
# ---------------------------------------------------------------------------------------------
def test_default_profile_covers_the_reference_shapes():
    p = ShapeProfile()
    assert p.triplet() == ((1, 1), (16, 384), (16, 384))
    assert p.contains(16, 384) and p.contains(1, 16)
    assert not p.contains(17, 384) and not p.contains(16, 385)


def test_profile_covering_requested_sizes():
    p = ShapeProfile.covering([16, 1, 4], [384, 128])
    assert (p.min_batch, p.opt_batch, p.max_batch) == (1, 16, 16)
    assert (p.min_seq, p.opt_seq, p.max_seq) == (128, 384, 384)
    tuned = ShapeProfile.covering([1, 16], [384], opt_batch=1, min_seq=16)
    assert tuned.opt_batch == 1 and tuned.min_seq == 16
    assert set(p.input_shapes()) == set(INPUT_NAMES)


@pytest.mark.parametrize("kw", [dict(min_batch=0), dict(min_batch=8, opt_batch=4), dict(opt_seq=512),
                                dict(min_seq=400)])
def test_inconsistent_profiles_are_refused(kw):
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeProfile(**kw)


def test_shape_check_names_the_profile():
    p = ShapeProfile(max_batch=16, opt_batch=8)
    p.check(16, 384)
    with pytest.raises(ShapeOutsideProfile, match=r"batch=32, seq=384.*batch 1\.\.16"):
        p.check(32, 384)
    with pytest.raises(ShapeOutsideProfile):
        p.check(1, 512)


# ---------------------------------------------------------------------------------------------
# Keys and cache
# ---------------------------------------------------------------------------------------------
BASE_KEY = dict(onnx_sha256="a" * 64, trt_version="10.3.0", gpu_name="Fake GPU", precision="fp16",
                profile=ShapeProfile(), flavour="tensorrt")


@pytest.mark.parametrize("field, other", [("onnx_sha256", "b" * 64), ("trt_version", "10.4.0"),
                                          ("gpu_name", "Other GPU"), ("precision", "fp32"),
                                          ("profile", ShapeProfile(max_batch=32, opt_batch=32)),
                                          ("flavour", "ixrt"), ("typing", "strong"),
                                          ("graph", "model.sim.fp16.onnx"),
                                          ("build_settings", (("builder_flags", ("TF32",)),))])
def test_every_key_field_changes_the_key(field, other):
    a, b = EngineKey(**BASE_KEY), EngineKey(**{**BASE_KEY, field: other})
    assert a.digest() != b.digest() and a.stem() != b.stem()
    assert EngineKey(**BASE_KEY).digest() == a.digest()   # and it is stable


def test_stem_is_readable():
    assert EngineKey(**BASE_KEY).stem().startswith("tensorrt-fp16-b16-s384-")


def test_cache_round_trip_and_corruption(tmp_path):
    cache, key = EngineCache(tmp_path), EngineKey(**BASE_KEY)
    assert cache.lookup(key) is None
    cache.store(key, b"plan-bytes", build_seconds=1.5)
    assert cache.lookup(key) == b"plan-bytes"
    meta = json.loads(cache.meta_path(key).read_text())
    assert meta["key"]["gpu_name"] == "Fake GPU" and meta["plan_bytes"] == 10
    # a truncated plan fails its sha256 and the entry is discarded
    cache.plan_path(key).write_bytes(b"plan-")
    assert cache.lookup(key) is None
    assert not cache.plan_path(key).exists() and not cache.meta_path(key).exists()


def test_cache_rejects_unreadable_or_foreign_metadata(tmp_path):
    cache, key = EngineCache(tmp_path), EngineKey(**BASE_KEY)
    cache.store(key, b"x")
    cache.meta_path(key).write_text("{not json")
    assert cache.lookup(key) is None
    cache.store(key, b"x")
    other = EngineKey(**{**BASE_KEY, "gpu_name": "Other"})
    cache.meta_path(key).write_text(json.dumps({"key": other.as_dict(), "plan_sha256": "0"}))
    assert cache.lookup(key) is None
    cache.store(key, b"x")
    cache.plan_path(key).unlink()
    assert cache.lookup(key) is None


# ---------------------------------------------------------------------------------------------
# Build and load
# ---------------------------------------------------------------------------------------------
def test_build_uses_each_generations_builder_calls(generation, fake_trt, lib, onnx_file, onnx_fp32):
    exp = EXPECTED[generation]
    assert (lib.api.typing, lib.api.network_flags, lib.api.io) == (exp["typing"], exp["network_flags"], exp["io"])
    profile = ShapeProfile.covering([1, 16], [64, 384])
    spec = _spec(lib.build(onnx_file, profile, "fp16"))
    assert spec["precision"] == "fp16"                                       # what TensorRT really built
    # ixRT: no memory-pool API (no public ixRT code calls it); every TensorRT: the workspace asked for
    assert spec["workspace"] == (None if generation == "ixrt" else lib.workspace_bytes)
    assert spec["strongly_typed"] == (exp["typing"] == "strong")
    assert spec["profile"] == {n: [[1, 64], [16, 384], [16, 384]] for n in INPUT_NAMES}
    assert _calls(fake_trt, "create_network") == [("create_network", exp["network_flags"])]
    # weak typing asks for fp16 kernels with the flag; strong typing sets no precision flag at all
    assert _calls(fake_trt, "build") == [("build", ["FP16"] if exp["typing"] == "weak" else [])]
    assert _calls(fake_trt, "parse") == [("parse", str(onnx_file))]
    assert _spec(lib.build(onnx_fp32, profile, "fp32"))["precision"] == "fp32"
    with pytest.raises(ValueError, match="engine precision"):
        lib.build(onnx_file, profile, "int8")


@pytest.mark.parametrize("generation", ["trt10", "trt11"])
def test_strongly_typed_fp16_from_an_fp32_graph_is_refused(generation, lib, fake_trt, onnx_fp32, onnx_fp16, tmp_path):
    """Without the check TensorRT would silently build an fp32 engine the cache labels fp16."""
    with pytest.raises(PrecisionMismatch, match=r"model\.sim\.onnx.*strongly typed.*0% of float weights fp16.*"
                                                r"'trt_fp16'") as exc:
        lib.build(onnx_fp32, ShapeProfile(), "fp16")
    assert "\n" not in str(exc.value)
    with pytest.raises(PrecisionMismatch, match="is fp16"):                      # and the other way round
        load_or_build_engine(lib, onnx_fp16, ShapeProfile(), "fp32", EngineCache(tmp_path / "engines"))
    assert _calls(fake_trt, "build") == [] and not (tmp_path / "engines").exists()   # refused before any build
    # the same fp32 graph is fine for an fp32 engine, and the fp16 graph for an fp16 one
    assert _spec(lib.build(onnx_fp32, ShapeProfile(), "fp32"))["precision"] == "fp32"
    assert _spec(lib.build(onnx_fp16, ShapeProfile(), "fp16"))["precision"] == "fp16"


@pytest.mark.parametrize("generation", ["trt8", "trt8-bindings"])
def test_weak_typing_builds_fp16_from_the_fp32_graph(generation, lib, onnx_fp32):
    assert _spec(lib.build(onnx_fp32, ShapeProfile(), "fp16"))["precision"] == "fp16"


def test_derived_fakes_catch_an_unguarded_removed_api(onnx_fp32, monkeypatch):
    """Planted bad: a builder that set BuilderFlag.FP16 regardless of typing dies on 11.4's
    member list (as it would on a real TensorRT 11), while 10.13 still has the flag."""
    from albert_ixrt.trt_api import TrtApi

    monkeypatch.setattr(TrtApi, "uses_fp16_flag", property(lambda self: True))
    monkeypatch.setattr("albert_ixrt.engine.check_engine_precision", lambda *a, **k: None)
    with pytest.raises(AttributeError, match="FP16"):
        TrtLibrary(make_fake_trt("trt11")).build(onnx_fp32, ShapeProfile(), "fp16")
    # 10.13 has the flag, and its builder refuses it on a strongly typed network (the graph decides)
    with pytest.raises(AlbertIxrtError, match="could not build an engine"):
        TrtLibrary(make_fake_trt("trt10")).build(onnx_fp32, ShapeProfile(), "fp16")


def test_parser_and_builder_failures_are_one_clear_error(generation, onnx_fp32):
    flavour = "ixrt" if generation == "ixrt" else "tensorrt"
    with pytest.raises(AlbertIxrtError, match="ONNX parser failed: Unsupported op: NonMaxSuppression"):
        TrtLibrary(make_fake_trt(generation, parse_ok=False), flavour).build(onnx_fp32, ShapeProfile(), "fp32")
    with pytest.raises(AlbertIxrtError, match="could not build an engine"):
        TrtLibrary(make_fake_trt(generation, build_ok=False), flavour).build(onnx_fp32, ShapeProfile(), "fp32")


def test_second_load_comes_from_the_cache(fake_trt, lib, onnx_file, tmp_path):
    cache = EngineCache(tmp_path / "engines")
    engine, info = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info.source == "built" and info.plan_path.is_file()
    engine2, info2 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info2.source == "cache" and info2.key == info.key
    assert len(_calls(fake_trt, "build")) == 1
    # another profile, precision or ONNX content is another engine
    load_or_build_engine(lib, onnx_file, ShapeProfile(max_batch=32, opt_batch=32), "fp16", cache)
    import onnx

    model = onnx.load(str(onnx_file))                                                 # same precision, ...
    model.graph.node[0].name = "changed"                                              # ... another graph
    onnx.save(model, str(onnx_file))
    _, info5 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info5.source == "built" and len(_calls(fake_trt, "build")) == 3
    meta = json.loads(info5.plan_path.with_suffix(".json").read_text())
    assert meta["key"]["typing"] == lib.api.typing and meta["key"]["graph"] == onnx_file.name
    assert meta["api"]["network_flags"] == lib.api.network_flags


def test_plan_that_does_not_deserialize_is_rebuilt(fake_trt, lib, onnx_file, tmp_path):
    cache = EngineCache(tmp_path)
    _, info = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    # bytes intact as far as the sidecar knows (re-stored), but TensorRT rejects them
    cache.store(info.key, b"garbage from another TensorRT build")
    engine, info2 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info2.source == "rebuilt (corrupt cache entry)"
    assert engine._spec["precision"] == "fp16"
    assert MAGIC in cache.lookup(info.key)[:64] and read_plan(cache.lookup(info.key))[0] is not None


def test_truncated_plan_is_rebuilt(fake_trt, lib, onnx_file, tmp_path):
    cache = EngineCache(tmp_path)
    _, info = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    info.plan_path.write_bytes(info.plan_path.read_bytes()[:5])
    _, info2 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info2.source == "built" and len(_calls(fake_trt, "build")) == 2


def test_missing_onnx_is_a_user_error(lib, tmp_path):
    with pytest.raises(AlbertIxrtError, match="ONNX file not found"):
        load_or_build_engine(lib, tmp_path / "nope.onnx", ShapeProfile(), "fp16", EngineCache(tmp_path))


# ---------------------------------------------------------------------------------------------
# Loading the library
# ---------------------------------------------------------------------------------------------
def test_version_parsing():
    assert major_version("10.3.0.26") == 10 and major_version("8.6.1") == 8 and major_version("dev") == 0


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_generation_passes_the_gate_by_capability(generation, monkeypatch):
    """TensorRT 11 included: no version gate, only what the module can do."""
    import albert_ixrt.engine as engine

    fake = make_fake_trt(generation)
    monkeypatch.setattr(engine, "import_tensorrt", lambda flavour: fake)
    monkeypatch.setattr(engine, "load_plugin_library", lambda path, flavour="ixrt": None)
    lib = TrtLibrary.load("ixrt" if generation == "ixrt" else "tensorrt")
    assert lib.api.typing == EXPECTED[generation]["typing"] and _calls(fake, "init_plugins") == [("init_plugins", "")]


def test_a_module_without_a_usable_api_is_unavailable_with_reason(monkeypatch):
    """Planted bad: 8.6's list without execute_v2 nor the tensor-address API cannot run engines."""
    import albert_ixrt.engine as engine

    fake = make_fake_trt("trt8-bindings", remove={"IExecutionContext": {"execute_v2"}})
    monkeypatch.setattr(engine, "import_tensorrt", lambda flavour: fake)
    with pytest.raises(BackendUnavailable, match="neither tensor addresses.*nor bindings") as exc:
        TrtLibrary.load("tensorrt")
    assert "\n" not in exc.value.reason


def test_ixrt_loads_its_plugin_library_before_the_registry(monkeypatch, tmp_path):
    import albert_ixrt.engine as engine

    fake = make_fake_trt("trt8")
    fake.__file__ = str(tmp_path / "tensorrt" / "__init__.py")
    monkeypatch.setattr(engine, "import_tensorrt", lambda flavour: fake)
    monkeypatch.setattr(engine, "load_plugin_library",
                        lambda path, flavour="ixrt": fake._state.calls.append(("plugin", path)))
    monkeypatch.setenv("IXRT_PLUGIN_PATH", "/opt/ixrt/lib/libixrt_plugin.so")
    lib = TrtLibrary.load("ixrt")
    assert [c[0] for c in fake._state.calls] == ["plugin", "init_plugins"] and lib.flavour == "ixrt"
    assert _calls(fake, "plugin") == [("plugin", "/opt/ixrt/lib/libixrt_plugin.so")]
    beside = tmp_path / "tensorrt" / "lib" / "libixrt_plugin.so"      # ixRT's own install layout wins
    beside.parent.mkdir(parents=True)
    beside.write_bytes(b"")
    TrtLibrary.load("ixrt")
    assert _calls(fake, "plugin")[-1] == ("plugin", str(beside.resolve()))
    TrtLibrary.load("ixrt", plugin_path="/x/libmine.so")
    assert _calls(fake, "plugin")[-1] == ("plugin", "/x/libmine.so")


def test_plugin_path_precedence(monkeypatch, tmp_path):
    import types as _types

    trt = _types.SimpleNamespace(__file__=str(tmp_path / "tensorrt" / "__init__.py"))
    monkeypatch.delenv("IXRT_PLUGIN_PATH", raising=False)
    assert resolve_plugin_path(None, trt) == "libixrt_plugin.so"
    monkeypatch.setenv("IXRT_PLUGIN_PATH", "/env/lib.so")
    assert resolve_plugin_path(None, trt) == "/env/lib.so"
    beside = tmp_path / "tensorrt" / "lib" / "libixrt_plugin.so"
    beside.parent.mkdir(parents=True)
    beside.write_bytes(b"")
    assert resolve_plugin_path(None, trt) == str(beside.resolve())
    assert resolve_plugin_path(None) == "/env/lib.so"                     # no module known: env, soname
    assert resolve_plugin_path("/opt/lib.so", trt) == "/opt/lib.so"


def test_missing_plugin_library_is_unavailable(tmp_path):
    with pytest.raises(BackendUnavailable, match="IXRT_PLUGIN_PATH"):
        load_plugin_library(str(tmp_path / "libixrt_plugin.so"))


@pytest.mark.parametrize("backend", ["tensorrt", "ixrt"])
def test_create_runner_without_tensorrt_is_a_one_line_skip(backend, onnx_file):
    from albert_ixrt.runners import create_runner

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: the unavailable path cannot be exercised")
    with pytest.raises(BackendUnavailable) as exc:
        create_runner(backend, onnx_path=onnx_file)
    assert exc.value.backend == backend and "\n" not in exc.value.reason and "tensorrt" in exc.value.reason


# ---------------------------------------------------------------------------------------------
# The runner over the fake engine (CPU torch tensors stand in for CUDA buffers)
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake_runner(lib, onnx_file, tmp_path):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    return TensorRTRunner(onnx_file, precision="fp16", profile=ShapeProfile.covering([1, 8], [8, 64]),
                          cache_dir=tmp_path / "engines", library=lib, device="cpu")


def _feed(batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, seq))
    mask = np.ones_like(ids)
    mask[:, seq - 3:] = 0
    types = np.zeros_like(ids)
    types[:, seq // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.mark.parametrize("batch, seq", [(1, 8), (8, 64), (3, 17)])
def test_runner_binds_every_tensor(generation, fake_runner, fake_trt, batch, seq):
    feed = _feed(batch, seq, seed=batch)
    start, end = fake_runner.infer(feed)
    io = EXPECTED[generation]["io"]
    assert fake_runner.binding.style == io
    assert len(_calls(fake_trt, "execute_v2" if io == "bindings" else "execute_async_v3")) == 1
    assert not _calls(fake_trt, "execute_async_v3" if io == "bindings" else "execute_v2")
    assert start.dtype == np.float32 and start.shape == (batch, seq)
    ref_start, ref_end = qa_reference(feed)   # the engine ran the graph (fp16 here: fp16 tolerance)
    np.testing.assert_allclose(start, ref_start, atol=0.05, rtol=0.01)
    np.testing.assert_allclose(end, ref_end, atol=0.05, rtol=0.01)
    assert np.abs(start - ref_start).max() > 0 or fake_runner.engine._spec["precision"] == "fp32"


def test_runner_converts_to_the_engine_input_dtype(generation, fake_runner):
    import torch

    tensors = fake_runner.to_device(_feed(2, 8))
    ints = {"int32": torch.int32, "int64": torch.int64}[EXPECTED[generation]["ints"]]
    assert all(t.dtype == ints for t in tensors)   # INT64 inputs on 10 / 11, INT32 on 8.x / ixRT
    start, _ = fake_runner.infer_tensors(tensors)
    fake_runner.synchronize()
    assert start.dtype == torch.float32


def test_runner_returns_any_engine_output_by_name(fake_runner):
    """infer_outputs (layerwise reads hidden states marked as engine outputs): every output by
    default, the ones named otherwise, and a name the engine lacks refused in one line."""
    from albert_ixrt.errors import BackendUnavailable

    feed = _feed(2, 8)
    every = fake_runner.infer_outputs(feed)
    assert list(every) == ["start_logits", "end_logits"]
    np.testing.assert_allclose(every["end_logits"], qa_reference(feed)[1], atol=0.05, rtol=0.01)
    assert list(fake_runner.infer_outputs(feed, ["end_logits"])) == ["end_logits"]
    with pytest.raises(BackendUnavailable, match=r"engine has no outputs \['layer_7'\]"):
        fake_runner.infer_outputs(feed, ["layer_7"])


def test_runner_refuses_shapes_outside_its_profile(fake_runner):
    with pytest.raises(ShapeOutsideProfile, match="batch=9"):
        fake_runner.infer(_feed(9, 8))
    with pytest.raises(ShapeOutsideProfile, match="seq=65"):
        fake_runner.infer(_feed(1, 65))


def test_runner_describes_engine_and_profile(fake_runner, tmp_path):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    d = fake_runner.describe()
    assert d["backend"] == "tensorrt" and d["precision"] == "fp16" and d["device"] == "Fake GPU 80GB"
    assert d["engine_source"] == "built" and d["profile"]["max_batch"] == 8
    assert d["tensorrt"] == d["emulated"] == f"emulated TensorRT {fake_runner.lib.trt.__version__} (onnxruntime)"
    assert d["typing"] == fake_runner.lib.api.typing
    assert d["graph"] == Path(fake_runner.onnx_path).name and d["io"] == fake_runner.binding.style
    again = TensorRTRunner(fake_runner.onnx_path, precision="fp16", profile=fake_runner.profile,
                           cache_dir=tmp_path / "engines", library=fake_runner.lib, device="cpu")
    assert again.describe()["engine_source"] == "cache"


def test_runner_refuses_int8(lib, onnx_file):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    with pytest.raises(BackendUnavailable, match="precision 'int8'"):
        TensorRTRunner(onnx_file, precision="int8", library=lib)


def test_engine_without_the_qa_tensors_is_refused(lib, onnx_file, tmp_path, monkeypatch):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    wrong = lambda self, i: ["x", "y", "z", "a", "b"][i]  # noqa: E731
    name_api = "get_binding_name" if lib.api.io == "bindings" else "get_tensor_name"
    monkeypatch.setattr(lib.trt.ICudaEngine, name_api, wrong)
    monkeypatch.setattr(lib.trt.ICudaEngine, "_dtype", lambda self, name: lib.trt.DataType.FLOAT)
    with pytest.raises(BackendUnavailable, match="engine lacks tensors"):
        TensorRTRunner(onnx_file, library=lib, cache_dir=tmp_path, device="cpu")


@pytest.mark.parametrize("generation", ["trt11"])
def test_bench_times_the_fake_engine_with_and_without_copies(generation, fake_runner, dev_features):
    """The GPU branch of the benchmark (two figures, pipelined throughput) on the stand-in engine, once
    the stand-in is told to pass for a real engine; as itself, its timings are refused (both ways)."""
    from albert_ixrt.bench import BenchSettings, run_benchmark

    settings = BenchSettings(batch_sizes=(1, 8), seq_lens=(64,), warmup=1, iterations=3, transfers="auto")
    with pytest.raises(AlbertIxrtError, match=r"emulated TensorRT 11\.4.*\(onnxruntime\): refusing to time"):
        run_benchmark(fake_runner, dev_features[:8], settings, vocab_size=VOCAB)
    fake_runner.lib.emulated = None
    report = run_benchmark(fake_runner, dev_features[:8], settings, vocab_size=VOCAB)
    assert [(r.batch_size, r.transfer) for r in report.results] == [
        (1, "with_copies"), (1, "device_only"), (8, "with_copies"), (8, "device_only")]
    assert all(r.throughput_method.startswith("back-to-back") for r in report.results)
    assert fake_runner.engine._executions >= 4 * (1 + 3)
