"""Every option of every command: refused up front in one line (exit 2, no traceback, no work
done), and documented in --help."""
from __future__ import annotations

import argparse
import json

import pytest

from albert_ixrt import pipeline
from albert_ixrt.acceptance.options import Options
from albert_ixrt.acceptance.plan import make_plan
from albert_ixrt.cli import build_parser, main
from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.options import BACKEND_PRECISIONS


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets as far as loading a model."""
    def refuse(*a, **k):
        raise AssertionError("work started before the options were checked")

    for target in ("albert_ixrt.acceptance.subject.load_model", "albert_ixrt.model.load_model"):
        monkeypatch.setattr(target, refuse)


def _refused(argv, capsys) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one line on stderr and no traceback."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (argv, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, needle", [
    (["run", "--profile", "tiny", "--backend", "tensorflow"], "argument --backend: invalid choice: 'tensorflow'"),
    (["run", "--profile", "tiny", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["run", "--profile", "tiny", "--precision", "fp8"], "argument --precision: invalid choice: 'fp8'"),
    (["run", "--profile", "tiny", "--limit", "-5"], "argument --limit: must be >= 1, got -5"),
    (["run", "--profile", "tiny", "--limit", "ten"], "argument --limit: not a whole number: 'ten'"),
    (["run", "--profile", "tiny", "--bench-batch-sizes", "0"],
     "argument --perf-batch-sizes/--bench-batch-sizes: must be >= 1, got 0"),
    (["run", "--perf-batch-sizes", "1,x"], "argument --perf-batch-sizes/--bench-batch-sizes: not a whole number: 'x'"),
    (["run", "--profile", "tiny", "--backend", "onnxruntime", "--precision", "bf16"],
     "--precision 'bf16' is not supported by backend onnxruntime; choose one of fp32, fp16, int8"),
    (["run", "--profile", "tiny", "--backend", "torch", "--precision", "int8"],
     "--precision 'int8' is not supported by backend torch"),
    (["evaluate", "--model", "tiny", "--out", "x", "--backend", "tensorflow"], "invalid choice: 'tensorflow'"),
    (["evaluate", "--model", "tiny", "--out", "x", "--batch-size", "0"], "argument --batch-size: must be >= 1"),
    (["evaluate", "--model", "tiny", "--out", "x", "--precision", "int8"], "not supported by backend torch"),
    (["evaluate", "--model", "tiny", "--out", "x", "--shard", "3/2"], "--shard"),
    (["features", "--max-seq-length", "0"], "argument --max-seq-length: must be >= 1"),
    (["bench", "--model", "tiny", "--precision", "int8"], "not supported by backend torch"),
    (["bench", "--model", "tiny", "--max-seconds", "nan"], "argument --max-seconds: must be >= 0"),
    (["bench", "--model", "tiny", "--device", "gpu"], "--device 'gpu' does not apply to backend torch"),
    (["bench", "--model", "tiny", "--backend", "tensorrt", "--device", "cpu"], "(it runs on its GPU)"),
    (["loadgen", "--model", "tiny", "--backend", "onnxruntime", "--device", "cuda:1"], "choose one of auto, cpu"),
    (["loadgen", "--model", "tiny", "--batch-size", "0"], "argument --batch-size: must be >= 1"),
    (["loadgen", "--model", "tiny", "--backend", "ixrt", "--precision", "int8"], "not supported by backend ixrt"),
    (["convert", "--out", "x", "--verify", "-1"], "argument --verify: must be >= 0"),
    (["merge", "nope-dir", "--out", "x"], "argument shards: nope-dir: not found"),
    (["score", "--squad", "nope.json", "--predictions", "p.json"], "nope.json: file not found"),
    (["report", "nope-dir"], "argument dir: nope-dir: not found"),
])
def test_bad_options_are_refused_in_one_line_before_any_work(argv, needle, capsys, no_work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _refused(argv, capsys)
    assert needle in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "results").exists()


def test_a_directory_given_for_a_file_is_named_and_the_file_to_pick_suggested(tmp_path, capsys, no_work):
    conv = tmp_path / "onnx"
    conv.mkdir()
    (conv / "manifest.json").write_text(json.dumps({"engine_inputs": {  # as export.convert writes it
        "tensorrt": "model.sim.onnx", "ixrt": "model.sim.onnx", "onnxruntime": "model.fused.onnx",
        "onnxruntime-fp16": "model.fused.fp16.onnx"}}))
    (conv / "model.sim.onnx").write_bytes(b"x")
    (conv / "model.fused.onnx").write_bytes(b"x")
    err = _refused(["evaluate", "--model", "tiny", "--backend", "onnxruntime", "--onnx", str(conv),
                    "--out", str(tmp_path / "o")], capsys)
    assert f"{conv}: is a directory, not an ONNX file" in err
    assert f"{conv / 'model.fused.onnx'} (onnxruntime)" in err and "model.sim.onnx (tensorrt, ixrt)" in err
    assert "fp16.onnx" not in err  # only files that are there are suggested
    plain = tmp_path / "plain"
    plain.mkdir()
    err = _refused(["bench", "--backend", "onnxruntime", "--onnx", str(plain)], capsys)
    assert f"{plain}: is a directory, not an ONNX file" in err and "pick" not in err
    err = _refused(["run", "--profile", "tiny", "--squad", str(plain), "--out", str(tmp_path / "r")], capsys)
    assert "is a directory, not a SQuAD JSON file" in err


def test_a_good_call_passes_the_checks(tmp_path):
    """The known-good side: valid options parse, and the plan accepts them."""
    args = build_parser().parse_args(["run", "--profile", "tiny", "--backend", "onnxruntime", "--precision", "int8",
                                      "--batch-size", "4", "--limit", "3", "--bench-batch-sizes", "1", "2",
                                      "--out", str(tmp_path)])
    options = Options.from_namespace(args)
    assert (options.batch_size, options.limit, options.perf_batch_sizes) == (4, 3, (1, 2))
    from albert_ixrt.options import check_device

    for backend, device in (("torch", "cuda:1"), ("torch", "auto"), ("onnxruntime", "tensorrt"), ("ixrt", "auto")):
        check_device(backend, device)
    assert make_plan(options).subject.describe() == "the built-in tiny self-test model on onnxruntime int8"


@pytest.mark.parametrize("kw, needle", [
    ({"backend": "tensorflow"}, "--backend 'tensorflow' is not a backend"),
    ({"batch_size": 0}, "--batch-size must be a whole number >= 1, got 0"),
    ({"precision": "fp8"}, "--precision 'fp8' is not supported by backend torch"),
    ({"limit": -5}, "--limit must be a whole number >= 1, got -5"),
    ({"skip": ("load",)}, "--skip load: not a step that can be left out; choose from convert, equivalence, perf"),
    ({"profile": "huge"}, "--profile 'huge' is not a profile"),
    ({"perf_batch_sizes": (16, 0)}, "--perf-batch-sizes must be a whole number >= 1, got 0"),
])
def test_run_acceptance_refuses_bad_options_before_writing_anything(kw, needle, tmp_path, no_work):
    """Callers of the run door that bypass argparse get the same checks (the plan's); the out dir is untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("previous")
    with pytest.raises(AlbertIxrtError, match=None) as info:
        pipeline.run_acceptance(Options(**{"out": str(out), "quiet": True, **kw}))
    assert needle in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]


