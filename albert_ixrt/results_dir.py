"""The results folder of ``albert-ixrt run`` (``--out``): one run at a time, only this tool's files
replaced, and the previous results kept intact until a run ends.

- **Ownership.** A run's ``report.json`` lists every file it left in the folder (``owned``; reports
  of older versions list ``files``, with ``onnx/`` as a whole).  A folder is accepted when it is
  missing, empty, or holds only a previous run's files; anything else is refused before any work, so
  ``run --out .`` never overwrites a user's own ``report.md``.
- **Lock.** ``OUT/.albert-ixrt-run.lock`` (``filelock``: an OS lock, released by the kernel when
  the process dies, even by SIGKILL): a second run into the same folder is refused in one line.
- **Staging.** A run writes into ``OUT/.albert-ixrt-staging.<host>-<pid>-<random>/`` (inside, not
  beside, ``OUT``: the same file system for the final renames, and ``--out .`` has no parent we may
  write to).  ``commit`` moves its files into place and removes the previous run's other files; an
  interrupted or refused run only removes its staging folder, so the previous results stay
  byte-identical.  Before moving, ``commit`` writes the plan (``.swap.json``) into the staging
  folder; a run killed in the middle of the swap is finished by the next run (roll forward), and a
  staging folder of a killed run without a plan is removed by the next run, once the lock is held
  and the folder's mark names a dead process of this host.
- **The conversion cache.** ``OUT/onnx`` (the graphs ``convert`` reuses while the model is
  unchanged) is carried into the staging folder as hard links (a copy where links are not
  possible): ``convert`` replaces files by rename and never writes into one, so the previous
  results' graphs stay untouched and an unchanged model is not converted again.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import threading
from pathlib import Path

from .errors import AlbertIxrtError
from .fileio import HOST_TAG, pid_alive, stale_partials, sweep_partials, write_json_atomic

LOCK_NAME = ".albert-ixrt-run.lock"
STAGING_PREFIX = ".albert-ixrt-staging."
STAGING_MARK = ".albert-ixrt-staging.json"
SWAP_PLAN = ".swap.json"
REPORT = "report.json"
#: The conversion cache inside a results folder (carried from run to run).
ONNX_DIR = "onnx"
#: Written into report.json: which tool wrote the folder.
WRITER = "albert-ixrt run"


class ResultsDirError(AlbertIxrtError):
    """The results folder cannot be used (another run holds it, or it holds files not ours)."""


def _files_under(folder: Path) -> list[str]:
    """Every file and symlink below ``folder`` (relative, posix), the lock and staging folders aside."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if not d.startswith(STAGING_PREFIX)]
            files = [f for f in files if f != LOCK_NAME]
        found += [(rel_root / f).as_posix() for f in files]
        found += [(rel_root / d).as_posix() for d in dirs if (Path(root) / d).is_symlink()]
    return sorted(found)


def previous_run_files(out: str | os.PathLike) -> set[str] | None:
    """The files a previous run says it wrote into ``out`` (report.json), or None when ``out`` holds
    no readable report of a run."""
    try:
        report = json.loads((Path(out) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("files"), list) or "steps" not in report:
        return None
    if isinstance(report.get("owned"), list):
        return {str(f) for f in report["owned"]}
    files = {str(f) for f in report["files"]}  # a report of an older version: onnx/ is listed by its manifest
    if f"{ONNX_DIR}/manifest.json" in files:
        files |= {f for f in _files_under(Path(out)) if f.startswith(f"{ONNX_DIR}/")}
    return files


def _pending_swaps(out: Path) -> list[Path]:
    return sorted(d for d in out.glob(STAGING_PREFIX + "*") if (d / SWAP_PLAN).is_file())


def foreign_files(out: str | os.PathLike) -> list[str]:
    """Files in ``out`` that no run of this tool wrote (what a run there must not delete or replace)."""
    out = Path(out)
    if not out.is_dir():
        return []
    owned = previous_run_files(out) or set()
    for staging in _pending_swaps(out):  # a swap a killed run left half done: its files are ours too
        with contextlib.suppress(OSError, ValueError, KeyError):
            owned |= set(json.loads((staging / SWAP_PLAN).read_text(encoding="utf-8"))["move"])
    # half-written files of killed writers (fileio's partials: this host, process gone) are swept, not foreign
    stale = {p.relative_to(out).as_posix() for p in stale_partials(out)}
    return [f for f in _files_under(out) if f not in owned and f not in stale]


def check_results_dir(out: str | os.PathLike, option: str = "--out") -> None:
    """Before any work, touching nothing: ``out`` can be written and holds no file but a previous
    run's (``options.check_output_dir`` checks the path itself)."""
    from .options import check_output_dir

    check_output_dir(option, out)
    foreign = foreign_files(out)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ResultsDirError(f"{option} {out}: holds {len(foreign)} file(s) that no albert-ixrt run wrote "
                              f"({shown}); a run replaces only its own files: give an empty or new folder, "
                              "or a previous run's")


def _remove_empty_dirs(out: Path, rels) -> None:
    for rel in sorted({Path(r).parent for r in rels}, key=lambda p: -len(p.parts)):
        while rel != Path("."):
            with contextlib.suppress(OSError):  # not empty, or gone: leave it
                (out / rel).rmdir()
            rel = rel.parent


def _apply_plan(out: Path, staging: Path, plan: dict) -> None:
    """Move the staged files into ``out`` (report.json last: it is the record of what is there), then
    remove the previous run's files the new run did not write.  Idempotent: a later run may redo it."""
    moves = sorted(plan["move"], key=lambda rel: rel == REPORT)
    for rel in moves:
        src = staging / rel
        if src.exists() or src.is_symlink():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, out / rel)
    gone = [rel for rel in plan["delete"] if rel not in plan["move"]]
    for rel in gone:
        with contextlib.suppress(FileNotFoundError):
            (out / rel).unlink()
    _remove_empty_dirs(out, gone)


