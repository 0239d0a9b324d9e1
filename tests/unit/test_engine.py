"""TensorRT / ixRT engine layer without TensorRT: profile maths, cache keys, the cache's handling
of corrupt entries, the builder's calls, and the runner's tensor-address binding, all against a
fake ``tensorrt`` module whose engine really reads and writes the bound memory."""
from __future__ import annotations

import ctypes
import importlib.util
import json
import types

import numpy as np
import pytest

from albert_ixrt.engine import (EngineCache, EngineKey, ShapeOutsideProfile, ShapeProfile, TrtLibrary,
                                load_or_build_engine, load_plugin_library, major_version, resolve_plugin_path)
from albert_ixrt.errors import AlbertIxrtError, BackendUnavailable
from albert_ixrt.model import INPUT_NAMES, OUTPUT_NAMES

# ---------------------------------------------------------------------------------------------
# A fake tensorrt module (TensorRT 10 API surface the project uses)
# ---------------------------------------------------------------------------------------------
MAGIC = b"FAKEPLAN"


def _memory(ptr: int, dtype, shape) -> np.ndarray:
    """A numpy view of ``shape`` elements of ``dtype`` at address ``ptr`` (what a GPU kernel would touch)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = (ctypes.c_byte * (n * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=n).reshape(shape)


class FakeContext:
    def __init__(self, engine):
        self.engine = engine
        self.shapes, self.addresses = {}, {}

    def set_input_shape(self, name, shape):
        assert name in self.engine.inputs, name
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shapes["input_ids"]

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream):
        # start = ids + 0.5 * token_type, end = 2 * mask - ids: every input and output takes part
        shape = self.shapes["input_ids"]
        ins = {n: _memory(self.addresses[n], self.engine.input_dtype, shape).astype(np.float32) for n in INPUT_NAMES}
        _memory(self.addresses["start_logits"], np.float32, shape)[...] = ins["input_ids"] + 0.5 * ins["token_type_ids"]
        _memory(self.addresses["end_logits"], np.float32, shape)[...] = 2 * ins["attention_mask"] - ins["input_ids"]
        self.engine.executions += 1
        return True


class FakeEngine:
    def __init__(self, spec: dict):
        self.spec = spec
        self.input_dtype = np.dtype(spec["input_dtype"])
        self.inputs = list(INPUT_NAMES)
        self.names = [*INPUT_NAMES, *OUTPUT_NAMES]
        self.num_io_tensors = len(self.names)
        self.executions = 0

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return FakeTrt.TensorIOMode.INPUT if name in self.inputs else FakeTrt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return self.spec["input_dtype"] if name in self.inputs else "float32"

    def create_execution_context(self):
        return FakeContext(self)


class FakeTrt(types.SimpleNamespace):
    """Records the builder calls; plans are MAGIC + JSON of what was asked for."""

    TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    BuilderFlag = types.SimpleNamespace(FP16="FP16")
    MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)

    def __init__(self, version="10.3.0", parse_ok=True, build_ok=True, input_dtype="int32"):
        super().__init__()
        self.__version__ = version
        self.calls: list = []
        self.parse_ok, self.build_ok, self.input_dtype = parse_ok, build_ok, input_dtype
        fake = self

        class Logger:
            WARNING = 2

            def __init__(self, level):
                self.level = level

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi):
                self.shapes[name] = [list(lo), list(opt), list(hi)]

        class Config:
            def __init__(self):
                self.flags, self.profiles, self.pool = set(), [], {}

            def set_flag(self, flag):
                self.flags.add(flag)

            def set_memory_pool_limit(self, pool, size):
                self.pool[pool] = size

            def add_optimization_profile(self, p):
                self.profiles.append(p)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                fake.calls.append(("create_network", flags))
                return object()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                fake.calls.append(("build", sorted(config.flags)))
                if not fake.build_ok:
                    return None
                spec = {"fp16": "FP16" in config.flags, "profiles": [p.shapes for p in config.profiles],
                        "workspace": config.pool.get("WORKSPACE"), "input_dtype": fake.input_dtype}
                return MAGIC + json.dumps(spec).encode()

        class OnnxParser:
            num_errors = 1

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                fake.calls.append(("parse", path))
                return fake.parse_ok

            def get_error(self, i):
                return "Unsupported op: NonMaxSuppression"

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, plan):
                fake.calls.append(("deserialize", len(plan)))
                plan = bytes(plan)
                if not plan.startswith(MAGIC):
                    return None
                return FakeEngine(json.loads(plan[len(MAGIC):]))

        self.Logger, self.Builder, self.OnnxParser, self.Runtime = Logger, Builder, OnnxParser, Runtime

    @staticmethod
    def nptype(dtype):
        return np.dtype(dtype).type


@pytest.fixture
def fake_trt():
    return FakeTrt()


@pytest.fixture
def lib(fake_trt):
    return TrtLibrary(fake_trt, "tensorrt", device_name="Fake GPU 80GB")


@pytest.fixture
def onnx_file(tmp_path):
    p = tmp_path / "model.sim.onnx"
    p.write_bytes(b"not really onnx, but the fake parser does not care")
    return p


def _calls(fake, kind):
    return [c for c in fake.calls if c[0] == kind]


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
                                          ("flavour", "ixrt")])
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
def test_build_uses_the_documented_builder_calls(fake_trt, lib, onnx_file):
    profile = ShapeProfile.covering([1, 16], [64, 384])
    plan = lib.build(onnx_file, profile, "fp16")
    spec = json.loads(plan[len(MAGIC):])
    assert spec["fp16"] is True and spec["workspace"] > 0
    assert spec["profiles"] == [{n: [[1, 64], [16, 384], [16, 384]] for n in INPUT_NAMES}]
    assert _calls(fake_trt, "create_network") == [("create_network", 0)]   # TensorRT 10: explicit batch
    assert _calls(fake_trt, "parse") == [("parse", str(onnx_file))]
    fp32 = json.loads(lib.build(onnx_file, profile, "fp32")[len(MAGIC):])
    assert fp32["fp16"] is False
    with pytest.raises(ValueError, match="engine precision"):
        lib.build(onnx_file, profile, "int8")


def test_older_api_gets_the_explicit_batch_flag(onnx_file):
    old = FakeTrt(version="8.6.1")
    TrtLibrary(old, "ixrt").build(onnx_file, ShapeProfile(), "fp16")
    assert _calls(old, "create_network") == [("create_network", 1)]


def test_parser_and_builder_failures_are_one_clear_error(onnx_file):
    with pytest.raises(AlbertIxrtError, match="ONNX parser failed: Unsupported op: NonMaxSuppression"):
        TrtLibrary(FakeTrt(parse_ok=False)).build(onnx_file, ShapeProfile(), "fp16")
    with pytest.raises(AlbertIxrtError, match="could not build an engine"):
        TrtLibrary(FakeTrt(build_ok=False)).build(onnx_file, ShapeProfile(), "fp16")


def test_second_load_comes_from_the_cache(fake_trt, lib, onnx_file, tmp_path):
    cache = EngineCache(tmp_path / "engines")
    engine, info = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info.source == "built" and info.plan_path.is_file()
    engine2, info2 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info2.source == "cache" and info2.key == info.key
    assert len(_calls(fake_trt, "build")) == 1
    # another profile, precision or ONNX content is another engine
    load_or_build_engine(lib, onnx_file, ShapeProfile(max_batch=32, opt_batch=32), "fp16", cache)
    load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp32", cache)
    onnx_file.write_bytes(b"changed graph")
    _, info5 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info5.source == "built" and len(_calls(fake_trt, "build")) == 4


def test_plan_that_does_not_deserialize_is_rebuilt(fake_trt, lib, onnx_file, tmp_path):
    cache = EngineCache(tmp_path)
    _, info = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    # bytes intact as far as the sidecar knows (re-stored), but TensorRT rejects them
    cache.store(info.key, b"garbage from another TensorRT build")
    engine, info2 = load_or_build_engine(lib, onnx_file, ShapeProfile(), "fp16", cache)
    assert info2.source == "rebuilt (corrupt cache entry)"
    assert engine.spec["fp16"] is True
    assert cache.lookup(info.key).startswith(MAGIC)


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


def test_old_tensorrt_is_unavailable_with_reason(monkeypatch):
    import albert_ixrt.engine as engine

    monkeypatch.setattr(engine, "import_tensorrt", lambda flavour: FakeTrt(version="8.6.1"))
    with pytest.raises(BackendUnavailable, match="tensor-address API") as exc:
        TrtLibrary.load("tensorrt")
    assert "\n" not in exc.value.reason


def test_ixrt_loads_its_plugin_library(monkeypatch):
    import albert_ixrt.engine as engine

    loaded = []
    monkeypatch.setattr(engine, "import_tensorrt", lambda flavour: FakeTrt(version="4.3.0"))
    monkeypatch.setattr(engine, "load_plugin_library", lambda path, flavour="ixrt": loaded.append(path))
    monkeypatch.setenv("IXRT_PLUGIN_PATH", "/opt/ixrt/lib/libixrt_plugin.so")
    lib = TrtLibrary.load("ixrt")
    assert loaded == ["/opt/ixrt/lib/libixrt_plugin.so"] and lib.flavour == "ixrt"
    TrtLibrary.load("ixrt", plugin_path="/x/libmine.so")
    assert loaded[-1] == "/x/libmine.so"


def test_plugin_path_precedence(monkeypatch):
    monkeypatch.delenv("IXRT_PLUGIN_PATH", raising=False)
    assert resolve_plugin_path(None) == "libixrt_plugin.so"
    monkeypatch.setenv("IXRT_PLUGIN_PATH", "/env/lib.so")
    assert resolve_plugin_path(None) == "/env/lib.so"
    assert resolve_plugin_path("/opt/lib.so") == "/opt/lib.so"


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
    ids = rng.integers(5, 30000, (batch, seq))
    mask = np.ones_like(ids)
    mask[:, seq - 3:] = 0
    types = np.zeros_like(ids)
    types[:, seq // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.mark.parametrize("batch, seq", [(1, 8), (8, 64), (3, 17)])
def test_runner_binds_every_tensor_by_address(fake_runner, batch, seq):
    feed = _feed(batch, seq, seed=batch)
    start, end = fake_runner.infer(feed)
    assert start.dtype == np.float32 and start.shape == (batch, seq)
    np.testing.assert_array_equal(start, feed["input_ids"] + 0.5 * feed["token_type_ids"])
    np.testing.assert_array_equal(end, 2 * feed["attention_mask"] - feed["input_ids"])


def test_runner_converts_to_the_engine_input_dtype(fake_runner):
    import torch

    tensors = fake_runner.to_device(_feed(2, 8))
    assert all(t.dtype == torch.int32 for t in tensors)   # the fake engine declares int32 inputs
    start, _ = fake_runner.infer_tensors(tensors)
    fake_runner.synchronize()
    assert start.dtype == torch.float32


def test_runner_refuses_shapes_outside_its_profile(fake_runner):
    with pytest.raises(ShapeOutsideProfile, match="batch=9"):
        fake_runner.infer(_feed(9, 8))
    with pytest.raises(ShapeOutsideProfile, match="seq=65"):
        fake_runner.infer(_feed(1, 65))


def test_runner_describes_engine_and_profile(fake_runner, tmp_path):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    d = fake_runner.describe()
    assert d["backend"] == "tensorrt" and d["precision"] == "fp16" and d["device"] == "Fake GPU 80GB"
    assert d["engine_source"] == "built" and d["profile"]["max_batch"] == 8 and d["tensorrt"] == "10.3.0"
    again = TensorRTRunner(fake_runner.onnx_path, precision="fp16", profile=fake_runner.profile,
                           cache_dir=tmp_path / "engines", library=fake_runner.lib, device="cpu")
    assert again.describe()["engine_source"] == "cache"


def test_runner_refuses_int8(lib, onnx_file):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    with pytest.raises(BackendUnavailable, match="precision 'int8'"):
        TensorRTRunner(onnx_file, precision="int8", library=lib)


def test_engine_without_the_qa_tensors_is_refused(lib, onnx_file, tmp_path, monkeypatch):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    monkeypatch.setattr(FakeEngine, "get_tensor_name", lambda self, i: ["x", "y", "z", "a", "b"][i])
    with pytest.raises(BackendUnavailable, match="engine lacks tensors"):
        TensorRTRunner(onnx_file, library=lib, cache_dir=tmp_path, device="cpu")


def test_bench_times_the_fake_engine_with_and_without_copies(fake_runner, dev_features):
    """The GPU branch of the benchmark (two figures, pipelined throughput) on the fake engine."""
    from albert_ixrt.bench import BenchSettings, run_benchmark

    settings = BenchSettings(batch_sizes=(1, 8), seq_lens=(64,), warmup=1, iterations=3, transfers="auto")
    report = run_benchmark(fake_runner, dev_features[:8], settings)
    assert [(r.batch_size, r.transfer) for r in report.results] == [
        (1, "with_copies"), (1, "device_only"), (8, "with_copies"), (8, "device_only")]
    assert all(r.throughput_method.startswith("back-to-back") for r in report.results)
    assert fake_runner.engine.executions >= 4 * (1 + 3)