def test_backend_precision_table_matches_the_runners():
    """options.BACKEND_PRECISIONS is what the runners themselves accept (no drift)."""
    from albert_ixrt.engine import ENGINE_PRECISIONS
    from albert_ixrt.runners.ort_runner import ORT_PRECISIONS
    from albert_ixrt.runners.torch_runner import _DTYPES

    assert BACKEND_PRECISIONS == {"torch": tuple(_DTYPES), "onnxruntime": ORT_PRECISIONS,
                                  "tensorrt": ENGINE_PRECISIONS, "ixrt": ENGINE_PRECISIONS}


def options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    """Every option (or positional) of every sub-command whose --help line is empty."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {m}" for m in options_without_help(sub)]
        elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def test_every_option_of_every_command_has_help_text():
    assert options_without_help(build_parser()) == []


def test_the_help_walker_finds_an_undocumented_option():
    planted = argparse.ArgumentParser()
    sub = planted.add_subparsers().add_parser("run")
    sub.add_argument("--documented", help="yes")
    sub.add_argument("--bare")
    sub.add_argument("target")
    assert options_without_help(planted) == ["run --bare", "run target"]


def test_run_help_lists_how_to_shorten_a_run(capsys):
    assert main(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for needle in ("--perf-batch-sizes", "--skip", "--limit", "per backend: torch: fp32, fp16, bf16"):
        assert needle in out, needle
    json.dumps(out)  # plain text
