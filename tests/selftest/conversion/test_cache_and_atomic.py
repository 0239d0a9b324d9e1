"""Stage caching (content-addressed reuse) and atomic writes (an interrupted run leaves nothing
that looks finished).  On the tiny model: a full conversion takes ~1.5 s."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest

from albert_ixrt import export
from albert_ixrt.export import MANIFEST_NAME, STAGE_FILES, convert

pytestmark = pytest.mark.selftest


@pytest.fixture
def fresh(tmp_path, tiny_converted):
    """A private copy of the session's tiny conversion (so tests may change it)."""
    src, _ = tiny_converted
    out = tmp_path / "onnx"
    shutil.copytree(src, out)
    return out


def reused(manifest) -> dict[str, bool]:
    return {name: entry["reused"] for name, entry in manifest["stages"].items()}


def test_second_convert_reuses_every_stage(fresh, tiny_model):
    mtimes = {p.name: p.stat().st_mtime_ns for p in fresh.glob("*.onnx")}
    manifest = convert(tiny_model, fresh, progress=False)
    assert reused(manifest) == dict.fromkeys(STAGE_FILES, True)
    assert {p.name: p.stat().st_mtime_ns for p in fresh.glob("*.onnx")} == mtimes
    assert manifest["complete"] is True


def test_force_rebuilds_every_stage(fresh, tiny_model):
    manifest = convert(tiny_model, fresh, progress=False, force=True)
    assert reused(manifest) == dict.fromkeys(STAGE_FILES, False)


def test_changed_opset_rebuilds_from_the_export(fresh, tiny_model):
    manifest = convert(tiny_model, fresh, opset=18, progress=False)
    assert reused(manifest) == dict.fromkeys(STAGE_FILES, False)
    assert manifest["opset"] == 18
    assert manifest["stages"]["exported"]["graph_check"]["opset"] == 18


def test_changed_model_hash_rebuilds_the_export_only_downstream_of_changed_bytes(fresh, tiny_model, tiny_converted):
    """A new source hash re-exports; the export's bytes decide whether later stages rebuild."""
    _, first = tiny_converted
    relabelled = dataclasses.replace(tiny_model, source_sha256="0" * 64)
    manifest = convert(relabelled, fresh, progress=False)
    assert manifest["stages"]["exported"]["reused"] is False
    same_bytes = manifest["stages"]["exported"]["sha256"] == first["stages"]["exported"]["sha256"]
    assert manifest["stages"]["simplified"]["reused"] is same_bytes


def test_a_tampered_stage_file_is_rebuilt(fresh, tiny_model, tiny_converted):
    _, first = tiny_converted
    (fresh / STAGE_FILES["simplified"]).write_bytes((fresh / STAGE_FILES["exported"]).read_bytes())
    manifest = convert(tiny_model, fresh, progress=False)
    assert manifest["stages"]["exported"]["reused"] is True
    assert manifest["stages"]["simplified"]["reused"] is False
    # onnxsim is deterministic: the rebuilt file is the original, so the later stages are reused.
    assert manifest["stages"]["simplified"]["sha256"] == first["stages"]["simplified"]["sha256"]
    assert manifest["stages"]["fused"]["reused"] is True


def test_trt_fp16_depends_on_the_simplified_graph_not_the_fused_one(fresh, tiny_model, tiny_converted):
    """trt_fp16 is built from ``simplified``: a rebuilt fused graph leaves it cached."""
    _, first = tiny_converted
    (fresh / STAGE_FILES["fused"]).write_bytes(b"tampered")
    manifest = convert(tiny_model, fresh, progress=False)
    assert manifest["stages"]["fused"]["reused"] is False
    assert manifest["stages"]["trt_fp16"]["reused"] is True
    assert manifest["stages"]["trt_fp16"]["input_sha256"] == first["stages"]["simplified"]["sha256"]


def test_an_unreadable_manifest_means_rebuild_not_crash(fresh, tiny_model):
    (fresh / MANIFEST_NAME).write_text("{ truncated")
    manifest = convert(tiny_model, fresh, progress=False)
    assert reused(manifest) == dict.fromkeys(STAGE_FILES, False)
    assert json.loads((fresh / MANIFEST_NAME).read_text())["complete"] is True


def test_no_fp16_leaves_the_stage_out(tmp_path, tiny_model):
    manifest = convert(tiny_model, tmp_path, fp16=False, progress=False)
    assert list(manifest["stages"]) == ["exported", "simplified", "fused"]
    assert "onnxruntime-fp16" not in manifest["engine_inputs"]
    assert "tensorrt-fp16-strongly-typed" not in manifest["engine_inputs"]
    assert not (tmp_path / STAGE_FILES["trt_fp16"]).exists()
    assert not (tmp_path / STAGE_FILES["fp16"]).exists()


def interrupt_saving(monkeypatch, stage_file: str):
    """Make the save of ``stage_file`` write half a file, then die like a Ctrl-C."""
    real_save = export._save

    def half_save(onnx_model, dest):
        if dest.name.startswith(f".{stage_file}."):
            real_save(onnx_model, dest)
            data = dest.read_bytes()
            dest.write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        real_save(onnx_model, dest)

    monkeypatch.setattr(export, "_save", half_save)


def test_interrupted_stage_leaves_no_finished_looking_file(tmp_path, tiny_model, monkeypatch):
    interrupt_saving(monkeypatch, STAGE_FILES["fp16"])
    with pytest.raises(KeyboardInterrupt):
        convert(tiny_model, tmp_path, progress=False)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert STAGE_FILES["fp16"] not in names
    assert not [n for n in names if n.endswith(".partial")], names
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["complete"] is False and "fp16" not in manifest["stages"]

    monkeypatch.undo()
    resumed = convert(tiny_model, tmp_path, progress=False)
    assert reused(resumed) == {"exported": True, "simplified": True, "fused": True, "fp16": False, "trt_fp16": False}
    assert resumed["complete"] is True


def test_interrupted_export_leaves_nothing(tmp_path, tiny_model, monkeypatch):
    def dying_export(model, dest, opset):
        dest.write_bytes(b"\x08\x07half an onnx file")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_torch", dying_export)
    with pytest.raises(KeyboardInterrupt):
        convert(tiny_model, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_convert_sweeps_partials_a_killed_run_left(fresh, tiny_model):
    """SIGKILL skips every cleanup: the half-written export stays behind.  The next convert (here
    reusing every stage, so no stage file is rewritten) removes it; a live writer's is kept."""
    from albert_ixrt import fileio

    stale = fresh / f".{STAGE_FILES['exported']}.k3_x9a0q.partial"            # as older versions named it
    dead = fresh / f".{STAGE_FILES['fp16']}.{fileio._HOST_TAG}-{2**22 + 1}-0123abcd.partial"  # pid past pid_max
    live = fresh / f".{STAGE_FILES['fused']}.{fileio._HOST_TAG}-{os.getpid()}-0123abcd.partial"
    for p in (stale, dead, live):
        p.write_bytes(b"\x08\x07half an onnx file")
    manifest = convert(tiny_model, fresh, progress=False)
    assert reused(manifest) == dict.fromkeys(STAGE_FILES, True)
    assert not stale.exists() and not dead.exists() and live.exists()
