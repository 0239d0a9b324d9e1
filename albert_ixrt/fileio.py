"""Small file helpers shared by every stage: atomic writes and content hashes.

Every artefact is written to a temporary file in the destination folder and renamed into
place, so an interrupted run never leaves a file that looks finished.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import stat
from pathlib import Path
from typing import Iterator


#: Temporary names: ``.<final name>.<host tag>-<pid>-<random>.partial``.  The host tag and pid let a
#: later run tell a partial left by a killed process (SIGKILL skips every cleanup) from one that a
#: live process is still writing; older versions named them ``.<final name>.<8 chars>.partial``.
PARTIAL_SUFFIX = ".partial"
_HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:6]
HOST_TAG = _HOST_TAG  # this host, as partial and staging names record it
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.(?:(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}|[a-z0-9_]{8})\.partial$")


def pid_alive(pid: int) -> bool:
    """Does process ``pid`` exist on this host?  One that belongs to another user counts (signal 0 is then
    refused with PermissionError): only ProcessLookupError means there is no such process.  A pid no
    kernel gives (too large for pid_t) is not provably dead either: it counts as alive, left alone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):    # someone else's live process; no such pid_t
        return True
    return True


def stale_partials(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Partial files in ``folder`` (not its subfolders) that no live process on this host is writing:
    their writer was killed before it could rename or remove them.  ``name``: only those for that
    final file name.  Partials from another host (a shared folder) are left alone: we cannot tell."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    stale = []
    for entry in entries:
        m = _PARTIAL_RE.match(entry.name)
        if not m or (name is not None and m["name"] != name) or not entry.is_file(follow_symlinks=False):
            continue
        if m["pid"] is not None and (m["host"] != _HOST_TAG or pid_alive(int(m["pid"]))):
            continue
        stale.append(Path(entry.path))   # a dead writer, or an old-style name (no pid to ask)
    return sorted(stale)


def sweep_partials(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove ``stale_partials(folder, name)``; return what was removed.  Commands call it at the
    start of a run on the folder they own, so a killed run's half-written files do not pile up."""
    removed = []
    for path in stale_partials(folder, name):
        with contextlib.suppress(FileNotFoundError):   # another sweeper got there first
            path.unlink()
            removed.append(path)
    return removed


def _new_partial(dest: Path) -> Path:
    """Create an empty, exclusive temporary file beside ``dest``.  os.open with mode 0o666 lets the
    kernel apply the user's umask, as for any new file (mkstemp would force 0600)."""
    while True:
        tmp = dest.parent / f".{dest.name}.{_HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    ``dest`` never exists half-written: it appears (or changes) only through ``os.replace``.  The
    file gets the mode a new file gets from the user's umask, even when the block replaced the
    temporary file by another; stale partials of ``dest`` left by killed writers are removed first."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(dest.parent, dest.name)
    tmp_path = _new_partial(dest)
    mode = stat.S_IMODE(tmp_path.stat().st_mode)
    try:
        yield tmp_path
        if stat.S_IMODE(tmp_path.stat().st_mode) != mode:
            os.chmod(tmp_path, mode)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text_atomic(dest: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(dest, text.encode("utf-8"))


def write_json_atomic(dest: str | os.PathLike, obj) -> Path:
    return write_text_atomic(dest, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj) -> str:
    """Hash of a JSON-able object, stable across runs (sorted keys): used for cache keys."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=str).encode("utf-8"))
