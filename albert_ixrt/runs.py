"""The runs kept in a results folder (``albert-ixrt run --out DIR``): how run folders are named,
and what each run's record (``report.json``, either schema) says about it.

Layout::

    DIR/
      2026-12-02T120000Z-albert-base-v2/   one folder per run: its own files only
      2026-12-02T131500Z-tiny/
      2026-12-02T131500Z-tiny.1/           a second run started in the same second
      latest -> 2026-12-02T131500Z-tiny.1  relative symlink to the newest finished run
      LATEST                               the same name as one line of text

A run folder's name is ``<start, UTC, %Y-%m-%dT%H%M%SZ>-<subject slug>[.<n>]``: the stamp first, so
``ls`` lists runs oldest first; no colons, so the name is valid on every file system.  Runs are
ordered by (stamp, n); ``results_dir`` gives every new run a key above every existing one, so this
order is the order in which the runs started (two runs never share a folder: one run per DIR).

Records: schema 2 (``"schema": 2``: ``subject``, ``suite``, ``verdict``, ``figures``) and the older
records of f22ec55 (no ``schema``: ``model``, ``runner``, ``passed``, ``started`` as
``%Y-%m-%d %H:%M:%S %Z``).  Every reader here accepts missing keys.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

REPORT = "report.json"
#: A run's staging folder inside DIR (results_dir): hidden, never a run, skipped by every reader.
STAGING_PREFIX = ".albert-ixrt-staging."
LATEST_LINK = "latest"
LATEST_FILE = "LATEST"
STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
#: A run folder's name: the UTC start, the subject's slug, and a sequence number from the second run
#: started in one second (a dot cannot occur in a slug, so the name splits one way only).
RUN_NAME_RE = re.compile(r"(?P<stamp>\d{4}-\d{2}-\d{2}T\d{6}Z)-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)"
                         r"(?:\.(?P<seq>[1-9]\d{0,5}))?")
#: The slug of a run whose subject was not given.
DEFAULT_SLUG = "run"
SLUG_MAX = 40
#: Model files whose own name says nothing: the folder above names the model.
_GENERIC_NAMES = {"config.json", "model.onnx", "pytorch_model.bin", "model.safetensors"}


def subject_slug(model: str | None) -> str:
    """A short, file-name-safe name for a run's subject: the last part of a model path or hub id
    (``madlag/albert-base-v2-squad`` -> ``albert-base-v2-squad``, ``/m/ka.pt`` -> ``ka-pt``)."""
    text = str(model or "").strip().rstrip("/\\")
    parts = [p for p in re.split(r"[/\\]", text) if p]
    name = parts[-1] if parts else ""
    if name.lower() in _GENERIC_NAMES and len(parts) > 1:
        name = parts[-2]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:SLUG_MAX].strip("-")
    return slug or DEFAULT_SLUG


def stamp_of(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).strftime(STAMP_FORMAT)


def run_folder_name(stamp: str, slug: str, seq: int = 0) -> str:
    return f"{stamp}-{slug}" + (f".{seq}" if seq else "")


def run_key(name: str) -> tuple[str, int] | None:
    """(stamp, n) of a run folder's name (the order of runs), or None for any other name."""
    m = RUN_NAME_RE.fullmatch(name)
    return (m["stamp"], int(m["seq"] or 0)) if m else None


def parse_started(text) -> _dt.datetime | None:
    """A record's ``started`` as an aware UTC time: ISO 8601 (schema 2), or f22ec55's
    ``%Y-%m-%d %H:%M:%S %Z`` (UTC/GMT, or this host's own zone names; another zone: None)."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?: (\S+))?", text)
        if not m:
            return None
        import time

        naive = _dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S")
        zone = m[2] or ""
        if zone in ("UTC", "GMT", "Z"):
            return naive.replace(tzinfo=_dt.timezone.utc)
        if zone and zone not in time.tzname:
            return None
        moment = naive.astimezone()  # this host's local time, as time.strftime wrote it
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(_dt.timezone.utc)


def is_run_record(data) -> bool:
    """A run's record (either schema), as opposed to any other report.json."""
    return isinstance(data, dict) and "steps" in data and (
        isinstance(data.get("files"), list) or data.get("schema") == 2)


