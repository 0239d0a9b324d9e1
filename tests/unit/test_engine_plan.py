"""A prebuilt engine plan as the subject (albert_ixrt.engine_plan, TensorRTRunner.from_plan), against the TensorRT
stand-in (tests/support/trt_standin.py), whose plans carry TensorRT's documented preamble and whose runtime
refuses another version's plan or bytes that are no plan, as TensorRT's does.  Every check both ways: a
plan that passes and runs, and one refused in one line naming the file and the offending tensor, shape or
version.  Plus: engine outputs are read in the type the engine declares (fp16 outputs of a strongly typed
fp16 graph), converted to float32 only afterwards."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from albert_ixrt.engine import ShapeOutsideProfile, ShapeProfile, TrtLibrary
from albert_ixrt.errors import InputFileError
from albert_ixrt.engine_plan import (PLAN_TAG, PlanRefused, check_plan_covers, load_plan, plan_header_version,
                              same_version)
from trt_fakes import VOCAB, make_fake_trt, qa_onnx, qa_reference

#: label -> the version its plans' header carries (None: ixRT writes no TensorRT preamble).
HEADER_VERSIONS = {"8.6": "8.6.1.0", "trt8-bindings": "8.6.1.0", "ixrt": None, "10.13-weak": "10.13.3.9",
                   "10.13-strong": "10.13.3.9", "11.4": "11.4.0.106"}


def _lib(label):
    return TrtLibrary(make_fake_trt(label), "ixrt" if label == "ixrt" else "tensorrt", device_name="Fake GPU")


def _plan(label, tmp_path, profile=None, half_outputs=False, rename=None, name="model.plan"):
    """(library, plan file): the tiny QA graph built into an fp16 plan by ``label``'s stand-in and saved."""
    lib = _lib(label)
    strong = lib.api.typing == "strong"
    onnx = qa_onnx(tmp_path / f"{name}.onnx", np.float16 if strong else np.float32, half_outputs, rename)
    plan = lib.build(onnx, profile or ShapeProfile.covering([1, 8], [4, 64]), "fp16",
                     input_names=[(rename or {}).get(n, n) for n in ("input_ids", "attention_mask", "token_type_ids")])
    path = tmp_path / name
    path.write_bytes(plan)
    return lib, path


