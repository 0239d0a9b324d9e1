"""User-facing errors: one clear sentence naming the file (or the asset) and the problem.

The command line prints these without a traceback; everything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class AlbertIxrtError(Exception):
    """Base class: a problem the user can fix (bad input, missing asset, missing library)."""


class InputFileError(AlbertIxrtError):
    """A file the user gave is missing, truncated or malformed."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class AssetMissingError(AlbertIxrtError):
    """A model, tokenizer or data set could not be found; the message says how to supply it."""


class BackendUnavailable(AlbertIxrtError):
    """A runner's library or device is missing. ``reason`` is one line, fit for a pytest skip."""

    def __init__(self, backend: str, reason: str):
        self.backend = backend
        self.reason = reason
        super().__init__(f"backend {backend!r} unavailable: {reason}")


def json_problem(exc) -> str:
    """A ``json.JSONDecodeError`` as a phrase: "not valid JSON (Expecting value at line 1, column 1)".
    Some of json's messages end in "at" already ("Unterminated string starting at"): no "at at"."""
    msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg
    return f"not valid JSON ({msg} at line {exc.lineno}, column {exc.colno})"