def read_record(folder: str | os.PathLike) -> dict | None:
    """``folder/report.json`` when it is a run's record, else None (absent, unreadable, someone else's)."""
    try:
        data = json.loads((Path(folder) / REPORT).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if is_run_record(data) else None


def _text(value) -> str | None:
    return None if value in (None, "") else str(value)


@dataclass(frozen=True)
class RunEntry:
    """One run of a results folder, as far as its folder name and record tell."""

    folder: Path
    name: str
    started: _dt.datetime | None       # UTC; from the folder's name (the record's for an old top-level run)
    finished: bool                     # the folder holds a run record (report.json)
    schema: int | None = None          # 2, or None for f22ec55's records
    subject: str | None = None         # the model: path, hub id, "tiny"
    weights: str | None = None
    backend: str | None = None
    precision: str | None = None
    device: str | None = None
    commit: str | None = None          # the suite's commit (schema 2 only)
    dirty: bool | None = None
    verdict: str | None = None         # schema 2's verdict status; f22ec55: "passed" / "failed"
    seq: int = 0
    record: dict | None = field(default=None, repr=False, compare=False)

    @property
    def subject_key(self) -> tuple:
        """What "the same subject" means when runs are compared: model, backend, precision, device."""
        return (self.subject, self.backend, self.precision, self.device)

    @property
    def order(self) -> tuple:
        started = self.started or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
        return (started, self.seq, self.name)


def _record_fields(record: dict) -> dict:
    """The fields of ``RunEntry`` a record gives, from either schema."""
    if isinstance(record.get("schema"), int) and record["schema"] >= 2:
        subject = record.get("subject") or {}
        suite = record.get("suite") or {}
        verdict = record.get("verdict") or {}
        return {"schema": record["schema"], "subject": _text(subject.get("model")),
                "weights": _text(subject.get("weights")), "backend": _text(subject.get("backend")),
                "precision": _text(subject.get("precision")), "device": _text(subject.get("device")),
                "commit": _text(suite.get("commit")), "dirty": suite.get("dirty"),
                "verdict": _text(verdict.get("status"))}
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    runner = record.get("runner") if isinstance(record.get("runner"), dict) else {}
    passed = record.get("passed")
    return {"schema": None, "subject": _text(model.get("model")),
            "weights": _text(model.get("weights") or runner.get("weights")), "backend": _text(runner.get("backend")),
            "precision": _text(runner.get("precision")), "device": _text(runner.get("device")),
            "verdict": {True: "passed", False: "failed"}.get(passed, _text(record.get("state")))}


def run_entry(folder: str | os.PathLike, record: dict | None = None) -> RunEntry:
    """The entry of one run folder (a dated one, or any folder holding a run record)."""
    folder = Path(folder)
    record = read_record(folder) if record is None else record
    m = RUN_NAME_RE.fullmatch(folder.name)
    if m:
        started = _dt.datetime.strptime(m["stamp"], STAMP_FORMAT).replace(tzinfo=_dt.timezone.utc)
    else:
        started = parse_started((record or {}).get("started"))
    fields = _record_fields(record) if record else {}
    return RunEntry(folder=folder, name=folder.name, started=started, finished=record is not None,
                    seq=int(m["seq"] or 0) if m else 0, record=record, **fields)


def list_runs(out: str | os.PathLike) -> list[RunEntry]:
    """The runs in ``out``, oldest first (newest last): every dated run folder (a symlink such as
    ``latest`` is not a run), and a run of the layout before per-run folders whose files are still
    directly in ``out`` (its record says so).  Folders named like runs but holding no record are
    listed with ``finished=False``."""
    out = Path(out)
    try:
        entries = list(os.scandir(out))
    except (FileNotFoundError, NotADirectoryError):
        return []
    runs = [run_entry(e.path) for e in entries
            if RUN_NAME_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    top = read_record(out)
    if top is not None:
        runs.append(run_entry(out, top))
    return sorted(runs, key=lambda r: r.order)


def latest_run(out: str | os.PathLike) -> RunEntry | None:
    """The newest finished run in ``out`` (the one ``out/latest`` names once a run has published), or None."""
    finished = [r for r in list_runs(out) if r.finished]
    return finished[-1] if finished else None