def _feed(batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, seq))
    mask = np.ones_like(ids)
    mask[:, seq - 2:] = 0
    types = (np.arange(seq) >= seq // 2) * np.ones_like(ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# ---------------------------------------------------------------------------------------------
# The plan header (TensorRT's preamble, as trtexec --getPlanVersionOnly reads it)
# ---------------------------------------------------------------------------------------------
def test_plan_header_version_reads_tensorrts_preamble_only():
    real = struct.pack("<II16x4B", PLAN_TAG, 0, 10, 13, 3, 9) + b"rest of the plan"
    assert plan_header_version(real) == "10.13.3.9"
    assert plan_header_version(real[:27]) is None                                  # too short
    assert plan_header_version(struct.pack("<II16x4B", PLAN_TAG, 7, 10, 13, 3, 9)) is None   # unknown layout
    assert plan_header_version(b"\x7fELF" + bytes(40)) is None                        # not a plan
    assert same_version("8.6.1", "8.6.1.0") and not same_version("10.13.3.9", "11.4.0.106")


# ---------------------------------------------------------------------------------------------
# Good plans load, run and match the graph
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", list(HEADER_VERSIONS))
def test_a_saved_plan_loads_checks_and_runs(label, tmp_path):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    lib, path = _plan(label, tmp_path)
    runner = TensorRTRunner.from_plan(path, lib.flavour, library=lib, device="cpu")
    info = runner.plan_info
    assert info.plan_version == HEADER_VERSIONS[label] and info.path == path and info.profiles == 1
    assert info.precision == "unknown" and "float32 outputs" in info.precision_source   # fp32 I/O does not tell
    ints = "int32" if label in ("8.6", "trt8-bindings", "ixrt") else "int64"           # INT64 from TensorRT 10
    assert {info.tensors[n].dtype.name for n in ("input_ids", "attention_mask", "token_type_ids")} == {ints}
    assert runner.describe()["io_dtypes"]["input_ids"] == ints
    assert runner.profile == ShapeProfile.covering([1, 8], [4, 64])
    feed = _feed(3, 17)
    start, end = runner.infer(feed)
    ref_start, ref_end = qa_reference(feed)
    np.testing.assert_allclose(start, ref_start, atol=0.05, rtol=0.01)
    np.testing.assert_allclose(end, ref_end, atol=0.05, rtol=0.01)
    d = runner.describe()
    assert d["engine_source"] == "prebuilt plan" and d["engine"] == str(path) and d["emulated"] == d["tensorrt"]
    assert d["plan_tensorrt_version"] == HEADER_VERSIONS[label] and d["precision"] == "unknown"
    stated = TensorRTRunner.from_plan(path, lib.flavour, precision="fp16", library=lib, device="cpu")
    assert stated.precision == "fp16" and stated.plan_info.precision_source.startswith("stated by the caller")


def test_the_runner_factory_takes_a_plan(tmp_path):
    from albert_ixrt.errors import BackendUnavailable
    from albert_ixrt.runners import create_runner

    lib, path = _plan("11.4", tmp_path)
    runner = create_runner("tensorrt", plan=path, precision=None, library=lib, device="cpu")
    assert runner.plan_info.path == path and runner.precision == "unknown"
    with pytest.raises(BackendUnavailable, match=r"needs an ONNX file \(onnx_path\) or a prebuilt plan \(plan\)"):
        create_runner("tensorrt", library=lib)


# ---------------------------------------------------------------------------------------------
# The QA interface
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["11.4", "8.6"])
@pytest.mark.parametrize("rename, names", [
    ({"input_ids": "ids"}, "has no input 'input_ids' (the QA interface takes input_ids, attention_mask, "
                           "token_type_ids; the engine's inputs are ['ids', 'attention_mask', 'token_type_ids'])"),
    ({"end_logits": "logits_end"}, "has no output 'end_logits'"),
])
def test_a_plan_that_is_not_the_qa_interface_is_refused_naming_the_tensor(label, rename, names, tmp_path):
    lib, path = _plan(label, tmp_path, rename=rename)
    with pytest.raises(PlanRefused) as err:
        load_plan(path, lib.flavour, library=lib)
    assert str(err.value) == f"{path}: {names}" or str(err.value).startswith(f"{path}: {names}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("output_type", ["FLOAT", "BF16"])
def test_an_engine_tensor_numpy_cannot_hold_is_refused_naming_it(output_type):
    """tensorrt.nptype raises TypeError for BF16 / FP8: a plan with such I/O is one line, not a traceback."""
    from types import SimpleNamespace

    from albert_ixrt.engine_plan import engine_tensors

    def nptype(t):
        if t not in ("FLOAT", "INT32"):
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
        return {"FLOAT": np.float32, "INT32": np.int32}[t]

    names, types = ["input_ids", "start_logits"], {"input_ids": "INT32", "start_logits": output_type}
    trt = SimpleNamespace(nptype=nptype, TensorIOMode=SimpleNamespace(INPUT="input"))
    engine = SimpleNamespace(num_io_tensors=2, get_tensor_name=names.__getitem__, get_tensor_dtype=types.get,
                             get_tensor_mode=lambda n: "input" if n == "input_ids" else "output",
                             get_tensor_shape=lambda n: (-1, -1))
    api = SimpleNamespace(uses_tensor_addresses=True)
    if output_type == "FLOAT":
        assert engine_tensors(trt, engine, api)["start_logits"].dtype == np.float32
    else:
        with pytest.raises(PlanRefused, match="engine tensor 'start_logits' is BF16, which numpy cannot hold"):
            engine_tensors(trt, engine, api)


def test_qa_io_problems_name_type_and_rank():
    from albert_ixrt.engine_plan import TensorInfo, qa_io_problem

    def io(**change):
        t = {n: TensorInfo(n, True, np.dtype(np.int32), (-1, -1), i)
             for i, n in enumerate(("input_ids", "attention_mask", "token_type_ids"))}
        t.update({n: TensorInfo(n, False, np.dtype(np.float32), (-1, -1), 3 + i)
                  for i, n in enumerate(("start_logits", "end_logits"))})
        for name, (dtype, shape, is_input) in change.items():
            t[name] = TensorInfo(name, is_input, np.dtype(dtype), shape, 9)
        return t

    assert qa_io_problem(io()) is None
    assert qa_io_problem(io(attention_mask=(np.float32, (-1, -1), True))) == (
        "input 'attention_mask' is float32 of shape [-1, -1]; the QA interface needs integer [batch, seq]")
    assert qa_io_problem(io(token_type_ids=(np.int64, (-1, -1, 1), True))).startswith(
        "input 'token_type_ids' is int64 of shape [-1, -1, 1]")
    assert qa_io_problem(io(start_logits=(np.float16, (-1, -1, 2), False))).startswith(
        "output 'start_logits' is float16")
    assert qa_io_problem(io(position_ids=(np.int64, (-1, -1), True))).startswith("takes inputs ['position_ids']")


# ---------------------------------------------------------------------------------------------
# The profile against the shapes a session feeds
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["11.4", "trt8-bindings", "ixrt"])
def test_a_profile_too_small_for_the_session_is_named(label, tmp_path):
    lib, path = _plan(label, tmp_path, profile=ShapeProfile(min_batch=1, opt_batch=4, max_batch=4, min_seq=8,
                                                            opt_seq=64, max_seq=64))
    engine, info = load_plan(path, lib.flavour, library=lib)
    check_plan_covers(engine, {4, 2}, 64, api=lib.api, plan=path, min_seq=8)      # what it was built for
    with pytest.raises(ShapeOutsideProfile) as err:
        check_plan_covers(engine, {8}, 384, api=lib.api, plan=path)
    assert str(err.value) == (
        f"{path}: input 'input_ids' accepts batch 1..4 x seq 8..64 (profile 0 of 1: min [1, 8], max [4, 64]), but "
        "the session feeds batch 1..8 x seq 1..384: batch 5..8 and seq 1..7, 65..384 cannot run")
    with pytest.raises(ShapeOutsideProfile, match=r"input 'input_ids' .*: batch 5\.\.16 cannot run$"):
        check_plan_covers(engine, {16}, 64, api=lib.api, plan=path, min_seq=8)
    with pytest.raises(ShapeOutsideProfile, match=r"seq 65 cannot run$"):
        check_plan_covers(engine, {4}, 65, api=lib.api, plan=path, min_seq=8)


