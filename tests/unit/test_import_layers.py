"""The package's layers contract ([tool.importlinter] in pyproject.toml), both ways: the package as
it is keeps it, and a circle added on purpose (a floor module importing the pipeline) breaks it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not installed (pip install -e '.[test]': import-linter)")
    # The contract is read from cwd's pyproject.toml; --no-cache: each run sees its own tree.
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(cwd)})


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "albert_ixrt", tmp_path / "albert_ixrt",
                    ignore=shutil.ignore_patterns("__pycache__", "selftest_data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_its_layers(tmp_path):
    p = _lint(_copy(tmp_path))
    assert p.returncode == 0 and "1 kept, 0 broken" in p.stdout, p.stdout + p.stderr


def test_a_circle_added_on_purpose_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    floor = root / "albert_ixrt" / "options.py"
    floor.write_text(floor.read_text() + "\n\ndef _planted():\n    from . import pipeline  # a circle, hidden in a function\n")
    p = _lint(root)
    assert p.returncode == 1 and "0 kept, 1 broken" in p.stdout, p.stdout + p.stderr
    assert "albert_ixrt.options is not allowed to import albert_ixrt.pipeline" in p.stdout, p.stdout
