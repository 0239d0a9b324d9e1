"""The package's layers contract ([tool.importlinter] in pyproject.toml), both ways: the package as
it is keeps it, and a circle added on purpose (a floor module importing the pipeline) breaks it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The ``lint-imports`` console script of the running interpreter's environment, run by that interpreter
#: (what its installed script does), never whichever ``lint-imports`` comes first on PATH.
RUN_LINT_IMPORTS = ("import sys; from importlib.metadata import entry_points; "
                    "(ep,) = entry_points(group='console_scripts', name='lint-imports'); "
                    "sys.argv[0] = 'lint-imports'; sys.exit(ep.load()())")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    if not entry_points(group="console_scripts", name="lint-imports"):
        pytest.fail(f"lint-imports not installed for {sys.executable} (pip install -e '.[test]': import-linter)")
    # The contract is read from cwd's pyproject.toml; --no-cache: each run sees its own tree.
    return subprocess.run([sys.executable, "-c", RUN_LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(cwd)})


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "albert_ixrt", tmp_path / "albert_ixrt",
                    ignore=shutil.ignore_patterns("__pycache__", "selftest_data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_its_layers(tmp_path):
    p = _lint(_copy(tmp_path))
    assert p.returncode == 0 and "1 kept, 0 broken" in p.stdout, p.stdout + p.stderr


def test_a_circle_added_on_purpose_breaks_the_contract(tmp_path, monkeypatch):
    """Caught by this interpreter's import-linter even when another ``lint-imports`` (one that always
    says "kept") comes first on PATH."""
    fake = tmp_path / "bin" / "lint-imports"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Contracts: 1 kept, 0 broken.'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    root = _copy(tmp_path / "tree")
    floor = root / "albert_ixrt" / "options.py"
    floor.write_text(floor.read_text() + "\n\ndef _planted():\n    from . import pipeline  # a circle, hidden in a function\n")
    p = _lint(root)
    assert p.returncode == 1 and "0 kept, 1 broken" in p.stdout, p.stdout + p.stderr
    assert "albert_ixrt.options is not allowed to import albert_ixrt.pipeline" in p.stdout, p.stdout