def test_the_runner_checks_its_own_engine(tmp_path):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    lib, path = _plan("11.4", tmp_path)
    runner = TensorRTRunner.from_plan(path, library=lib, device="cpu")
    runner.check_covers({8}, 64, min_seq=4)
    with pytest.raises(ShapeOutsideProfile, match=f"^{path}: input 'input_ids' .*batch 9..16 cannot run"):
        runner.check_covers({16}, 64, min_seq=4)


# ---------------------------------------------------------------------------------------------
# Plans the runtime refuses
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("built_by, loaded_by, line", [
    ("10.13-strong", "11.4", "built with TensorRT 10.13.3.9 (plan header), but the runtime here is TensorRT "
                             "11.4.0.106, which cannot deserialize it; rebuild the plan with TensorRT 11.4.0.106, or "
                             "run it where TensorRT 10.13.3.9 is"),
    ("11.4", "8.6", "built with TensorRT 11.4.0.106 (plan header), but the runtime here is TensorRT 8.6.1"),
    ("8.6", "ixrt", "a TensorRT 8.6.1.0 plan (its header says so), not an ixRT plan; ixRT 8.6.1-ixrt cannot load it"),
    ("ixrt", "8.6", "not a TensorRT engine plan (it does not start with the 'ftrt' tag every TensorRT plan starts "
                    "with); TensorRT 8.6.1 could not deserialize it"),
])
def test_another_versions_plan_names_both_versions(built_by, loaded_by, line, tmp_path):
    _, path = _plan(built_by, tmp_path)
    lib = _lib(loaded_by)
    lib.trt._state.echo_log = False
    with pytest.raises(PlanRefused) as err:
        load_plan(path, lib.flavour, library=lib)
    assert str(err.value).startswith(f"{path}: {line}") and "\n" not in str(err.value)
    if loaded_by != "ixrt" and built_by != "ixrt":   # the runtime's own words went to its logger
        assert any("expecting library version" in m for m in lib.trt._state.warnings())


@pytest.mark.parametrize("label", ["11.4", "ixrt"])
def test_files_that_are_no_plan_are_one_line(label, tmp_path):
    lib = _lib(label)
    lib.trt._state.echo_log = False
    garbage, empty = tmp_path / "garbage.plan", tmp_path / "empty.plan"
    garbage.write_bytes(b"\x7fELF" + bytes(range(200)))
    empty.write_bytes(b"")
    with pytest.raises(PlanRefused) as err:
        load_plan(garbage, lib.flavour, library=lib)
    expected = ("not a TensorRT engine plan" if label == "11.4"
                else "ixRT 8.6.1-ixrt could not deserialize it: not an ixRT plan, or one built by another ixRT version")
    assert str(err.value).startswith(f"{garbage}: {expected}") and "\n" not in str(err.value)
    assert lib.trt._state.warnings()[-1].endswith("(Engine deserialization failed.)" if label == "11.4"
                                                  else "h->magic == IXRT_MAGIC_NUMBER")
    with pytest.raises(PlanRefused, match=f"^{empty}: empty file, not an engine plan$"):
        load_plan(empty, lib.flavour, library=lib)
    with pytest.raises(InputFileError, match="missing.plan: engine plan not found"):
        load_plan(tmp_path / "missing.plan", lib.flavour, library=lib)


