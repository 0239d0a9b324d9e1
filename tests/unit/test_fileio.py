"""albert_ixrt.fileio: atomic writes (never in place), file modes from the umask, and the sweep of
partial files that a killed run left behind."""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from albert_ixrt import fileio
from albert_ixrt.fileio import atomic_path, stale_partials, sweep_partials, write_bytes_atomic, write_json_atomic


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_their_mode_from_the_umask(tmp_path, mask, expected):
    with umask(mask):
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        write_bytes_atomic(tmp_path / "a.json", b"again")       # replacing keeps to the umask too
        with atomic_path(tmp_path / "b.bin") as tmp:
            # a tool that writes its own file and moves it over ours (as sentencepiece's trainer does)
            fd, other = tempfile.mkstemp(dir=tmp_path)          # mkstemp: always 0600
            os.close(fd)
            os.replace(other, tmp)
    assert mode(tmp_path / "a.json") == expected
    assert mode(tmp_path / "b.bin") == expected


def test_a_failed_write_leaves_the_old_file_intact_and_no_partial(tmp_path, monkeypatch):
    dest = tmp_path / "report.json"
    dest.write_bytes(b"old, complete content")
    real_write = Path.write_bytes

    def disk_full_midway(self, data):
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full_midway)
    with pytest.raises(OSError, match="No space"):
        write_bytes_atomic(dest, b"new content that never fully arrives")
    monkeypatch.undo()
    assert dest.read_bytes() == b"old, complete content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_the_final_name_appears_only_through_a_rename(tmp_path, monkeypatch):
    """At the moment of the rename the old file is still whole, and afterwards the final name is
    the renamed inode: nothing ever wrote through the final name."""
    dest = tmp_path / "metrics.json"
    dest.write_bytes(b"old")
    old_inode = os.stat(dest).st_ino
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src).name, Path(dst), Path(dst).read_bytes(), os.stat(src).st_ino))
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", spy)
    write_bytes_atomic(dest, b"new")
    monkeypatch.undo()
    ((src_name, dst, content_before, src_inode),) = seen
    assert dst == dest and content_before == b"old"
    assert src_name.startswith(".metrics.json.") and src_name.endswith(".partial")
    assert os.stat(dest).st_ino == src_inode != old_inode
    assert dest.read_bytes() == b"new"

    # and a first write: the final name does not exist until the rename
    new = tmp_path / "new.json"
    with atomic_path(new) as tmp:
        tmp.write_bytes(b"{}")
        assert not new.exists()
    assert new.read_bytes() == b"{}"


def test_sweep_removes_only_partials_of_dead_writers(tmp_path):
    host = fileio._HOST_TAG
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)          # exited and reaped: no live process has this pid (barring reuse)
    names = {
        f".model.onnx.{host}-{dead_pid}-0123abcd.partial": True,      # its writer is gone
        ".model.onnx.k3_x9a0q.partial": True,                          # old-style mkstemp name
        f".report.json.{host}-{os.getpid()}-89abcdef.partial": False,  # a live writer (us)
        f".report.json.{'f' * 6 if host != 'f' * 6 else 'e' * 6}-{dead_pid}-0123abcd.partial": False,  # other host
        "notes.partial": False, ".mine.partial": False, "model.onnx": False,           # not ours
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".a.onnx.k3_x9a0q.partial").write_bytes(b"x")   # subfolders are not swept
    expected = sorted(tmp_path / n for n, stale in names.items() if stale)
    assert stale_partials(tmp_path, "report.json") == []
    assert stale_partials(tmp_path, "model.onnx") == expected
    assert sweep_partials(tmp_path) == expected
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {n for n, stale in names.items() if not stale} | {"sub"}
    assert (tmp_path / "sub" / ".a.onnx.k3_x9a0q.partial").exists()
    assert sweep_partials(tmp_path / "missing") == []


def test_a_partial_naming_a_pid_no_kernel_gives_is_left_alone(tmp_path):
    partial = tmp_path / f".model.onnx.{fileio.HOST_TAG}-99999999999-0123abcd.partial"   # os.kill: OverflowError
    partial.write_bytes(b"x")
    assert stale_partials(tmp_path) == [] and sweep_partials(tmp_path) == []
    assert partial.exists()
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True, check=True).stdout)     # exited and reaped
    dead = tmp_path / f".model.onnx.{fileio.HOST_TAG}-{pid}-0123abcd.partial"
    dead.write_bytes(b"x")
    assert stale_partials(tmp_path) == [dead]                            # the same folder still sweeps a dead one


KILLED_WRITER = """
import sys, time
from albert_ixrt.fileio import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"half an ONNX file")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


def test_a_sigkilled_writer_leaves_a_partial_that_the_next_write_sweeps(tmp_path):
    dest = tmp_path / "model.onnx"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(fileio.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(dest)], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (partial,) = [p for p in tmp_path.iterdir()]
    assert partial.name.startswith(".model.onnx.") and partial.name.endswith(".partial") and not dest.exists()
    assert stale_partials(tmp_path) == [partial]
    write_bytes_atomic(dest, b"whole")       # the next write of that name sweeps it
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_run_sweeps_its_output_folder_before_any_work(tmp_path, monkeypatch):
    """A partial left by a killed writer is swept once the run holds the folder, before the first step
    that writes (the load step only reads); it does not count as a user's file."""
    from albert_ixrt import pipeline
    from albert_ixrt.acceptance import checks
    from albert_ixrt.acceptance.options import Options

    stale = tmp_path / ".report.json.k3_x9a0q.partial"
    stale.write_bytes(b"{ half")

    class Stop(Exception):
        pass

    seen = []

    def first_work(*args, **kwargs):
        seen.append(stale.exists())      # recorded, not asserted: a step may catch what it raises
        raise Stop

    monkeypatch.setattr(checks, "features_step", first_work)
    with contextlib.suppress(Stop):
        pipeline.run_acceptance(Options(out=str(tmp_path), quiet=True, skip=("convert", "perf")))
    assert seen == [False]               # swept before the first writing step started
    assert not stale.exists()


@pytest.mark.parametrize("raised, alive", [(None, True), (PermissionError, True), (ProcessLookupError, False)])
def test_a_process_of_another_user_counts_as_alive(monkeypatch, raised, alive):
    """os.kill(pid, 0) on a process that exists but belongs to another user raises PermissionError: it is
    alive (its partial files are not swept); only ProcessLookupError means no such process."""
    def kill(pid, sig):
        assert sig == 0
        if raised is not None:
            raise raised(1, "stand-in")

    monkeypatch.setattr(fileio.os, "kill", kill)
    assert fileio.pid_alive(4242) is alive


def test_a_live_process_of_another_user_is_alive_for_real():
    """Not root: init (pid 1) belongs to root.  Root may signal anyone, so there a forked child drops to
    uid 65534 and asks about this (root's) process."""
    if os.geteuid() != 0:
        assert fileio.pid_alive(1) is True
        return
    parent = os.getpid()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:                                   # the child: never returns into pytest
        answer = b"?"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            answer = b"1" if fileio.pid_alive(parent) else b"0"
        finally:
            os.write(write_end, answer)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        answer = fh.read()
    os.waitpid(child, 0)
    assert answer == b"1"
