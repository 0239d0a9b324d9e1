"""Helpers of the results-folder tests: folder snapshots, fake runs published through ResultsDir,
old-layout folders as f22ec55 left them, and a pid that no process has."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from albert_ixrt.results_dir import STAGING_PREFIX, ResultsDir


def snapshot(folder: Path, *, skip_staging: bool = False) -> dict[str, str]:
    """Every entry below ``folder`` (hidden ones too) with its content hash, a symlink with its target:
    'byte-identical' is this equal.  ``skip_staging``: leave out staging folders (what a killed run leaves)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        if skip_staging and Path(root) == Path(folder):
            dirs[:] = [d for d in dirs if not d.startswith(STAGING_PREFIX)]
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif name in dirs:
                out[rel + "/"] = "dir"
            else:
                out[rel] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def record(subject: str = "tiny", *, files=(), **extra) -> dict:
    """A minimal schema-2 run record."""
    owned = sorted({*files, "report.json"})
    return {"schema": 2, "writer": "albert-ixrt run", "started": "2026-12-02T12:00:00+00:00", "steps": [],
            "subject": {"model": subject, "backend": "torch", "precision": "fp32", "device": "cpu"},
            "files": owned, "owned": owned, **extra}


def fake_run(out: Path, files: dict[str, str], subject: str = "tiny") -> Path:
    """Publish a run of ``files`` (relative path -> text) and its record through ResultsDir."""
    with ResultsDir(out, subject=subject) as rd:
        for name, text in files.items():
            (rd.staging / name).parent.mkdir(parents=True, exist_ok=True)
            (rd.staging / name).write_text(text)
        (rd.staging / "report.json").write_text(json.dumps(record(subject, files=files)))
        return rd.commit()


OLD_FILES = {"report.md": "# previous verdict\n", "bench.json": '{"previous": true}\n',
             "equivalence.json": '{"rows": []}\n', "onnx/manifest.json": "{}\n", "onnx/model.onnx": "graph"}


def plant_old_layout(out: Path, started: str = "2026-12-01 10:00:00 UTC") -> dict[str, str]:
    """A run of the layout before per-run folders (f22ec55): its files directly in ``out``, its
    report.json listing them in "owned".  Returns the files with their text."""
    files = dict(OLD_FILES)
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    owned = sorted([*files, "report.json"])
    rec = {"writer": "albert-ixrt run", "started": started, "passed": False, "title": "self-test",
           "model": {"model": "tiny", "weights": "random"}, "steps": [], "files": owned, "owned": owned,
           "runner": {"backend": "torch", "precision": "fp32", "device": "cpu"}}
    (out / "report.json").write_text(json.dumps(rec))
    files["report.json"] = (out / "report.json").read_text()
    return files


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)