def test_a_corrupt_plan_of_this_version_is_told_apart(tmp_path):
    lib, path = _plan("11.4", tmp_path)
    lib.trt._state.echo_log = False
    path.write_bytes(path.read_bytes()[:-40])          # header intact, the engine body cut short
    with pytest.raises(PlanRefused, match="could not deserialize it although its header says TensorRT 11.4.0.106: "
                                          "a plan built for another GPU model, or a corrupt one"):
        load_plan(path, library=lib)


# ---------------------------------------------------------------------------------------------
# Outputs read in the type the engine declares
# ---------------------------------------------------------------------------------------------
def _fp16_output_runner(tmp_path):
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    lib, path = _plan("11.4", tmp_path, half_outputs=True)
    return TensorRTRunner.from_plan(path, library=lib, device="cpu")


def test_fp16_engine_outputs_are_read_as_fp16_then_converted(tmp_path):
    """A strongly typed fp16 graph that ends in fp16: the engine's outputs are HALF, the runner allocates
    them as float16, the precision is read from them, and the host arrays are float32 afterwards."""
    runner = _fp16_output_runner(tmp_path)
    assert runner.plan_info.precision == "fp16" and runner.plan_info.precision_source == "the engine's outputs are fp16"
    assert runner.describe()["io_dtypes"]["start_logits"] == "float16"
    feed = _feed(4, 32)
    start, end = runner.infer(feed)
    assert start.dtype == np.float32 and end.dtype == np.float32
    ref_start, ref_end = qa_reference(feed)
    np.testing.assert_allclose(start, ref_start, atol=0.05, rtol=0.01)
    np.testing.assert_allclose(end, ref_end, atol=0.05, rtol=0.01)
    with pytest.raises(PlanRefused, match="precision fp32 stated, but the engine's outputs are fp16"):
        load_plan(runner.plan_info.path, library=runner.lib, precision="fp32")


def test_reading_fp16_outputs_as_float32_would_be_caught(tmp_path, monkeypatch):
    """Planted bug: output buffers allocated as float32 whatever the engine declares.  The engine writes
    fp16 values into them, and the logits come out wrong, which the reference comparison catches."""
    import torch

    from albert_ixrt.runners import trt_runner

    real = trt_runner.EngineIO.from_engine.__func__

    def float32_outputs(cls, trt, engine, api):
        io = real(cls, trt, engine, api)
        return cls(io.inputs, {n: torch.float32 for n in io.outputs}, io.index)

    monkeypatch.setattr(trt_runner.EngineIO, "from_engine", classmethod(float32_outputs))
    runner = _fp16_output_runner(tmp_path)
    feed = _feed(4, 32)
    start, _ = runner.infer(feed)
    assert not np.allclose(start, qa_reference(feed)[0], atol=0.05, rtol=0.01)


# ---------------------------------------------------------------------------------------------
# End to end: the tiny model's graph -> a plan file -> the loader -> the runner, against onnxruntime
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # converts the tiny model (~10 s on the shared machine)
@pytest.mark.parametrize("label, precision, stage", [("11.4", "fp16", "trt_fp16"),
                                                     ("10.13-weak", "fp32", "simplified")])
def test_the_tiny_models_plan_runs_like_onnxruntime(label, precision, stage, tiny_model, tmp_path):
    """The graph the engine family builds from, built by the stand-in into a plan file, loaded by
    ``TensorRTRunner.from_plan`` and fed a padded batch: the logits equal onnxruntime's on the same graph
    (the emulated engine runs it with onnxruntime: any difference is the loader's or the runner's)."""
    from albert_ixrt import export
    from albert_ixrt.runners import create_runner
    from albert_ixrt.runners.trt_runner import TensorRTRunner

    out = tmp_path / "onnx"
    graph = export.stage_paths(export.convert(tiny_model, out, progress=False), out)[stage]
    lib = _lib(label)
    path = tmp_path / "tiny.plan"
    path.write_bytes(lib.build(graph, ShapeProfile.for_feeds([8], 128), precision))
    runner = TensorRTRunner.from_plan(path, library=lib, device="cpu", precision=precision)
    # fp32 outputs either way (the fp16 graph keeps fp32 I/O): the precision is the one stated
    assert runner.precision == precision and runner.plan_info.precision_source.startswith("stated by the caller")
    feed = _feed(8, 128, seed=3)
    reference = create_runner("onnxruntime", onnx_path=graph, precision=precision, device="cpu").infer(feed)
    for got, want in zip(runner.infer(feed), reference):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
