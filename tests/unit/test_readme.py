"""The README is one coherent story: every `albert-ixrt` option it shows exists, the tiny job's
time is stated one way, and the test command's JUnit file is where the pytest settings put it."""
from __future__ import annotations

import re
from pathlib import Path

from albert_ixrt.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _options_by_command() -> dict[str, set[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: {o for a in p._actions for o in a.option_strings} for name, p in sub.choices.items()}


def unknown_options(text: str) -> list[str]:
    """`albert-ixrt CMD ... --opt` mentions (code blocks and inline code) whose --opt CMD lacks."""
    known = _options_by_command()
    bad = []
    for m in re.finditer(r"albert-ixrt ([a-z][a-z-]*[a-z])([^`\n#|]*)", text):
        cmd, rest = m.group(1), m.group(2)
        if cmd not in known:
            bad.append(f"albert-ixrt {cmd} (no such command)")
            continue
        bad += [f"albert-ixrt {cmd} {o}" for o in re.findall(r"(--[a-z][a-z0-9-]*)", rest) if o not in known[cmd]]
    return bad


def test_every_option_the_readme_shows_exists():
    assert unknown_options(README) == []


def test_the_checker_catches_a_stale_option():
    assert unknown_options("`albert-ixrt run --profile tiny --fast`\nalbert-ixrt frobnicate") == [
        "albert-ixrt run --fast", "albert-ixrt frobnicate (no such command)"]


def test_one_set_of_times_and_the_junit_path():
    tiny_times = re.findall(r"(?:about \d+ seconds|< ?\d+ min)", README)
    assert tiny_times and set(tiny_times) == {"about 15 seconds"}, tiny_times
    assert "reports/junit.xml" in README and "results/junit.xml" not in README
    assert "add '.[gpu]'" not in README
