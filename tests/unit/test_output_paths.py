"""Every command that writes checks its output path before any work, and an
OSError that still happens is one line naming the path, exit 2, never a traceback.  Also the
pins on options refused before data is read and on the dev set's hash, --onnx with the torch
backend and the offline hub look-up."""
from __future__ import annotations

import time

import pytest

from albert_ixrt.cli import main
from albert_ixrt.errors import AlbertIxrtError


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets as far as loading a model or reading SQuAD."""
    def refuse(*a, **k):
        raise AssertionError("work started before the output path was checked")

    # Imported before anything is patched: a module first imported while squad.data.load_squad is
    # patched would bind the stand-in by `from ... import` and keep it after the test.
    import albert_ixrt.acceptance.plan  # noqa: F401
    import albert_ixrt.loaders  # noqa: F401
    import albert_ixrt.pipeline  # noqa: F401

    for target in ("albert_ixrt.acceptance.subject.load_model", "albert_ixrt.model.load_model",
                   "albert_ixrt.squad.data.load_squad", "albert_ixrt.loaders.load_squad"):
        monkeypatch.setattr(target, refuse)


def _refused(argv, capsys) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (argv, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


#: Every writing command with the option that names its output ({} = the path under test).
WRITERS = {
    "run": (["run", "--profile", "tiny", "--out", "{}"], "dir"),
    "evaluate": (["evaluate", "--model", "tiny", "--out", "{}"], "dir"),
    "convert": (["convert", "--model", "tiny", "--out", "{}"], "dir"),
    "merge": (["merge", "{shard}", "--out", "{}"], "dir"),
    "report": (["report", "{shard}", "--out", "{}"], "dir"),
    "fetch": (["fetch", "--model-dir", "{}"], "dir"),
    "loadgen": (["loadgen", "--model", "tiny", "--out", "{}"], "dir"),
    "known-answer": (["known-answer", "--wrong", "0", "--out", "{}"], "file"),
    "bench": (["bench", "--model", "tiny", "--json", "{}"], "file"),
    "layerwise": (["layerwise", "--model", "tiny", "--stage", "fused", "--json", "{}"], "file"),
}


def _argv(name, path, tmp_path):
    shard = tmp_path / "shard"
    shard.mkdir(exist_ok=True)
    return [a.replace("{shard}", str(shard)).replace("{}", str(path)) for a in WRITERS[name][0]]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_output_below_a_regular_file_is_refused_before_work(name, tmp_path, capsys, no_work):
    plain = tmp_path / "notes.txt"
    plain.write_text("mine")
    target = plain / ("out.pt" if name == "known-answer" else "out.json" if WRITERS[name][1] == "file" else "out")
    err = _refused(_argv(name, target, tmp_path), capsys)
    assert f"{plain} is a file, so no" in err and str(target) in err, err
    assert plain.read_text() == "mine"


@pytest.mark.parametrize("name", sorted(n for n, (_, kind) in WRITERS.items() if kind == "file"))
def test_a_directory_where_a_file_is_meant_is_refused_before_work(name, tmp_path, capsys, no_work):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    err = _refused(_argv(name, folder, tmp_path), capsys)
    assert f"{folder}: is a directory, not a file name" in err, err
    err = _refused(_argv(name, f"{tmp_path}/new/", tmp_path), capsys)
    assert "is a directory, not a file name" in err, err


@pytest.mark.parametrize("name", sorted(n for n, (_, kind) in WRITERS.items() if kind == "dir"))
def test_a_file_where_a_folder_is_meant_is_refused_before_work(name, tmp_path, capsys, no_work):
    plain = tmp_path / "plain"
    plain.write_text("mine")
    err = _refused(_argv(name, plain, tmp_path), capsys)
    assert f"{plain}: exists and is not a directory" in err, err


@pytest.mark.parametrize("name", ["run", "bench"])
def test_an_unwritable_place_is_refused_before_work(name, tmp_path, capsys, no_work):
    """/proc takes no new files, even for root (os.access alone would say yes to root)."""
    target = "/proc/albert-ixrt-out" + ("/x.json" if name == "bench" else "")
    err = _refused(_argv(name, target, tmp_path), capsys)
    assert "cannot write in /proc" in err, err


def test_good_output_paths_pass_and_the_check_creates_nothing(tmp_path):
    """The known-good side: a new nested folder, an existing folder, a new file name; nothing is made."""
    from albert_ixrt.options import check_output_dir, check_output_file

    check_output_dir("--out", tmp_path / "a" / "b")
    check_output_dir("--out", tmp_path)
    check_output_file("--json", tmp_path / "new" / "bench.json")
    assert list(tmp_path.iterdir()) == []


def test_an_oserror_during_work_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    """What the checks cannot foresee (a full disk, a folder removed meanwhile): one line, exit 2."""
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "perf_report.md"))

    monkeypatch.setattr("albert_ixrt.report.write_report", full)
    err = _refused(["report", str(tmp_path), "--out", str(tmp_path / "r")], capsys)
    assert err.strip() == f"albert-ixrt report: error: {tmp_path / 'r' / 'perf_report.md'}: No space left on device"


# ---- options refused before data is read, the dev set's hash, --onnx with torch, the offline hub ----------

@pytest.mark.parametrize("command", [["features"], ["evaluate", "--model", "tiny", "--out", "{out}"],
                                     ["known-answer", "--wrong", "0", "--out", "{out}/k.pt"],
                                     ["convert", "--model", "tiny", "--out", "{out}", "--verify", "2"]])
def test_max_seq_length_too_small_for_the_question_is_refused_before_data_is_read(command, tmp_path, capsys,
                                                                                   no_work):
    """64 question tokens + 3 special tokens need --max-seq-length >= 68 (one context token); 67 is
    refused in one line before SQuAD is read (no_work fails the test on a read); 68 passes the check."""
    argv = [a.replace("{out}", str(tmp_path / "o")) for a in command]
    err = _refused(argv + ["--max-seq-length", "67", "--max-query-length", "64"], capsys)
    assert "--max-seq-length 67 leaves no room for context after a 64-token question and 3 special tokens" in err
    from albert_ixrt.commands import squad_settings
    from albert_ixrt.cli import build_parser

    args = build_parser().parse_args(["features", "--max-seq-length", "68", "--max-query-length", "64"])
    assert squad_settings(args).max_seq_length == 68


@pytest.mark.parametrize("where", ["cache", "shared"])
def test_a_corrupted_dev_set_in_the_cache_or_shared_is_refused(where, tmp_path, monkeypatch, squad_path):
    """The dev set found in the cache or ../shared is sha256-checked: a one-byte change is refused,
    the official copy is accepted."""
    from albert_ixrt import assets
    from albert_ixrt.errors import InputFileError

    monkeypatch.delenv(assets.ENV_SQUAD, raising=False)
    cache, shared = tmp_path / "cache", tmp_path / "shared"
    target = (cache if where == "cache" else shared / "squad") / "dev-v1.1.json"
    target.parent.mkdir(parents=True)
    monkeypatch.setenv(assets.ENV_SHARED, str(shared))
    data = bytearray(squad_path.read_bytes())
    target.write_bytes(bytes(data))
    assert assets.squad_dev_path(None, download=False, cache_dir=cache) == target
    data[100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="does not match the official"):
        assets.squad_dev_path(None, download=False, cache_dir=cache)


def test_onnx_with_the_torch_backend_is_refused(tmp_path, capsys, no_work):
    graph = tmp_path / "m.onnx"
    graph.write_bytes(b"x")
    for argv in (["evaluate", "--model", "tiny", "--onnx", str(graph), "--out", str(tmp_path / "o")],
                 ["bench", "--model", "tiny", "--onnx", str(graph)]):
        err = _refused(argv, capsys)
        assert f"--onnx {graph} is read only by the onnxruntime, tensorrt and ixrt backends" in err, err
    from albert_ixrt.options import check_onnx_backend

    check_onnx_backend(graph, "onnxruntime")  # the known-good side
    check_onnx_backend(None, "torch")


def test_an_offline_hub_lookup_fails_in_one_line_after_one_attempt(monkeypatch):
    """No network: one connection attempt, then the local cache only (no ~30 s of retries)."""
    import socket

    from albert_ixrt.model import load_model

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ALBERT_IXRT_OFFLINE", raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # restored after the test (load_model sets it)
    tries = []

    def no_network(address, *a, **k):
        tries.append(address)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_network)
    from transformers import AlbertForQuestionAnswering  # noqa: F401  (imported before the clock starts)
    t0 = time.perf_counter()
    with pytest.raises(AlbertIxrtError) as info:
        load_model("someone/not-cached-albert")
    assert time.perf_counter() - t0 < 5
    assert len(tries) == 1, tries
    msg = str(info.value)
    assert "no network" in msg and "Name or service not known" in msg and "\n" not in msg


def test_the_hub_probe_says_yes_when_a_connection_opens(monkeypatch):
    import socket

    from albert_ixrt.assets import hub_unreachable

    class Conn:
        def close(self):
            pass

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: Conn())
    assert hub_unreachable() is None
