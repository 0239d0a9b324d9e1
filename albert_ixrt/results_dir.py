"""The results folder of ``albert-ixrt run`` (``--out DIR``): one folder per run, earlier runs kept
byte-identical, one run at a time, and nothing half-published.

- **One folder per run.** A run's files end up in ``DIR/<UTC start>-<subject slug>[.<n>]/``
  (``runs.py`` names them) and nowhere else; ``DIR/latest`` (a relative symlink) and ``DIR/LATEST``
  (the same name as a line of text: for copies that drop symlinks, such as CI artifacts and zip
  files, and file systems without them) name the newest finished run.  A run never writes into an
  earlier run's folder, so earlier evidence (bench.json, equivalence.json, ...) stays as it was.
- **Staging.** A run writes into ``DIR/.albert-ixrt-staging.<host>-<pid>-<random>/`` (inside
  ``DIR``: the same file system, so publishing is a rename).  ``commit`` publishes it with one
  ``rename`` of the whole folder, report.json included: no one ever sees a run folder without its
  record or a record without its files.  Then ``latest`` is replaced (symlink to a temporary name,
  ``os.replace``) and ``LATEST`` rewritten atomically.
- **Plans and recovery.** Before the rename, ``commit`` writes its plan beside the staging folder
  (``DIR/.albert-ixrt-publish.<host>-<pid>-<random>.json``).  The next run (lock held) finishes a
  publish whose plan is on disk (roll forward), removes a staging folder without a plan (the run
  was killed before it ended), removes a temporary ``latest`` link and points ``latest`` at the
  newest finished run -- but only for names of this host (``fileio.HOST_TAG``) and a dead process;
  another host's staging folder or plan is never touched.
- **The layout before per-run folders** (f22ec55: one run's files directly in ``DIR``, listed in its
  report.json ``owned``; older ones ``files``) is moved into a dated folder of its own by the next
  run, by the same plan-and-rename steps (its report.json moved last), so ``DIR/report.md`` never
  shows an old verdict beside newer runs.  Files no run wrote are never moved, replaced or deleted.
- **A user's own files** in ``DIR`` are left alone and do not stop a run: a run only adds a new
  folder and replaces ``latest``/``LATEST``; it refuses (before any work) when either of those two
  names holds something it did not write.
- **Lock.** ``DIR/.albert-ixrt-run.lock`` (``filelock``: an OS lock the kernel releases when the
  process dies, even by SIGKILL): a second run into the same folder is refused in one line.
- **The conversion cache.** The newest earlier run of the same subject lends its ``onnx/`` graphs
  to the staging folder as hard links (a copy where links are impossible): ``convert`` replaces
  files by rename and never writes into one, so the earlier run's graphs stay untouched.  At
  ``commit`` every lent file this run neither rewrote nor reused (listed by a manifest this run
  wrote) is dropped: a run folder never holds another model's graphs.

Test hook: ``ALBERT_IXRT_KILL_AT=<point>`` makes the process SIGKILL itself at that point of
publishing (``KILL_POINTS``), so tests can pin what the next run does with each state.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import secrets
import shutil
import signal
import threading
from pathlib import Path

from .errors import AlbertIxrtError
from .fileio import HOST_TAG, pid_alive, sweep_partials, write_json_atomic, write_text_atomic
from .runs import (DEFAULT_SLUG, LATEST_FILE, LATEST_LINK, REPORT, RUN_NAME_RE, STAGING_PREFIX, RunEntry, latest_run,
                   list_runs, parse_started, read_record, run_folder_name, run_key, stamp_of, subject_slug)

__all__ = ["ResultsDir", "ResultsDirError", "RunEntry", "check_results_dir", "latest_run", "list_runs",
           "previous_run_files", "recover"]

LOCK_NAME = ".albert-ixrt-run.lock"
PLAN_PREFIX = ".albert-ixrt-publish."
#: f22ec55's swap plan, inside its staging folder (finished by the next run, as that version did).
OLD_SWAP_PLAN = ".swap.json"
#: The conversion cache inside a run folder (lent from run to run).
ONNX_DIR = "onnx"
ONNX_MANIFEST = f"{ONNX_DIR}/manifest.json"
#: Written into plans: which tool wrote them.
WRITER = "albert-ixrt run"
#: The test hook's variable and its points: before the publishing rename; after it, before the plan
#: is removed; with the temporary ``latest`` link made, before it replaces ``latest``; while moving
#: the old layout's files, after the first one.
KILL_AT_ENV = "ALBERT_IXRT_KILL_AT"
KILL_POINTS = ("publish", "published", "latest", "migrate")

_TAG = r"(?P<host>[0-9a-f]{6})-(?P<pid>\d{1,10})-[0-9a-f]{8}"
_STAGING_RE = re.compile(re.escape(STAGING_PREFIX) + _TAG)
_PLAN_RE = re.compile(re.escape(PLAN_PREFIX) + r"(?P<tag>" + _TAG + r")\.json")
_LINK_PARTIAL_RE = re.compile(r"\." + re.escape(LATEST_LINK) + r"\." + _TAG + r"\.partial")


class ResultsDirError(AlbertIxrtError):
    """The results folder cannot be used (another run holds it, or a name a run needs is not its own)."""


def _crash_point(name: str) -> None:
    """The test hook: SIGKILL this process here when ``ALBERT_IXRT_KILL_AT`` names this point."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _new_tag() -> str:
    return f"{HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}"


