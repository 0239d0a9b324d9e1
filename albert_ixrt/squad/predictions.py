"""Read a predictions file: a JSON object mapping question ids to answer strings."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputFileError, json_problem


def load_predictions(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(path, json_problem(exc)) from None
    if not isinstance(doc, dict):
        raise InputFileError(path, f"expected a JSON object {{question id: answer}}, got {type(doc).__name__}")
    bad = [k for k, v in doc.items() if not isinstance(v, str)]
    if bad:
        raise InputFileError(path, f"{len(bad)} predictions are not strings (first: id {bad[0]!r} -> "
                                   f"{type(doc[bad[0]]).__name__})")
    return doc
