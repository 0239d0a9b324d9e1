"""The README is one coherent story: every `albert-ixrt` option it shows exists, the tiny job's
time is stated one way, and the test command's JUnit file is where the pytest settings put it."""
from __future__ import annotations

import re
from pathlib import Path

from albert_ixrt.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _options(parser) -> set[str]:
    """A parser's options and those of its own sub-commands (``history add --history``)."""
    found = set()
    for a in parser._actions:
        found |= set(a.option_strings)
        if a.__class__.__name__ == "_SubParsersAction":
            for p in a.choices.values():
                found |= _options(p)
    return found


def _options_by_command() -> dict[str, set[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: _options(p) for name, p in sub.choices.items()}


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
    assert unknown_options("`albert-ixrt history check --history h.jsonl --persist 3 --fast`") == [
        "albert-ixrt history --fast"]


def test_one_set_of_times_and_the_junit_path():
    tiny_times = re.findall(r"(?:about \d+ seconds|< ?\d+ min)", README)
    assert tiny_times and set(tiny_times) == {"about 20 seconds"}, tiny_times
    assert "reports/junit.xml" in README and "results/junit.xml" not in README
    assert "add '.[gpu]'" not in README


def readme_problems(text: str) -> list[str]:
    """What the project is and who it is for before any set-up; the install / test /
    main-job lines first; the graph count the converter writes; the cache; timings in wall and CPU."""
    from albert_ixrt.export import STAGE_FILES

    problems = []
    intro = text[:text.index("```")]
    if "for the engineer" not in intro.lower() or "acceptance suite" not in intro:
        problems.append("no what/who paragraph before the first code block")
    first_block = text[text.index("```"):].splitlines()[1:4]
    wanted = ("pip install", "pytest -q", "albert-ixrt run")
    if [w for w, line in zip(wanted, first_block) if w not in line]:
        problems.append(f"first lines are not install, tests, main job: {first_block}")
    if "install it first from PyTorch's CPU" in intro:
        problems.append("set-up details before the what/who paragraph")
    counts = {int(n) if n.isdigit() else WORDS[n] for n in re.findall(r"(\w+) graphs", text) if n in WORDS or n.isdigit()}
    if counts != {len(STAGE_FILES)}:
        problems.append(f"graph counts {sorted(counts)} != the {len(STAGE_FILES)} stages convert writes")
    for needle in ("ALBERT_IXRT_CACHE", "~/.cache/albert_ixrt", "rm -rf", "du -sh"):
        if needle not in text:
            problems.append(f"the cache section lacks {needle!r}")
    test_line = first_block[1] if len(first_block) > 1 else ""
    if "CPU-s" not in test_line or "min" not in test_line:
        problems.append("the test command's time is not given in CPU seconds and wall minutes")
    if not re.search(r"`albert-ixrt run`[^.]*\n?[^.]*\*estimate\*", text):
        problems.append("the real-model run time is not given as an estimate")
    return problems


WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def test_the_readme_says_what_and_for_whom_first_and_gives_honest_figures():
    assert readme_problems(README) == []


def test_the_readme_checker_catches_the_old_readme():
    old = ("# albert-ixrt\n\n```bash\npython3 -m pip install -e '.[test]'\npython3 -m pytest -q   # about 3 minutes\n"
           "albert-ixrt run --profile tiny\n```\n\n`onnx/` with the four graphs and `manifest.json`\n")
    problems = readme_problems(old)
    assert "no what/who paragraph before the first code block" in problems
    assert "graph counts [4] != the 5 stages convert writes" in problems
    assert "the cache section lacks 'ALBERT_IXRT_CACHE'" in problems
    assert "the test command's time is not given in CPU seconds and wall minutes" in problems
    assert "the real-model run time is not given as an estimate" in problems