def _dead_here(m: re.Match | None) -> bool:
    """A name (staging, plan, temporary link) is provably a killed process's when it names this host
    and a process that no longer exists; anything else is left alone (another host: we cannot tell)."""
    if not m or m["host"] != HOST_TAG:
        return False
    return not pid_alive(int(m["pid"]))


def _files_under(folder: Path) -> list[str]:
    """Every file and symlink below ``folder`` (relative, posix)."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        found += [(rel_root / f).as_posix() for f in files]
        found += [(rel_root / d).as_posix() for d in dirs if (Path(root) / d).is_symlink()]
    return sorted(found)


def _remove_empty_dirs(top: Path, rels) -> None:
    for rel in sorted({Path(r).parent for r in rels}, key=lambda p: -len(p.parts)):
        while rel != Path("."):
            with contextlib.suppress(OSError):  # not empty, or gone: leave it
                (top / rel).rmdir()
            rel = rel.parent


# ---------------------------------------------------------------- the layout before per-run folders

def previous_run_files(out: str | os.PathLike) -> set[str] | None:
    """The files a run of the layout before per-run folders says it wrote directly into ``out``
    (report.json ``owned``; older versions ``files``, with ``onnx/`` as a whole), or None when
    ``out`` holds no such record."""
    try:
        report = json.loads((Path(out) / REPORT).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("files"), list) or "steps" not in report:
        return None
    if isinstance(report.get("owned"), list):
        files = {str(f) for f in report["owned"]}
    else:
        files = {str(f) for f in report["files"]}
        if ONNX_MANIFEST in files:
            files |= {f"{ONNX_DIR}/{f}" for f in _files_under(Path(out) / ONNX_DIR)}
    files = {f for f in files if not Path(f).is_absolute() and ".." not in Path(f).parts}
    return files | {REPORT}


def _old_layout_name(out: Path, record: dict) -> str:
    """The dated folder an old-layout run moves into: its own start (its report.json's mtime when
    the record's time cannot be read) and its model's slug."""
    started = parse_started(record.get("started"))
    if started is None:
        started = _dt.datetime.fromtimestamp((out / REPORT).stat().st_mtime, _dt.timezone.utc)
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    return _free_name(out, stamp_of(started), subject_slug(model.get("model") or record.get("title")))


def _move_listed(out: Path, staging: Path, files) -> None:
    """Move the listed files from ``out`` into ``staging`` (report.json last: until then ``out``
    still reads as that run); what is gone already is skipped, so a later run may redo it."""
    moved = []
    for rel in sorted(files, key=lambda r: r == REPORT):
        src = out / rel
        if src.is_symlink() or src.is_file():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, staging / rel)
            moved.append(rel)
            _crash_point("migrate")
    _remove_empty_dirs(out, moved)


def migrate_old_layout(out: Path) -> list[str]:
    """Move an old-layout run's files into a dated folder of its own (call with the lock held)."""
    files = previous_run_files(out)
    if files is None:
        return []
    if any(_PLAN_RE.fullmatch(p.name) for p in out.iterdir()):
        return ["left the previous run's files in place: another host's publish is pending there"]
    record = json.loads((out / REPORT).read_text(encoding="utf-8"))
    tag = _new_tag()
    staging = out / f"{STAGING_PREFIX}{tag}"
    staging.mkdir()
    plan = {"writer": WRITER, "staging": staging.name, "destination": _old_layout_name(out, record),
            "move": sorted(files)}
    dest = _publish(out, staging, plan, tag)
    return [f"moved the previous run's files (the layout before per-run folders) into {dest.name}/"]


def _finish_old_swap(out: Path, staging: Path, plan: dict) -> None:
    """Finish f22ec55's swap (its files moved into ``out``, report.json last, the older files removed)."""
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


# ---------------------------------------------------------------- names, latest, publishing

def _taken_keys(out: Path) -> list[tuple[str, int]]:
    """Keys of every run name in use: folders (and anything else so named) and pending plans' destinations."""
    keys = [run_key(p.name) for p in out.iterdir()]
    for plan in out.glob(PLAN_PREFIX + "*.json"):
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            keys.append(run_key(json.loads(plan.read_text(encoding="utf-8")).get("destination", "")))
    return [k for k in keys if k]


def _free_name(out: Path, stamp: str, slug: str) -> str:
    """A name not in use for a run started at ``stamp`` (a sequence number when the stamp is taken)."""
    seqs = [seq for s, seq in _taken_keys(out) if s == stamp]
    return run_folder_name(stamp, slug, max(seqs) + 1 if seqs else 0)


def _next_name(out: Path, moment: _dt.datetime, slug: str) -> str:
    """The name of a new run: its key above every key in use, so name order is start order (with the
    same stamp as the newest when the clock reads earlier, e.g. set back, or in the same second)."""
    keys = _taken_keys(out)
    stamp = stamp_of(moment)
    newest = max(keys, default=None)
    if newest is None or newest < (stamp, 0):
        return run_folder_name(stamp, slug)
    return run_folder_name(newest[0], slug, newest[1] + 1)


def _newest_finished(out: Path) -> str | None:
    names = [p.name for p in out.iterdir()
             if run_key(p.name) and p.is_dir() and not p.is_symlink() and (p / REPORT).is_file()]
    return max(names, key=run_key, default=None)


def point_latest(out: Path) -> None:
    """Point ``out/latest`` and ``out/LATEST`` at the newest finished run (nothing when there is none):
    the link is made under a temporary name and renamed over the old one, so ``latest`` is always
    either the old or the new link.  Where symlinks cannot be made, only LATEST is written."""
    name = _newest_finished(out)
    if name is None:
        return
    link = out / LATEST_LINK
    if not (link.is_symlink() and os.readlink(link) == name):
        tmp = out / f".{LATEST_LINK}.{_new_tag()}.partial"
        try:
            os.symlink(name, tmp)
        except OSError:  # a file system without symlinks: LATEST below says it
            tmp = None
        if tmp is not None:
            _crash_point("latest")
            os.replace(tmp, link)
    text = out / LATEST_FILE
    with contextlib.suppress(OSError):
        if text.read_text(encoding="utf-8") == name + "\n":
            return
    write_text_atomic(text, name + "\n")


def _publish(out: Path, staging: Path, plan: dict, tag: str) -> Path:
    """Plan on disk, then (old layout: move the listed files in), one rename, plan removed, latest."""
    plan_path = out / f"{PLAN_PREFIX}{tag}.json"
    with _signals_deferred():
        write_json_atomic(plan_path, plan)
        _crash_point("publish")
        dest = _finish_plan(out, plan)
        plan_path.unlink()
        point_latest(out)
    return dest


def _finish_plan(out: Path, plan: dict) -> Path:
    """Roll a plan forward (idempotent): move the old layout's files in, rename the staging folder to
    its destination (another free name if that one was taken meanwhile)."""
    staging, dest = out / plan["staging"], out / plan["destination"]
    if plan.get("move") and staging.is_dir():
        _move_listed(out, staging, plan["move"])
    if staging.is_dir() and not staging.is_symlink():
        if os.path.lexists(dest):  # rename would replace an empty folder: never
            m = RUN_NAME_RE.fullmatch(dest.name)
            dest = out / _free_name(out, m["stamp"], m["slug"])
        os.rename(staging, dest)
        _crash_point("published")
    return dest


def recover(out: Path) -> list[str]:
    """Finish or remove what killed runs of this host left in ``out`` (call with the lock held);
    returns one line per thing done or deliberately left."""
    done = [f"removed {p.name}, half-written by a killed process" for p in sweep_partials(out)]
    for plan_path in sorted(out.glob(PLAN_PREFIX + "*.json")):
        m = _PLAN_RE.fullmatch(plan_path.name)
        if not _dead_here(m):
            if m and m["host"] != HOST_TAG:
                done.append(f"left {plan_path.name}: another host's publish (we cannot tell whether it still runs)")
            continue
        try:
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
            dest = _finish_plan(out, plan)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ResultsDirError(f"{plan_path}: the plan of a killed run cannot be finished ({exc}); "
                                  "move it away to let the next run go on") from None
        plan_path.unlink()
        done.append(f"finished publishing a killed run: {dest.name}/")
    for staging in sorted(out.glob(STAGING_PREFIX + "*")):
        m = _STAGING_RE.fullmatch(staging.name)
        if not staging.is_dir() or staging.is_symlink():
            continue
        if not _dead_here(m):
            if m and m["host"] != HOST_TAG:
                done.append(f"left {staging.name}: another host's staging folder")
            continue
        old_plan = staging / OLD_SWAP_PLAN
        if old_plan.is_file():
            _finish_old_swap(out, staging, json.loads(old_plan.read_text(encoding="utf-8")))
            done.append(f"finished the swap of a killed run of an earlier version ({staging.name})")
        else:
            done.append(f"removed the staging folder of a killed run ({staging.name})")
        shutil.rmtree(staging, ignore_errors=True)
    for link in out.glob(f".{LATEST_LINK}.*.partial"):
        if link.is_symlink() and _dead_here(_LINK_PARTIAL_RE.fullmatch(link.name)):
            link.unlink()
            done.append(f"removed {link.name}, the temporary link of a killed run")
    return done


def _reserved_problem(out: Path) -> str | None:
    """Why ``latest`` or ``LATEST`` in ``out`` is not ours to replace (None: absent or ours)."""
    link, text = out / LATEST_LINK, out / LATEST_FILE
    if os.path.lexists(link):
        if not link.is_symlink():
            return f"{link} is not a link that an albert-ixrt run made"
        if not RUN_NAME_RE.fullmatch(os.readlink(link)):
            return f"{link} links to {os.readlink(link)}, not to a run folder beside it"
    if os.path.lexists(text):
        try:
            ours = (text.is_file() and not text.is_symlink() and text.stat().st_size <= 128
                    and RUN_NAME_RE.fullmatch(text.read_text(encoding="utf-8").strip()))
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            return f"{text} holds something other than the one-line run name albert-ixrt writes there"
    return None


def check_results_dir(out: str | os.PathLike, option: str = "--out") -> None:
    """Before any work, touching nothing: ``out`` can be written, and ``latest``/``LATEST`` in it are
    absent or a run's own (a user's own files elsewhere in ``out`` are fine: a run never touches them;
    ``options.check_output_dir`` checks the path itself)."""
    from .options import check_output_dir

    check_output_dir(option, out)
    if Path(out).is_dir():
        real = Path(out).resolve()
        if run_key(real.name) and read_record(real) is not None:
            raise ResultsDirError(f"{option} {out}: is the folder of one run ({real.name}); a run never writes into "
                                  f"another's: give the folder that holds the runs ({real.parent})")
        problem = _reserved_problem(Path(out))
        if problem:
            raise ResultsDirError(f"{option} {out}: {problem}; a run never replaces a file it did not write: "
                                  "rename it or give another folder")


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C / SIGTERM wait until the block ends (publishing is a few renames): never cut in two."""
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


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class ResultsDir:
    """``with ResultsDir(out, subject=model) as rd:`` write every file into ``rd.staging``, name
    ``rd.destination`` in reports (where the files end up), then ``rd.commit()``.  Leaving the block
    without ``commit`` removes the staging folder: ``out`` is left as it was.

    Attributes once entered: ``destination`` (this run's final folder), ``staging``, ``started``
    (UTC, the moment in the folder's name), ``previous_run`` (the newest finished run before this
    one, a ``RunEntry``, or None), ``recovered`` (one line per thing finished or removed for killed
    runs, and the move of an old-layout run)."""

    def __init__(self, out: str | os.PathLike, option: str = "--out", *, subject: str | None = None):
        self.out = Path(out)
        self.option = option
        self.slug = subject_slug(subject)
        self.staging: Path | None = None
        self.destination: Path | None = None
        self.started: _dt.datetime | None = None
        self.previous_run: RunEntry | None = None
        self.recovered: list[str] = []
        self._tag = ""
        self._lock = None
        self._made: list[Path] = []
        self._lent: dict[str, tuple[int, int] | None] = {}

    def __enter__(self) -> "ResultsDir":
        from filelock import FileLock, Timeout

        check_results_dir(self.out, self.option)  # before the lock file is made (not inside a run's folder)
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
            check_results_dir(self.out, self.option)  # again, under the lock
            self.recovered = recover(self.out)
            self.recovered += migrate_old_layout(self.out)
            point_latest(self.out)  # a killed run may have published without pointing latest at itself
            self.previous_run = latest_run(self.out)
            self.started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
            self.destination = self.out / _next_name(self.out, self.started, self.slug)
            self._tag = _new_tag()
            self.staging = self.out / f"{STAGING_PREFIX}{self._tag}"
            self.staging.mkdir()
            self._lend_onnx()
        except BaseException:
            self._abandon()
            raise
        return self

    def _lend_onnx(self) -> None:
        """Hard-link the newest earlier run's onnx/ of the same subject (any subject when none was
        named) into the staging folder, remembering each file's inode to tell reuse from leftovers."""
        runs = [r for r in list_runs(self.out)
                if r.finished and r.folder != self.out and (r.folder / ONNX_MANIFEST).is_file()
                and (self.slug == DEFAULT_SLUG or RUN_NAME_RE.fullmatch(r.name)["slug"] == self.slug)]
        if not runs:
            return
        source = runs[-1].folder / ONNX_DIR
        shutil.copytree(source, self.staging / ONNX_DIR, copy_function=_link_or_copy, symlinks=True)
        self._lent = {f"{ONNX_DIR}/{rel}": _inode(self.staging / ONNX_DIR / rel)
                      for rel in _files_under(self.staging / ONNX_DIR)}

    def _unused_lent(self) -> set[str]:
        """Lent files this run neither rewrote nor reused: the ones a manifest written by this run
        does not list (all of them when the run wrote no manifest, e.g. convert was skipped)."""
        if not self._lent or self.staging is None:
            return set()
        listed: set[str] = set()
        manifest = self.staging / ONNX_MANIFEST
        if _inode(manifest) is not None and _inode(manifest) != self._lent.get(ONNX_MANIFEST):
            with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
                stages = json.loads(manifest.read_text(encoding="utf-8")).get("stages") or {}
                listed = {f"{ONNX_DIR}/{e['file']}" for e in stages.values() if isinstance(e, dict) and "file" in e}
        return {rel for rel, ino in self._lent.items()
                if rel not in listed and ino is not None and _inode(self.staging / rel) == ino}

    def staged_files(self) -> list[str]:
        """The files ``commit`` will publish (relative paths): what the run wrote, and the lent graphs it reused."""
        unused = self._unused_lent()
        return [f for f in _files_under(self.staging) if f not in unused]

    def commit(self) -> Path:
        """Publish the staging folder as ``destination`` (one rename) and point ``latest`` at the
        newest run; returns the published folder (``destination``, or a free name beside it if a
        folder of that name appeared meanwhile)."""
        if self.staging is None:
            raise RuntimeError("commit() outside the with block, or twice")
        unused = sorted(self._unused_lent())
        for rel in unused:
            (self.staging / rel).unlink()
        _remove_empty_dirs(self.staging, unused)
        plan = {"writer": WRITER, "staging": self.staging.name, "destination": self.destination.name,
                "note": "a run's publish: the next run finishes it if this run was killed"}
        self.destination = _publish(self.out, self.staging, plan, self._tag)
        self.staging = None
        return self.destination

    def _abandon(self) -> None:
        """Remove the staging folder (when not committed), release the lock, and remove the folders
        this run made if it leaves nothing in them (a refused or interrupted first run)."""
        if self.staging is not None:
            with _signals_deferred():
                shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()
        try:
            left = [p.name for p in self.out.iterdir()]
        except OSError:
            left = None
        if self._made and left in ([], [LOCK_NAME]):
            with contextlib.suppress(OSError):
                (self.out / LOCK_NAME).unlink()
            for d in self._made:
                with contextlib.suppress(OSError):
                    d.rmdir()
        self._made = []

    def __exit__(self, *exc) -> bool:
        self._abandon()
        return False