_STAGING_RE = re.compile(re.escape(STAGING_PREFIX) + r"(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}")


def _own_staging(staging: Path) -> bool:
    """A staging folder is provably ours when its name (the one this module gives) names this host
    and a dead process; the caller holds the lock, so no live run of another host uses it either."""
    m = _STAGING_RE.fullmatch(staging.name)
    return bool(m) and m["host"] == HOST_TAG and not pid_alive(int(m["pid"]))


def recover_stale(out: Path) -> list[str]:
    """Finish or remove what killed runs left in ``out`` (call with the lock held); returns what was done."""
    done = [f"removed {p.name}, half-written by a killed process" for p in sweep_partials(out)]
    for staging in sorted(out.glob(STAGING_PREFIX + "*")):
        if not staging.is_dir() or staging.is_symlink() or not _own_staging(staging):
            continue
        plan = staging / SWAP_PLAN
        if plan.is_file():
            _apply_plan(out, staging, json.loads(plan.read_text(encoding="utf-8")))
            done.append(f"finished the swap of a killed run ({staging.name})")
        else:
            done.append(f"removed the staging folder of a killed run ({staging.name})")
        shutil.rmtree(staging, ignore_errors=True)
    return done


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C / SIGTERM wait until the block ends (the swap is a few renames): a swap is not cut in two."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for s in caught:
            signal.raise_signal(s)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class ResultsDir:
    """``with ResultsDir(out) as rd:`` write into ``rd.staging``, then ``rd.commit()``; leaving the
    block without ``commit`` removes the staging folder and leaves ``out`` as it was."""

    def __init__(self, out: str | os.PathLike, option: str = "--out"):
        self.out = Path(out)
        self.option = option
        self.staging: Path | None = None
        self.recovered: list[str] = []
        self.previous: set[str] = set()
        self._lock = None
        self._made: list[Path] = []

    def __enter__(self) -> "ResultsDir":
        from filelock import FileLock, Timeout

        missing = []
        p = self.out
        while not p.exists() and p.parent != p:
            missing.append(p)
            p = p.parent
        self.out.mkdir(parents=True, exist_ok=True)
        self._made = missing  # removed again when the run is refused here
        self._lock = FileLock(str(self.out / LOCK_NAME), timeout=0)
        try:
            try:
                self._lock.acquire()
            except Timeout:
                raise ResultsDirError(f"{self.option} {self.out}: another albert-ixrt run is writing there now "
                                      f"(it holds {self.out / LOCK_NAME}); wait for it or give another --out") from None
            self.recovered = recover_stale(self.out)
            check_results_dir(self.out, self.option)  # again, under the lock
            self.previous = previous_run_files(self.out) or set()
            self.staging = self.out / f"{STAGING_PREFIX}{HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}"
            self.staging.mkdir()
            write_json_atomic(self.staging / STAGING_MARK, {
                "writer": WRITER, "note": "the staging folder of a run into the folder above; the next run "
                                          "removes it if its process is gone"})
            onnx = self.out / ONNX_DIR
            if onnx.is_dir() and not onnx.is_symlink():
                shutil.copytree(onnx, self.staging / ONNX_DIR, copy_function=_link_or_copy, symlinks=True)
        except BaseException:
            self._abandon()
            raise
        return self

    def staged_files(self) -> list[str]:
        """What the run has written so far (relative paths, the staging mark aside)."""
        return [f for f in _files_under(self.staging) if f not in (STAGING_MARK, SWAP_PLAN)]

    def commit(self) -> list[str]:
        """Replace the previous results by the staged ones; returns the files now in ``out``."""
        moved = self.staged_files()
        plan = {"move": moved, "delete": sorted(self.previous - set(moved))}
        with _signals_deferred():
            write_json_atomic(self.staging / SWAP_PLAN, plan)
            _apply_plan(self.out, self.staging, plan)
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        return moved

    def _abandon(self) -> None:
        """Remove the staging folder (when not committed), release the lock, and remove the folders
        this run made if it leaves nothing in them (a refused or interrupted first run)."""
        if self.staging is not None:
            with _signals_deferred():
                shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()
        if self._made and not _files_under(self.out):
            with contextlib.suppress(OSError):
                (self.out / LOCK_NAME).unlink()
            for d in self._made:
                with contextlib.suppress(OSError):
                    d.rmdir()
        self._made = []

    def __exit__(self, *exc) -> bool:
        self._abandon()
        return False
