"""``albert-ixrt``: a thin command line.  Each sub-command lives in ``albert_ixrt.commands.<name>``
(``add_arguments(parser)`` and ``run(args) -> exit code``); this file only dispatches and turns
user-facing errors into one line on stderr (exit 2) instead of a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import AlbertIxrtError

#: Sub-commands in pipeline order: data -> model -> export -> engine -> run -> score -> report.
COMMANDS = ("fetch", "features", "convert", "layerwise", "evaluate", "merge", "score", "bench", "loadgen", "report",
            "run",
            "known-answer", "history")


class _Parser(argparse.ArgumentParser):
    """A bad option is one line on stderr (exit 2), pointing at --help instead of printing the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's), or a word saying it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("albert-ixrt")
    except PackageNotFoundError:
        return "(not installed: run from a source tree)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="albert-ixrt", description="Acceptance suite for ALBERT SQuAD v1.1 "
                                     "question answering on inference accelerators: convert, compare, evaluate, bench.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__package__}.commands.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.commands.{name.replace('-', '_')}":
                continue  # command not built yet
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    name = "albert-ixrt"
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # a refused option (2) or --help (0): an exit code, as for every other outcome
            return exc.code if isinstance(exc.code, int) else 2
        name = f"albert-ixrt {args.command}"
        return int(args._run(args) or 0)
    except AlbertIxrtError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the checks could not foresee (a full disk, a folder removed meanwhile)
        from .options import os_error_line

        print(f"{name}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # also while the sub-commands are imported (torch, numpy: seconds)
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
